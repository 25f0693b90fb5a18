package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/costwise/costwise/executor/ledger"
)

// AsyncRouterRecorder takes a Router's ledger writes off the request's
// critical path. It holds each request's records in memory while the
// request runs (CreateCall, StartNode and RecordAttempt write nothing),
// and when the request finishes (FinishRun) puts the whole request on a
// bounded queue. One goroutine drains the queue: every request waiting is
// written in one batch, and when the wrapped recorder is a
// [RoutedRunWriter] (as [LedgerRecorder] is) a batch is one ledger
// transaction — one commit, one fsync, for however many requests finished
// meanwhile — instead of four or five commits per request. Other
// recorders get each request's writes one by one, in the order the router
// made them.
//
// Durability trade-off: unlike workflow runs, a routed request is
// acknowledged before it is in the ledger. [AsyncRouterRecorder.Flush]
// (called by the gateway's graceful shutdown through Close) writes every
// finished request, so a clean stop loses nothing; a hard crash (kill -9,
// power loss) loses the finished requests still queued — at most
// QueueSize, plus the batch being written — and the requests in flight,
// none of which had been answered. The ledger never holds part of a
// routed request: each one is written whole, in one transaction. The lost
// requests' spend is then missing from the next day-budget read-back.
// Because the records are volatile until written, BeginAttempt writes
// nothing and returns seq 0: an "in flight" row is of no use to a crash
// that would also lose the queue.
//
// A full queue blocks the request finishing (back-pressure) rather than
// dropping a record. Write errors cannot reach the request that caused
// them; they go to OnError and are counted by
// [AsyncRouterRecorder.Errors].
//
// Run ids are made at once with [ledger.NewRunID] (so the gateway can
// answer with the run id before the run is written); the wrapped
// recorder's CreateCall must use [RoutedCall.ID] when it is set, as
// [LedgerRecorder] does. Writes for a run id this recorder did not create
// (or a run whose writes do not fit one routed request: a second node, a
// seq from elsewhere) are queued one by one, as they come.
type AsyncRouterRecorder struct {
	inner    RouterRecorder
	batch    RoutedRunWriter // inner as a batch writer; nil when it is not one
	onError  func(error)
	now      func() time.Time
	maxBatch int
	linger   time.Duration

	pmu     sync.Mutex
	pending map[string]*RoutedRun // created, not yet finished

	q    chan asyncOp
	done chan struct{}

	mu     sync.RWMutex // guards closed against sends on q
	closed bool
	errs   atomic.Int64
}

// AsyncOptions tune an AsyncRouterRecorder.
type AsyncOptions struct {
	// QueueSize bounds the finished requests waiting to be written
	// (default 1024); a write of a run the recorder did not create takes
	// one place too.
	QueueSize int
	// MaxBatch bounds the requests written in one transaction (default
	// 256).
	MaxBatch int
	// Linger is how long a finished request waits for others to share its
	// transaction (default 0: the requests already queued when the writer
	// gets to it). A few milliseconds turn a steady stream of requests
	// into batches of several, at a fraction of the CPU per request;
	// Flush and Close do not wait for it. A crash loses the requests
	// lingering too.
	Linger time.Duration
	// OnError receives every write that failed (default: ignored, but
	// counted).
	OnError func(error)
	// Now stamps new run ids and the times of the records it holds
	// (default time.Now).
	Now func() time.Time
}

// RoutedRun is one routed request as the router reported it: what
// CreateCall, StartNode, RecordAttempt, FinishNode and FinishRun said, in
// that order. An [AsyncRouterRecorder] collects it while the request runs
// and writes it once the request has finished.
type RoutedRun struct {
	Call     RoutedCall // Call.ID is the run id
	Created  time.Time  // when CreateCall was called
	Node     string     // the node StartNode started ("" if none was)
	Started  time.Time  // when it was started
	Attempts []Attempt  // RecordAttempt's attempts, in order
	// Result is FinishNode's node result (nil if FinishNode was not
	// called; its Attempts are not kept), Final its accepted attempt (nil
	// if none), Finished when it was called.
	Result   *NodeResult
	Final    *Attempt
	Finished time.Time
	Status   string // FinishRun's status ("" if it was not called)
}

// complete reports whether the run ended as the router ends one: node
// finished, run status set.
func (rr *RoutedRun) complete() bool { return rr.Result != nil && rr.Status != "" }

