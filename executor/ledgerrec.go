package executor

import (
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/ledger"
	"math"
)

// LedgerRecorder records a run in the SQLite ledger.
type LedgerRecorder struct {
	L *ledger.Ledger
}

// StartNode marks a node running.
func (r LedgerRecorder) StartNode(runID, nodeID string) error { return r.L.StartNode(runID, nodeID) }

// BeginAttempt announces a call before it is sent.
func (r LedgerRecorder) BeginAttempt(runID string, a *Attempt, estimateNano int64) (int64, error) {
	return r.L.BeginAttempt(ledger.CallStart{RunID: runID, NodeID: a.Node, Iteration: a.Iteration, Model: a.Model,
		Provider: a.Provider, StartedAt: a.Started, EstimateNano: estimateNano})
}

// RecordAttempt records a finished call (seq 0: one that was never begun).
func (r LedgerRecorder) RecordAttempt(runID string, seq int64, a *Attempt) error {
	_, err := r.L.RecordAttempt(toLedger(runID, seq, a))
	return err
}

// FinishNode records the node's result, with its accepted attempt when it
// has one, in one transaction.
func (r LedgerRecorder) FinishNode(runID string, n *NodeResult, final *Attempt, finalSeq int64) error {
	res := ledger.NodeResult{Status: ledger.NodeStatus(n.Status), FinalModel: n.Model, Output: n.Output}
	if n.ReplannedFrom != "" {
		if err := r.L.MarkReplanned(runID, n.ID, n.ReplannedFrom); err != nil {
			return err
		}
	}
	if final != nil {
		_, err := r.L.RecordFinalAttempt(toLedger(runID, finalSeq, final), res)
		return err
	}
	return r.L.FinishNode(runID, n.ID, res)
}

func toLedger(runID string, seq int64, a *Attempt) ledger.Attempt {
	u := a.Usage
	return ledger.Attempt{
		RunID: runID, NodeID: a.Node, Seq: seq, Iteration: a.Iteration, Model: a.Model, Provider: a.Provider,
		Outcome: ledger.Outcome(a.Outcome), Reason: a.Reason, MayHaveBilled: a.MayHaveBilled,
		Usage: ledger.Usage{InputTokens: u.InputTokens, CacheReadTokens: u.CacheReadTokens, CacheWrite5mTokens: u.CacheWriteTokens,
			CacheWrite1hTokens: u.CacheWrite1hTokens, OutputTokens: u.OutputTokens, ReasoningTokens: u.ReasoningTokens,
			AudioInputTokens: u.AudioInputTokens, AudioOutputTokens: u.AudioOutputTokens, Images: u.Images},
		UsageReported: a.UsageReported, CostNano: a.CostNano, LatencyMS: a.Latency.Milliseconds(),
		StartedAt: a.Started, EndedAt: a.Started.Add(a.Latency),
		Purpose: ledger.Purpose(a.Purpose), Confidence: a.Confidence,
	}
}

// UsageOf converts a ledger usage back to the catalog's, for re-pricing.
func UsageOf(u ledger.Usage) catalog.Usage {
	return catalog.Usage{InputTokens: u.InputTokens, CacheReadTokens: u.CacheReadTokens, CacheWriteTokens: u.CacheWrite5mTokens,
		CacheWrite1hTokens: u.CacheWrite1hTokens, OutputTokens: u.OutputTokens, ReasoningTokens: u.ReasoningTokens,
		AudioInputTokens: u.AudioInputTokens, AudioOutputTokens: u.AudioOutputTokens, Images: u.Images}
}

var _ Recorder = LedgerRecorder{}

// confidencePtr is c as an Attempt holds it: nil for NaN (no signal).
func confidencePtr(c float64) *float64 {
	if math.IsNaN(c) {
		return nil
	}
	c = min(max(c, 0), 1)
	return &c
}
