// Package providertest runs fake LLM provider endpoints for tests: HTTP
// servers that speak the real wire formats of the OpenAI chat completions
// API (JSON and server-sent events, with stream_options.include_usage),
// the Anthropic messages API (JSON and SSE), Ollama's /api/chat (NDJSON)
// and the Gemini API's generateContent and streamGenerateContent (a JSON
// array, or SSE with alt=sse, usageMetadata on every chunk), and inject
// faults on demand.
//
// A [Script] lists, per model name, the replies the server gives in turn:
// a normal answer with chosen text and usage, or a fault (an HTTP error in
// the provider's error format with an optional Retry-After, a hang past the
// client's timeout, a malformed body, empty choices, a missing usage
// block, a dropped connection, a stream cut short). The server records
// every request it received ([Server.Calls]) with the key presented, the
// parsed prompt and options, and the usage it reported, so that tests can
// check what was sent and price what was billed:
//
//	srv := providertest.NewOpenAIServer(providertest.Script{
//		"gpt-4o-mini": {
//			{Status: 429, RetryAfter: "2"},
//			{Text: "hello", Usage: &catalog.Usage{InputTokens: 10, OutputTokens: 2}},
//		},
//	})
//	defer srv.Close()
//	// point [providers.x] base_url at srv.BaseURL()
//
// It is a test helper: use fake keys only (it records them).
package providertest