// replay makes rr's writes one by one through r, in the order the router
// made them, and stops at the first error.
func (rr *RoutedRun) replay(r RouterRecorder) error {
	id, err := r.CreateCall(rr.Call)
	if err != nil {
		return err
	}
	if id != rr.Call.ID {
		return errors.New("async recorder: the wrapped recorder ignored RoutedCall.ID " + rr.Call.ID + " and made " + id)
	}
	if rr.Node != "" {
		if err := r.StartNode(id, rr.Node); err != nil {
			return err
		}
	}
	for i := range rr.Attempts {
		if err := r.RecordAttempt(id, 0, &rr.Attempts[i]); err != nil {
			return err
		}
	}
	if rr.Result != nil {
		if err := r.FinishNode(id, rr.Result, rr.Final, 0); err != nil {
			return err
		}
	}
	if rr.Status != "" {
		return r.FinishRun(id, rr.Status)
	}
	return nil
}

// RoutedRunWriter is a RouterRecorder that can also write whole routed
// requests, several at once; [AsyncRouterRecorder] batches through it.
// A recorder that embeds [LedgerRecorder] to change one of its writes
// inherits WriteRoutedRuns and must override it too.
type RoutedRunWriter interface {
	// WriteRoutedRuns writes finished requests and returns one error per
	// run (nil: written). Each run is written whole or not at all.
	WriteRoutedRuns(runs []*RoutedRun) []error
}

// WriteRoutedRuns writes finished routed requests in one ledger
// transaction ([ledger.Ledger.RecordRuns]): the same rows as its
// step-by-step writes, one commit for all. A run that did not end as the
// router ends one (no node result or no status) is written step by step.
func (r LedgerRecorder) WriteRoutedRuns(runs []*RoutedRun) []error {
	errs := make([]error, len(runs))
	batch := make([]ledger.CompletedRun, 0, len(runs))
	at := make([]int, 0, len(runs)) // batch index -> runs index
	for i, rr := range runs {
		if !rr.complete() {
			errs[i] = rr.replay(r)
			continue
		}
		cr, err := rr.completed()
		if err != nil {
			errs[i] = err
			continue
		}
		batch = append(batch, cr)
		at = append(at, i)
	}
	if len(batch) == 0 {
		return errs
	}
	berrs, err := r.L.RecordRuns(batch)
	for j, i := range at {
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("run %s: %w", runs[i].Call.ID, err)
		default:
			errs[i] = berrs[j]
		}
	}
	return errs
}

// completed converts a finished routed request for ledger.RecordRuns.
func (rr *RoutedRun) completed() (ledger.CompletedRun, error) {
	nr, err := routedNewRun(rr.Call)
	if err != nil {
		return ledger.CompletedRun{}, err
	}
	n := rr.Result
	node := rr.Node
	if node == "" {
		node = n.ID
	}
	cn := ledger.CompletedNode{ID: node, StartedAt: rr.Started, FinishedAt: rr.Finished,
		Result:     ledger.NodeResult{Status: ledger.NodeStatus(n.Status), FinalModel: n.Model, Output: n.Output},
		ReplanNote: n.ReplannedFrom}
	cn.Attempts = make([]ledger.Attempt, 0, len(rr.Attempts)+1)
	for i := range rr.Attempts {
		cn.Attempts = append(cn.Attempts, toLedger(rr.Call.ID, 0, &rr.Attempts[i]))
	}
	if rr.Final != nil {
		cn.Attempts = append(cn.Attempts, toLedger(rr.Call.ID, 0, rr.Final))
	}
	return ledger.CompletedRun{Run: nr, Status: ledger.RunStatus(rr.Status), CreatedAt: rr.Created,
		Nodes: []ledger.CompletedNode{cn}}, nil
}

// asyncOp is one queued item: a finished request, one write of a run the
// recorder did not create, or a flush marker (done != nil).
type asyncOp struct {
	run   *RoutedRun
	apply func(RouterRecorder) error
	done  chan struct{}
}

// NewAsyncRouterRecorder starts the goroutine that writes inner's records.
// Stop it with Close.
func NewAsyncRouterRecorder(inner RouterRecorder, opts AsyncOptions) *AsyncRouterRecorder {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &AsyncRouterRecorder{inner: inner, onError: opts.OnError, now: opts.Now, maxBatch: opts.MaxBatch,
		linger:  opts.Linger,
		pending: map[string]*RoutedRun{}, q: make(chan asyncOp, opts.QueueSize), done: make(chan struct{})}
	a.batch, _ = inner.(RoutedRunWriter)
	go a.loop()
	return a
}

