package ledger

import (
	"encoding/json"
	"fmt"
	"time"
)

// RunStatus is the state of a whole run.
type RunStatus string

// Run states. A run is created running and ends in one of the other three.
const (
	RunRunning         RunStatus = "running"
	RunSucceeded       RunStatus = "succeeded"
	RunFailed          RunStatus = "failed"
	RunBudgetExhausted RunStatus = "budget_exhausted"
)

func (s RunStatus) valid() bool {
	switch s {
	case RunRunning, RunSucceeded, RunFailed, RunBudgetExhausted:
		return true
	}
	return false
}

// NodeStatus is the state of one node of a run.
type NodeStatus string

// Node states. CreateRun inserts planned nodes as pending, StartNode moves a
// node to running, FinishNode to one of the last three.
const (
	NodePending   NodeStatus = "pending"
	NodeRunning   NodeStatus = "running"
	NodeSucceeded NodeStatus = "succeeded"
	NodeFailed    NodeStatus = "failed"
	NodeSkipped   NodeStatus = "skipped"
)

func (s NodeStatus) final() bool {
	return s == NodeSucceeded || s == NodeFailed || s == NodeSkipped
}

// Outcome classifies how one provider call ended.
type Outcome string

// Call outcomes. OutcomeInterrupted is written only by the ledger itself
// (ResumeRun) for a call that was in flight when the process died.
const (
	OutcomeOK            Outcome = "ok"
	OutcomeError         Outcome = "error"
	OutcomeInvalid       Outcome = "invalid"        // answered, but the output failed validation
	OutcomeTimeout       Outcome = "timeout"        // no answer in time
	OutcomeRateLimited   Outcome = "rate_limited"   // HTTP 429 or the provider's equivalent
	OutcomeContextLength Outcome = "context_length" // prompt too long for the model
	OutcomeAuth          Outcome = "auth"           // missing or rejected credentials
	OutcomeBudget        Outcome = "budget"         // stopped by the run's budget
	OutcomeInterrupted   Outcome = "interrupted"    // process died while the call was in flight
)

func (o Outcome) valid() bool {
	switch o {
	case OutcomeOK, OutcomeError, OutcomeInvalid, OutcomeTimeout, OutcomeRateLimited,
		OutcomeContextLength, OutcomeAuth, OutcomeBudget, OutcomeInterrupted:
		return true
	}
	return false
}

// Usage is what one call consumed, one ledger column per field. Every token
// is counted in exactly one field, with the same split as the estimator's
// catalog.Usage (InputTokens excludes cache reads, cache writes and audio;
// OutputTokens excludes reasoning), so converting is a field-by-field copy
// (catalog's CacheWriteTokens is CacheWrite5mTokens here). The ledger keeps
// its own struct so that its schema does not change when the catalog learns
// to price something new; only what is stored here is remembered.
type Usage struct {
	InputTokens        int64 `json:"input_tokens"`
	CacheReadTokens    int64 `json:"cache_read_tokens"`
	CacheWrite5mTokens int64 `json:"cache_write_5m_tokens"`
	CacheWrite1hTokens int64 `json:"cache_write_1h_tokens"`
	OutputTokens       int64 `json:"output_tokens"`
	ReasoningTokens    int64 `json:"reasoning_tokens"`
	AudioInputTokens   int64 `json:"audio_input_tokens"`
	AudioOutputTokens  int64 `json:"audio_output_tokens"`
	Images             int64 `json:"images"`
}

func (u Usage) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"input_tokens", u.InputTokens}, {"cache_read_tokens", u.CacheReadTokens},
		{"cache_write_5m_tokens", u.CacheWrite5mTokens}, {"cache_write_1h_tokens", u.CacheWrite1hTokens},
		{"output_tokens", u.OutputTokens}, {"reasoning_tokens", u.ReasoningTokens},
		{"audio_input_tokens", u.AudioInputTokens}, {"audio_output_tokens", u.AudioOutputTokens},
		{"images", u.Images},
	} {
		if f.v < 0 {
			return fmt.Errorf("usage.%s is %d; counts cannot be negative", f.name, f.v)
		}
	}
	return nil
}

