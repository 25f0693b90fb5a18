package executor

import (
	"fmt"
	"sync"
	"time"

	"github.com/costwise/costwise/executor/ledger"
)

// SyncRouterRecorder writes each routed request to the ledger durably
// before the request is answered, as [LedgerRecorder] does, in two commits
// instead of five for a request answered by its first call:
//
//   - CreateCall and StartNode are held in memory, and written with the
//     first BeginAttempt in one transaction ([ledger.Ledger.CreateRunWithCall]):
//     nothing can be billed before a call is sent, and the call is in flight
//     in the ledger before it is;
//   - FinishNode is held until FinishRun, and both are written with the
//     accepted attempt in one transaction ([ledger.Ledger.FinishRunWithNode]).
//
// Every other write (a failed attempt, a later BeginAttempt, a self-check
// call) is made at once, as LedgerRecorder makes it. A crash loses nothing
// that was answered: a request is answered after FinishRun returns. A
// request that stops before its first call (refused by a budget) is
// written when it records that refusal.
//
// Writes for a run this recorder did not create go straight to the
// ledger. It is safe for concurrent use.
type SyncRouterRecorder struct {
	LedgerRecorder
	now func() time.Time

	mu   sync.Mutex
	held map[string]*heldRun
}

// heldRun is what a SyncRouterRecorder holds of one request.
type heldRun struct {
	created time.Time
	call    RoutedCall
	node    string // StartNode's node ("" until then)
	written bool   // the run and its node are in the ledger
	// FinishNode's arguments, held until FinishRun.
	result   *NodeResult
	final    *Attempt
	finalSeq int64
}

// NewSyncRouterRecorder records routed requests in l (see
// SyncRouterRecorder).
func NewSyncRouterRecorder(l *ledger.Ledger) *SyncRouterRecorder {
	return &SyncRouterRecorder{LedgerRecorder: LedgerRecorder{L: l}, now: time.Now, held: map[string]*heldRun{}}
}

// CreateCall picks the run id (c.ID, or a new one) and holds the request.
func (s *SyncRouterRecorder) CreateCall(c RoutedCall) (string, error) {
	if c.ID == "" {
		c.ID = ledger.NewRunID(s.now())
	}
	if _, err := routedNewRun(c); err != nil {
		return "", err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.held[c.ID]; dup {
		return "", fmt.Errorf("%w: run id %q is already being recorded", ledger.ErrInvalid, c.ID)
	}
	if len(s.held) >= maxHeldRuns {
		// A request the router abandoned (a ledger failure ends it without
		// FinishRun) is held no longer than this.
		for id, h := range s.held {
			if now.Sub(h.created) > heldRunTTL {
				delete(s.held, id)
			}
		}
	}
	s.held[c.ID] = &heldRun{created: now, call: c}
	return c.ID, nil
}

// A SyncRouterRecorder forgets requests held longer than heldRunTTL once it
// holds maxHeldRuns.
const (
	maxHeldRuns = 4096
	heldRunTTL  = time.Hour
)

// get returns the held request, or nil.
func (s *SyncRouterRecorder) get(runID string) *heldRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[runID]
}

// StartNode holds the node's start until the first call.
func (s *SyncRouterRecorder) StartNode(runID, nodeID string) error {
	if h := s.get(runID); h != nil && !h.written && h.node == "" {
		h.node = nodeID
		return nil
	}
	if err := s.write(runID); err != nil {
		return err
	}
	return s.LedgerRecorder.StartNode(runID, nodeID)
}

// write puts a held request's run and node in the ledger, if they are not
// yet (a request that records something before its first call).
func (s *SyncRouterRecorder) write(runID string) error {
	return s.writeHeld(runID, s.get(runID))
}

func (s *SyncRouterRecorder) writeHeld(runID string, h *heldRun) error {
	if h == nil || h.written {
		return nil
	}
	nr, err := routedNewRun(h.call)
	if err != nil {
		return err
	}
	if _, err := s.L.CreateRun(nr); err != nil {
		return err
	}
	h.written = true
	if h.node != "" {
		return s.L.StartNode(runID, h.node)
	}
	return nil
}

// BeginAttempt announces a call; the first one of a held request writes
// the run, its node and the call in one transaction.
func (s *SyncRouterRecorder) BeginAttempt(runID string, a *Attempt, estimateNano int64) (int64, error) {
	h := s.get(runID)
	if h == nil || h.written {
		return s.LedgerRecorder.BeginAttempt(runID, a, estimateNano)
	}
	nr, err := routedNewRun(h.call)
	if err != nil {
		return 0, err
	}
	node := h.node
	if node == "" {
		node = a.Node
	}
	seq, err := s.L.CreateRunWithCall(nr, ledger.CallStart{NodeID: node, Iteration: a.Iteration, Model: a.Model,
		Provider: a.Provider, StartedAt: a.Started, EstimateNano: estimateNano})
	if err != nil {
		return 0, err
	}
	h.written, h.node = true, node
	return seq, nil
}

// RecordAttempt records a finished call at once.
func (s *SyncRouterRecorder) RecordAttempt(runID string, seq int64, a *Attempt) error {
	if err := s.write(runID); err != nil {
		return err
	}
	return s.LedgerRecorder.RecordAttempt(runID, seq, a)
}

// FinishNode holds a held request's node result until FinishRun.
func (s *SyncRouterRecorder) FinishNode(runID string, n *NodeResult, final *Attempt, finalSeq int64) error {
	h := s.get(runID)
	if h == nil || h.result != nil || n.ReplannedFrom != "" {
		if err := s.write(runID); err != nil {
			return err
		}
		return s.LedgerRecorder.FinishNode(runID, n, final, finalSeq)
	}
	nc := *n
	nc.Attempts = nil // not read by recorders; the caller keeps appending to its own
	h.result, h.finalSeq = &nc, finalSeq
	if final != nil {
		f := *final
		h.final = &f
	}
	return nil
}

// FinishRun writes a held request's node result, its accepted attempt
// and its status in one transaction, and forgets it.
func (s *SyncRouterRecorder) FinishRun(runID, status string) error {
	h := s.get(runID)
	if h == nil {
		return s.LedgerRecorder.FinishRun(runID, status)
	}
	s.mu.Lock()
	delete(s.held, runID)
	s.mu.Unlock()
	if err := s.writeHeld(runID, h); err != nil {
		return err
	}
	if h.result == nil {
		return s.LedgerRecorder.FinishRun(runID, status)
	}
	n := h.result
	node := h.node
	if node == "" {
		node = n.ID
	}
	res := ledger.NodeResult{Status: ledger.NodeStatus(n.Status), FinalModel: n.Model, Output: n.Output}
	var final *ledger.Attempt
	if h.final != nil {
		a := toLedger(runID, h.finalSeq, h.final)
		final = &a
	}
	return s.L.FinishRunWithNode(runID, node, final, res, ledger.RunStatus(status))
}

var _ RouterRecorder = (*SyncRouterRecorder)(nil)
