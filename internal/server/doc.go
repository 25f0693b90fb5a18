// Package server is costwise's HTTP gateway: an OpenAI-compatible endpoint
// (POST /v1/chat/completions, GET /v1/models) that answers every request
// through an [executor.Router], so that any OpenAI client gets the cheapest
// model meeting a route, with escalation, per-request caps and budgets, and
// a ledger record per request; plus the planning endpoints (POST
// /v1/estimate, /v1/plan, /v1/preview, answered by a [WorkflowService]),
// Prometheus metrics (GET /metrics) and a liveness probe (GET /healthz).
//
// Boundary: the package owns HTTP — authentication by API key (compared by
// SHA-256, in constant time), per-key requests-per-minute limits and daily
// budgets, body limits and validation, the OpenAI wire format (JSON and
// server-sent events), metrics and graceful shutdown. Routing, pricing,
// retries, escalation and the ledger belong to the executor; workflow
// planning and its JSON contract belong to the command line, which hands
// the server a WorkflowService.
//
// Its configuration is read from the same TOML file as the providers (see
// [ParseConfig]): [[server.key]] tables, an optional [server] table and
// [[route]] tables.
//
// Not yet: POST /v1/runs and GET /v1/runs/{id} (workflow runs over HTTP);
// tool calls, images and n > 1 in chat completions. Streaming answers are
// sent as server-sent events once the upstream has answered in full (the
// router does not stream from upstream), so the first token arrives with
// the last.
package server