// loop writes the queue: finished requests gather into a batch until
// Linger has passed since the first of them finished (with Linger 0: until
// the queue is empty), MaxBatch are waiting, or a single write or a flush
// marker comes, which first writes the batch before it, so the order of
// the queue is kept.
func (a *AsyncRouterRecorder) loop() {
	defer close(a.done)
	batch := make([]*RoutedRun, 0, a.maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var op asyncOp
		ok := true
		switch {
		case len(batch) == 0:
			op, ok = <-a.q
		case a.linger <= 0:
			select {
			case op, ok = <-a.q:
			default:
				batch = a.write(batch)
				continue
			}
		default:
			select {
			case op, ok = <-a.q:
			case <-timer.C:
				batch = a.write(batch)
				continue
			}
		}
		switch {
		case !ok:
			a.write(batch)
			return
		case op.run != nil:
			batch = append(batch, op.run)
			if len(batch) >= a.maxBatch {
				timer.Stop()
				batch = a.write(batch)
			} else if len(batch) == 1 && a.linger > 0 {
				timer.Reset(a.linger)
			}
		default:
			timer.Stop()
			batch = a.write(batch)
			a.apply(op)
		}
	}
}

// write writes a batch of finished requests and returns it emptied.
func (a *AsyncRouterRecorder) write(batch []*RoutedRun) []*RoutedRun {
	if len(batch) == 0 {
		return batch
	}
	if a.batch != nil {
		for _, err := range a.batch.WriteRoutedRuns(batch) {
			a.report(err)
		}
	} else {
		for _, rr := range batch {
			a.report(rr.replay(a.inner))
		}
	}
	clear(batch)
	return batch[:0]
}

// apply runs a single write or releases a flush marker.
func (a *AsyncRouterRecorder) apply(op asyncOp) {
	switch {
	case op.done != nil:
		close(op.done)
	case op.apply != nil:
		a.report(op.apply(a.inner))
	}
}

func (a *AsyncRouterRecorder) report(err error) {
	if err == nil {
		return
	}
	a.errs.Add(1)
	if a.onError != nil {
		a.onError(err)
	}
}

// enqueue queues an item; after Close it is written at once, in the
// caller's goroutine, so a late request is still recorded.
func (a *AsyncRouterRecorder) enqueue(op asyncOp) {
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		if op.run != nil {
			a.write([]*RoutedRun{op.run})
		} else {
			a.apply(op)
		}
		return
	}
	a.q <- op
	a.mu.RUnlock()
}

// single queues one write of a run this recorder does not hold.
func (a *AsyncRouterRecorder) single(apply func(RouterRecorder) error) {
	a.enqueue(asyncOp{apply: apply})
}

// held returns the run held for id, if ok(run) accepts the write about to
// be made. A held run that does not accept it is queued as it stands (its
// writes one by one) and forgotten, so this write and later ones for the
// run go one by one after it.
func (a *AsyncRouterRecorder) held(id string, ok func(*RoutedRun) bool) *RoutedRun {
	a.pmu.Lock()
	rr := a.pending[id]
	if rr == nil || ok(rr) {
		a.pmu.Unlock()
		return rr
	}
	delete(a.pending, id)
	a.pmu.Unlock()
	a.single(rr.replay)
	return nil
}

// Errors returns how many writes have failed so far (a request written
// whole counts once).
func (a *AsyncRouterRecorder) Errors() int64 { return a.errs.Load() }

// Flush waits until every request finished (FinishRun) before the call,
// and every single write queued before it, is in the ledger, or ctx is
// done (then it returns ctx's error; the writes continue).
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

// Close writes everything queued and stops the goroutine, then writes
// what it holds of requests still unfinished (later writes for them are
// made one by one); it returns ctx's error if ctx ends first (the
// goroutine still finishes the queue). Writes made after Close are applied
// synchronously. Close is idempotent.
func (a *AsyncRouterRecorder) Close(ctx context.Context) error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.q)
	}
	a.mu.Unlock()
	select {
	case <-a.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.pmu.Lock()
	left := a.pending
	a.pending = map[string]*RoutedRun{}
	a.pmu.Unlock()
	for _, rr := range left {
		a.report(rr.replay(a.inner))
	}
	return nil
}

