package executor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/costwise/costwise/executor/ledger"
)

// AsyncRouterRecorder takes a Router's ledger writes off the request's
// critical path: every write is put on a bounded in-memory queue and
// applied, in order, by one goroutine, through the wrapped RouterRecorder.
//
// Durability trade-off: unlike workflow runs, a routed request is acknowledged
// before it is in the ledger. [AsyncRouterRecorder.Flush] (called by the
// gateway's graceful shutdown) writes everything queued, so a clean stop
// loses nothing; a hard crash (kill -9, power loss) loses what was queued
// — at most QueueSize writes, about QueueSize/4 requests — and those
// requests' spend is then missing from the next day-budget read-back.
// Because the queue itself is volatile, BeginAttempt writes nothing and
// returns seq 0: an "in flight" row is of no use to a crash that would
// also lose the queue, and RecordAttempt with seq 0 records the attempt
// in one write.
//
// A full queue blocks the caller (back-pressure) rather than dropping a
// record. Write errors cannot reach the request that caused them; they go
// to OnError and are counted by [AsyncRouterRecorder.Errors].
//
// Run ids are made at once with [ledger.NewRunID] (so the gateway can
// answer with the run id before the run is written); the wrapped
// recorder's CreateCall must use [RoutedCall.ID] when it is set, as
// [LedgerRecorder] does.
type AsyncRouterRecorder struct {
	inner   RouterRecorder
	onError func(error)
	now     func() time.Time

	q    chan asyncOp
	done chan struct{}

	mu     sync.RWMutex // guards closed against sends on q
	closed bool
	errs   atomic.Int64
}

// AsyncOptions tune an AsyncRouterRecorder.
type AsyncOptions struct {
	// QueueSize bounds the writes waiting to be applied (default 4096); a
	// routed request makes 4 (one more per failed attempt).
	QueueSize int
	// OnError receives every write that failed (default: ignored, but
	// counted).
	OnError func(error)
	// Now stamps new run ids (default time.Now).
	Now func() time.Time
}

// asyncOp is one queued write, or a flush marker (done != nil).
type asyncOp struct {
	apply func(RouterRecorder) error
	done  chan struct{}
}

// NewAsyncRouterRecorder starts the goroutine that applies inner's writes.
// Stop it with Close.
func NewAsyncRouterRecorder(inner RouterRecorder, opts AsyncOptions) *AsyncRouterRecorder {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &AsyncRouterRecorder{inner: inner, onError: opts.OnError, now: opts.Now,
		q: make(chan asyncOp, opts.QueueSize), done: make(chan struct{})}
	go a.loop()
	return a
}

func (a *AsyncRouterRecorder) loop() {
	defer close(a.done)
	for op := range a.q {
		if op.done != nil {
			close(op.done)
			continue
		}
		a.run(op.apply)
	}
}

func (a *AsyncRouterRecorder) run(apply func(RouterRecorder) error) {
	if err := apply(a.inner); err != nil {
		a.errs.Add(1)
		if a.onError != nil {
			a.onError(err)
		}
	}
}

// enqueue queues a write; after Close it is applied at once, in the
// caller's goroutine, so a late request is still recorded.
func (a *AsyncRouterRecorder) enqueue(apply func(RouterRecorder) error) {
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		a.run(apply)
		return
	}
	a.q <- asyncOp{apply: apply}
	a.mu.RUnlock()
}

// Errors returns how many queued writes have failed so far.
func (a *AsyncRouterRecorder) Errors() int64 { return a.errs.Load() }

// Flush waits until every write queued before the call is in the ledger,
// or ctx is done (then it returns ctx's error; the writes continue).
func (a *AsyncRouterRecorder) Flush(ctx context.Context) error {
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return nil
	}
	m := asyncOp{done: make(chan struct{})}
	select {
	case a.q <- m:
		a.mu.RUnlock()
	case <-ctx.Done():
		a.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes everything queued and stops the goroutine; it returns
// ctx's error if ctx ends first (the goroutine still finishes the queue).
// Writes made after Close are applied synchronously. Close is idempotent.
func (a *AsyncRouterRecorder) Close(ctx context.Context) error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.q)
	}
	a.mu.Unlock()
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CreateCall picks the run id (c.ID, or a new one) and queues the run.
func (a *AsyncRouterRecorder) CreateCall(c RoutedCall) (string, error) {
	if c.ID == "" {
		c.ID = ledger.NewRunID(a.now())
	}
	a.enqueue(func(r RouterRecorder) error {
		id, err := r.CreateCall(c)
		if err == nil && id != c.ID {
			return errors.New("async recorder: the wrapped recorder ignored RoutedCall.ID " + c.ID + " and made " + id)
		}
		return err
	})
	return c.ID, nil
}

// StartNode queues the node's start.
func (a *AsyncRouterRecorder) StartNode(runID, nodeID string) error {
	a.enqueue(func(r RouterRecorder) error { return r.StartNode(runID, nodeID) })
	return nil
}

// BeginAttempt writes nothing and returns seq 0 (see the type's doc).
func (a *AsyncRouterRecorder) BeginAttempt(string, *Attempt, int64) (int64, error) { return 0, nil }

// RecordAttempt queues a copy of the attempt (seq 0 allocates one in the
// ledger).
func (a *AsyncRouterRecorder) RecordAttempt(runID string, seq int64, at *Attempt) error {
	c := *at
	a.enqueue(func(r RouterRecorder) error { return r.RecordAttempt(runID, seq, &c) })
	return nil
}

// FinishNode queues a copy of the node's result and accepted attempt.
func (a *AsyncRouterRecorder) FinishNode(runID string, n *NodeResult, final *Attempt, finalSeq int64) error {
	nc := *n
	nc.Attempts = nil // not read by recorders; the caller keeps appending to its own
	var fc *Attempt
	if final != nil {
		f := *final
		fc = &f
	}
	a.enqueue(func(r RouterRecorder) error { return r.FinishNode(runID, &nc, fc, finalSeq) })
	return nil
}

// FinishRun queues the run's final status.
func (a *AsyncRouterRecorder) FinishRun(runID, status string) error {
	a.enqueue(func(r RouterRecorder) error { return r.FinishRun(runID, status) })
	return nil
}

// SpentSince flushes the queue, then reads the spend from the wrapped
// recorder, so the day's read-back includes every request made so far.
func (a *AsyncRouterRecorder) SpentSince(since time.Time) (int64, error) {
	if err := a.Flush(context.Background()); err != nil {
		return 0, err
	}
	return a.inner.SpentSince(since)
}

var _ RouterRecorder = (*AsyncRouterRecorder)(nil)
