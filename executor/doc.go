// Package executor runs a planned workflow through real provider clients.
//
// Nodes run in topological order, independent nodes concurrently (bounded by
// Options.Concurrency). A node's prompt is its template filled with the run's
// inputs and its upstream nodes' outputs. At run time `when` is ignored (it
// is a probability for estimation); a node with `run_if` runs when that expr
// over `input.NAME` and `node.ID.output` / `node.ID.ran` holds, and is
// skipped otherwise. A `repeat` node loops, resending its history when
// `history` is set, until `repeat.until` (an expr over `output` and
// `iteration`) holds or `repeat.max` is reached; without `until` it makes
// round(repeat.mean) calls. A loop with history sends its iterations as
// messages, and with cache_prefix_tokens asks Anthropic to cache the prefix
// up to the first one. A node's output_schema (a JSON Schema) puts its calls
// in JSON mode and is checked on every answer like a validate rule.
//
// Each call climbs the node's fallback ladder from the planner:
//
//   - transient failures (429 with Retry-After, 5xx, timeouts, connection
//     resets) are retried on the same model with exponential backoff and
//     full jitter, at least Retry-After, up to MaxRetries; then the next rung;
//   - a failed `validate` rule (expr over `output` with json_valid, len,
//     trim and the operators matches, contains, in, ...) escalates to the
//     next rung at once;
//   - a context-length error moves to the first rung with a larger window;
//   - authentication and invalid-request errors stop the run with a message
//     naming the provider and the fix.
//
// A planned cascade (a ladder entry "cascade:SIGNAL:a@t>b") is climbed as
// its stages: an answer whose confidence is below its stage's threshold, or
// that gives no confidence, is recorded as invalid with its confidence and
// the next stage runs. The signal is exp(mean token log-probability) asked
// of OpenAI-protocol providers, the node's validate rule, or a self-check
// call to the same model whose cost is reserved and recorded (ledger
// purpose self_check). Options.Cascades lets re-planning use cascades too.
//
// Every attempt is recorded (Recorder, the ledger) with its outcome, reason,
// usage, cost in integer nano-USD and whether the provider may have billed
// it, before the next one starts.
//
// The run's max_cost_usd is enforced with reservations ([Budget]): before a
// call its p95 cost (prompt counted locally, the node's p95 or max output) is
// reserved; after it the actual cost is settled. Concurrent nodes therefore
// never spend more than the budget plus the settlement error of each call in
// flight (actual minus reserved cost, at most Concurrency calls). When a call
// cannot be reserved the run stops with status budget_exhausted: no new node
// starts and no new call is reserved, but calls already in flight finish and
// are recorded with what the provider billed. A call that failed in a way
// the provider may have billed (a timeout after sending, a malformed answer)
// is recorded at the cost of the usage it reported, usually none, with
// may_have_billed set; a call in flight when the process died is charged at
// its reservation when the run is resumed (the ledger's ResumeRun).
//
// [Router] serves single calls instead of workflows: it implements
// langchaingo's llms.Model, so any langchaingo chain or agent runs through
// costwise. Per call it picks the cheapest catalog model that meets a
// [Route] (task, min quality, model globs, providers, per-request cap) for
// the call's task (WithTask, or ClassifyTask's heuristic), climbs a ladder
// on failures, enforces a daily budget with the same reservations, records
// each request in the ledger as a one-node run, and reports the model, cost
// and escalations in GenerationInfo. A route may pick the first rung with a
// trained prompt classifier (Route.Classifier), and a fitted cascade
// (RouterOptions.Cascades) heads the ladder when it is expected to cost
// less than the cheapest model meeting the route. Conversations go upstream
// as their messages; tool calls, pictures and structured output
// (WithJSONSchema) go only to models the catalog lists for them, and to
// providers that can carry them (provider.Kind.Refuses).
//
// [Simulator] is a built-in provider for trying the executor offline; every
// output it writes starts with SIMULATED, and a run that used it is marked
// simulated everywhere.
//
// Boundary: the executor uses the planner's result and the catalog's prices;
// provider wire formats and error classification live in executor/provider,
// persistence in executor/ledger.
package executor