// PlannedNode is one node of the plan, written as pending by CreateRun.
type PlannedNode struct {
	ID               string
	PredictedCostUSD float64 // the planner's estimate for this node
	// Task is the node's task kind ("code", "extraction", ...), so that
	// Observations can be grouped by task and model; "" when unknown.
	Task string
}

// NewRun is what CreateRun records about a run before its first call.
type NewRun struct {
	// ID is the run id; empty means CreateRun makes one with NewRunID.
	ID           string
	WorkflowName string
	WorkflowFile string
	// WorkflowHash is HashWorkflow of the workflow file's bytes; ResumeRun
	// refuses to resume when the file has changed since.
	WorkflowHash string
	// Inputs is the run's inputs as JSON (nil stores {}).
	Inputs json.RawMessage
	// Plan is the caller's plan as JSON, e.g. node id -> model ladder (nil stores {}).
	Plan             json.RawMessage
	PredictedMeanUSD float64
	PredictedP95USD  float64
	// BudgetMaxNano is the run's hard budget in nano-USD; 0 means none.
	BudgetMaxNano int64
	// Simulated marks a dry run whose "calls" cost nothing real. Simulated
	// runs are left out of RerouteRates and CostPerCompletedRun.
	Simulated bool
	// Nodes are inserted as pending, in this order.
	Nodes []PlannedNode
	// Owner names who started the run, when something other than the
	// process running it must find it again: the gateway stores the name
	// of the API key that started a run over HTTP, so that the key still
	// reads, lists and cancels its runs after a restart ("" for none).
	Owner string
}

// Run is one row of the runs table.
type Run struct {
	ID               string
	WorkflowName     string
	WorkflowFile     string
	WorkflowHash     string
	Inputs           json.RawMessage
	Plan             json.RawMessage
	PredictedMeanUSD float64
	PredictedP95USD  float64
	BudgetMaxNano    int64
	Status           RunStatus
	// SpentNano is the sum of CostNano over the run's attempts. It is
	// maintained by a trigger in the same transaction as each attempt
	// insert, so it cannot disagree with the attempts.
	SpentNano int64
	Simulated bool
	CreatedAt time.Time
	UpdatedAt time.Time
	// StopNote says why a run that is still running stopped (NoteStop):
	// cancelled, or interrupted by a shutdown. "" otherwise.
	StopNote string
	// Owner is NewRun.Owner.
	Owner string
}

// Node is one row of the nodes table.
type Node struct {
	RunID            string
	NodeID           string
	Status           NodeStatus
	FinalModel       string
	Output           string
	PredictedCostUSD float64
	StartedAt        time.Time // zero while pending
	FinishedAt       time.Time // zero until FinishNode
	Replanned        bool
	ReplanNote       string
	Task             string // task kind from the plan; "" when not given (and for runs before schema 2)
}

// NodeResult is how a node ended, given to FinishNode.
type NodeResult struct {
	Status     NodeStatus // succeeded, failed or skipped
	FinalModel string     // the model whose answer was kept ("" if none)
	Output     string     // the node's output text, returned by CompletedNodes
}