// CreateCall picks the run id (c.ID, or a new one) and holds the run.
func (a *AsyncRouterRecorder) CreateCall(c RoutedCall) (string, error) {
	now := a.now()
	if c.ID == "" {
		c.ID = ledger.NewRunID(now)
	}
	a.pmu.Lock()
	_, dup := a.pending[c.ID]
	if !dup {
		a.pending[c.ID] = &RoutedRun{Call: c, Created: now}
	}
	a.pmu.Unlock()
	if dup { // let the wrapped recorder refuse it
		a.single(func(r RouterRecorder) error { _, err := r.CreateCall(c); return err })
	}
	return c.ID, nil
}

// StartNode holds the node's start.
func (a *AsyncRouterRecorder) StartNode(runID, nodeID string) error {
	if rr := a.held(runID, func(rr *RoutedRun) bool { return rr.Node == "" && rr.Result == nil }); rr != nil {
		rr.Node, rr.Started = nodeID, a.now()
		return nil
	}
	a.single(func(r RouterRecorder) error { return r.StartNode(runID, nodeID) })
	return nil
}

// BeginAttempt writes nothing and returns seq 0 (see the type's doc).
func (a *AsyncRouterRecorder) BeginAttempt(string, *Attempt, int64) (int64, error) { return 0, nil }

// RecordAttempt holds a copy of the attempt (seq 0 allocates one in the
// ledger when it is written).
func (a *AsyncRouterRecorder) RecordAttempt(runID string, seq int64, at *Attempt) error {
	c := *at
	if rr := a.held(runID, func(rr *RoutedRun) bool {
		return seq == 0 && rr.Result == nil && (rr.Node == "" || rr.Node == c.Node)
	}); rr != nil {
		rr.Attempts = append(rr.Attempts, c)
		return nil
	}
	a.single(func(r RouterRecorder) error { return r.RecordAttempt(runID, seq, &c) })
	return nil
}

// FinishNode holds a copy of the node's result and accepted attempt.
func (a *AsyncRouterRecorder) FinishNode(runID string, n *NodeResult, final *Attempt, finalSeq int64) error {
	nc := *n
	nc.Attempts = nil // not read by recorders; the caller keeps appending to its own
	var fc *Attempt
	if final != nil {
		f := *final
		fc = &f
	}
	if rr := a.held(runID, func(rr *RoutedRun) bool {
		return finalSeq == 0 && rr.Result == nil && (rr.Node == "" || rr.Node == nc.ID)
	}); rr != nil {
		rr.Result, rr.Final, rr.Finished = &nc, fc, a.now()
		return nil
	}
	a.single(func(r RouterRecorder) error { return r.FinishNode(runID, &nc, fc, finalSeq) })
	return nil
}

// FinishRun queues the finished request, whole.
func (a *AsyncRouterRecorder) FinishRun(runID, status string) error {
	a.pmu.Lock()
	rr := a.pending[runID]
	delete(a.pending, runID)
	a.pmu.Unlock()
	if rr == nil {
		a.single(func(r RouterRecorder) error { return r.FinishRun(runID, status) })
		return nil
	}
	rr.Status = status
	a.enqueue(asyncOp{run: rr})
	return nil
}

// SpentBy flushes the queue, then reads owner's spend from the wrapped
// recorder (an error when it cannot tell; see OwnerSpend).
func (a *AsyncRouterRecorder) SpentBy(owner string, since time.Time) (int64, error) {
	in, ok := a.inner.(OwnerSpend)
	if !ok {
		return 0, fmt.Errorf("the recorder %T cannot read an owner's spend", a.inner)
	}
	if err := a.Flush(context.Background()); err != nil {
		return 0, err
	}
	return in.SpentBy(owner, since)
}

// SpentSince flushes the queue, then reads the spend from the wrapped
// recorder, so the day's read-back includes every request finished so far.
func (a *AsyncRouterRecorder) SpentSince(since time.Time) (int64, error) {
	if err := a.Flush(context.Background()); err != nil {
		return 0, err
	}
	return a.inner.SpentSince(since)
}

var (
	_ RouterRecorder  = (*AsyncRouterRecorder)(nil)
	_ RoutedRunWriter = LedgerRecorder{}
)
