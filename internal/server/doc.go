// Package server is costwise's HTTP gateway: an OpenAI-compatible endpoint
// (POST /v1/chat/completions, GET /v1/models; POST /v1/chat/plan says how a
// request would be routed, without sending it) that answers every request
// through an [executor.Router], so that any OpenAI client gets the cheapest
// model meeting a route, with escalation, per-request caps and budgets, and
// a ledger record per request; plus the planning endpoints (POST
// /v1/estimate, /v1/plan, /v1/preview, answered by a [WorkflowService]);
// workflow runs (POST /v1/runs starts one in the background and answers
// 202 with its id, GET /v1/runs/{id} polls it, GET /v1/runs lists the
// key's runs, POST /v1/runs/{id}/cancel stops one; see [RunRequest] for
// the body and [RunService] for who plans, records and executes them);
// Prometheus metrics (GET /metrics) and a liveness probe (GET /healthz).
//
// Boundary: the package owns HTTP — authentication by API key (compared by
// SHA-256, in constant time), per-key requests-per-minute limits and daily
// budgets, body limits and validation, the OpenAI wire format (JSON and
// server-sent events), metrics and graceful shutdown. Routing, pricing,
// retries, escalation and the ledger belong to the executor; workflow
// planning, running and their JSON contracts belong to the command line,
// which hands the server a WorkflowService and a RunService. The server
// owns only the run's lifetime: at most Options.MaxRuns execute at once
// (429 beyond), under a context cancelled at shutdown; a run interrupted
// by shutdown stays "running" in the ledger with its completed nodes, and
// `costwise run --resume RUN_ID` on the same workflow text continues it;
// so does a run cancelled over HTTP. Runs are charged to the calling key's
// daily budget (see Server.startRun), and a key sees only its own runs:
// those it started on this server, and those recorded with it as their
// owner when the RunService is a [RunDirectory] (the command line's is:
// the ledger keeps the owner, so a restart loses nobody's runs).
//
// Its configuration is read from the same TOML file as the providers (see
// [ParseConfig]): [[server.key]] tables, an optional [server] table and
// [[route]] tables.
//
// Tool calling follows OpenAI's chat completions: tools and tool_choice in
// the request, assistant tool_calls and tool messages in the
// conversation, message.tool_calls and finish_reason "tool_calls" in the
// answer; such requests go only to models the catalog lists with tools.
// response_format json_schema asks for structured output: the router
// checks every answer against the schema and escalates one that does not
// match (see executor.WithJSONSchema).
//
// Pictures: image_url parts of user messages (data: or http(s) URLs) go to
// models with image input; see executor.Router for how they are priced
// and which providers take remote URLs.
//
// Not yet: resuming runs over HTTP, a "cancelled" status in the ledger
// (a cancelled run stays "running" there with a stop note; the server
// reports it cancelled while it remembers it); audio and n > 1 in chat
// completions; tool calls streamed piece by piece (they come whole).
//
// Streaming: a stream request is answered with server-sent events as the
// upstream sends them (see Server.chat for the headers, the trailer and
// errors after the first chunk), except on routes with a validate rule,
// JSON mode or stop words, whose answers are checked before any of them
// is sent, and with Options.BufferStreams.
package server
