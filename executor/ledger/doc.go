// Package ledger is costwise's durable record of what runs did and what
// they cost: one SQLite database (modernc.org/sqlite, pure Go) holding
// runs, their nodes, and every provider call (attempt) with its token usage
// and its cost in integer nano-USD.
//
// Its job is to survive the process: a run killed at any instant (SIGKILL,
// power loss) can be resumed later without re-running, or re-paying, the
// nodes that completed, and nothing in the database is ever half-written.
// It also answers the questions the planner and the CLI ask of history:
// [Ledger.Runs] for `costwise runs`, [Ledger.RerouteRates] (how often a
// model's calls for a node escalated) and [Ledger.CostPerCompletedRun].
// [Ledger.AddFeedback] stores a user's score of a node's output, and
// [Ledger.Observations] returns every finished call with its node's task
// kind, escalation and latest feedback, which the estimator's learn
// package turns into calibrated quality and latency numbers.
//
// Boundary: the ledger stores what the executor tells it; it does not
// price calls, enforce budgets or decide what to run. It imports no other
// costwise package: [Usage] mirrors the token split of the estimator's
// catalog.Usage field by field, so the schema does not move when the
// catalog learns to price something new.
//
// # Crash safety
//
// Every write method is one SQLite transaction (BEGIN IMMEDIATE ... COMMIT)
// that commits before the method returns. The database runs in WAL mode
// with synchronous=FULL by default: WAL alone already makes a commit
// survive a killed process, FULL makes it survive power loss too, at the
// price of one fsync per write, which is noise next to a provider call
// ([SyncNormal] is available; see the benchmark). Attempts are append-only
// and a trigger adds each attempt's cost to its run's spent in the same
// transaction, so spent always equals the sum of the attempts.
// [Ledger.Check] verifies all of this on a file.
//
// # Recording a call, and what resume does
//
// A call is recorded in two steps. [Ledger.BeginAttempt] writes an
// in-flight row (node, model, estimated cost) before the request is sent
// and returns the attempt's sequence number; [Ledger.RecordAttempt] (or
// [Ledger.RecordFinalAttempt], which also finishes the node) replaces it,
// in one transaction, with the complete attempt row. The attempts table
// therefore only ever holds complete calls; the in-flight table holds the
// calls whose fate is unknown. Without the first step a call billed just
// before a crash would leave no trace; with it, the worst case is one
// in-flight row per concurrent call, charged at its estimate.
//
// To resume, the executor calls [Ledger.ResumeRun] with the hash of the
// workflow file as it is now ([HashWorkflow]). ResumeRun refuses a changed
// workflow ([ErrWorkflowChanged]) or a run that already succeeded, turns
// each in-flight call into an attempt with outcome "interrupted",
// may_have_billed=true, usage_reported=false and cost = its estimate
// (counted toward the budget, since it may have been paid), and marks the
// run running. Then:
//
//   - a node with status succeeded is done: its output is in
//     [Ledger.CompletedNodes] and it is not run again ([Ledger.StartNode]
//     refuses it with [ErrNodeSucceeded]);
//   - every other node (pending, running, failed, skipped) is run again
//     from its first iteration; its earlier attempts stay in the ledger
//     and their cost stays in the run's spent. A node with an ok attempt
//     but no FinishNode (a crash between the two) is also run again, which
//     is why the call that ends a node should be recorded with
//     RecordFinalAttempt.
//
// Write methods take no context.Context: recording a paid call must
// succeed even when the run's context has just been cancelled. They never
// refuse an attempt because of run or node status, only because of
// invalid values or an unknown run or node ([ErrInvalid], [ErrNotFound]).
//
// Concurrency: a [Ledger] is safe for use by many goroutines. Writes are
// serialised on one connection; reads use a pool of read-only connections
// and see a consistent snapshot (WAL readers do not block the writer).
// Another process writing the same file waits up to busy_timeout.
package ledger