// Attempt is one finished provider call: one row of the attempts table.
type Attempt struct {
	RunID  string
	NodeID string
	// Seq numbers the run's calls 1, 2, 3... in the order they began. Leave
	// it 0 in RecordAttempt to have the ledger assign the next one, or pass
	// the number BeginAttempt returned.
	Seq       int64
	Iteration int // loop iteration of the node (0 for nodes without a loop)
	Model     string
	Provider  string
	Outcome   Outcome
	Reason    string // error text or why the output was rejected
	// MayHaveBilled is true when the provider may have charged for a call
	// that did not end ok (e.g. a timeout after the request was sent).
	MayHaveBilled bool
	Usage         Usage
	// UsageReported is true when Usage came from the provider's response,
	// false when it was counted locally and CostNano is an estimate.
	UsageReported bool
	CostNano      int64 // what the call cost, in nano-USD (1e-9 USD)
	// LatencyMS is the call's latency; 0 means EndedAt-StartedAt.
	LatencyMS int64
	StartedAt time.Time
	EndedAt   time.Time
	// Purpose is PurposeAnswer ("" means it) or PurposeSelfCheck.
	Purpose Purpose
	// Confidence is the cascade signal judged on this answer (0..1), nil
	// when none was.
	Confidence *float64
}

// Purpose says why a call was made.
type Purpose string

// Call purposes.
const (
	PurposeAnswer    Purpose = "answer"     // an answer to the node's prompt
	PurposeSelfCheck Purpose = "self_check" // a cascade's check of an answer; its cost counts, it answers nothing
)

// CallStart announces a provider call before it is sent (BeginAttempt).
type CallStart struct {
	RunID     string
	NodeID    string
	Iteration int
	Model     string
	Provider  string
	StartedAt time.Time // zero means now
	// EstimateNano is what the call is expected to cost; if the process
	// dies during the call, ResumeRun charges this amount to the run as an
	// interrupted attempt (it may have been billed). 0 charges nothing.
	EstimateNano int64
}

// InFlightCall is a call that began (BeginAttempt) but was never recorded.
// Outside a live executor it means the process died during the call.
type InFlightCall struct {
	CallStart
	Seq int64
}

// Receipt is what RecordAttempt wrote.
type Receipt struct {
	Seq          int64 // the attempt's sequence number in its run
	RunSpentNano int64 // the run's spend including this attempt
}

// NodeRecord is a node with its attempts, oldest first.
type NodeRecord struct {
	Node
	Attempts []Attempt
}

// RunRecord is a run with everything recorded about it.
type RunRecord struct {
	Run
	Nodes    []NodeRecord   // in plan order, then in the order they were started
	InFlight []InFlightCall // calls begun but never recorded, oldest first
}

// RunSummary is one line of Runs.
type RunSummary struct {
	ID               string
	WorkflowName     string
	Status           RunStatus
	Simulated        bool
	SpentNano        int64
	BudgetMaxNano    int64
	PredictedMeanUSD float64
	PredictedP95USD  float64
	Nodes            NodeCounts
	Attempts         int
	// Escalations counts attempts that did not end ok and were followed,
	// in the same node and iteration, by an attempt on a different model.
	Escalations int
	CreatedAt   time.Time
	UpdatedAt   time.Time
	StopNote    string // see Run.StopNote
}

// NodeCounts counts a run's nodes by status.
type NodeCounts struct {
	Total, Pending, Running, Succeeded, Failed, Skipped int
}

// Reroute is how often calls of one node on one model escalated.
type Reroute struct {
	WorkflowName string
	NodeID       string
	Model        string
	Calls        int // answer attempts of this node on this model
	Escalated    int // of which not ok and followed by an attempt on another model
	// Planned counts the escalations a planned cascade made by design (an
	// answer below its confidence threshold); they are not re-routes.
	Planned int
	Rate    float64 // (Escalated - Planned) / Calls: the unplanned re-route rate
}

// RunCost is the realised cost of getting one successful run of a workflow.
type RunCost struct {
	WorkflowName string
	Runs         int   // non-simulated runs of the workflow, in any status
	Succeeded    int   // of which succeeded
	SpentNano    int64 // spent by all of them, failed and unfinished included
	// PerCompletedNano is SpentNano / Succeeded rounded to the nearest
	// nano-USD; 0 when Succeeded is 0 (check Succeeded first).
	PerCompletedNano int64
}
