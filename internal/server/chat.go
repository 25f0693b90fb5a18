package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/executor"
)

// chat answers POST /v1/chat/completions.
//
// Status codes: 400 for a body that is not a valid request or names an
// unknown model, or a route no catalog model can serve (the message says
// which and why); 401 for a missing or wrong key; 413 for a body over the
// limit; 429 for a key over its rpm (rate_limit_exceeded, with
// Retry-After) or over its daily budget, or the gateway over its own
// (insufficient_quota, with Retry-After until the next UTC midnight) —
// 429 rather than 402 because it is what OpenAI answers for an exhausted
// quota, so OpenAI clients already handle it; 500 when the ledger fails;
// 502 when every model of the ladder failed upstream.
//
// A stream request (unless Options.BufferStreams) is streamed from the
// rung being tried: the status and headers (x-costwise-model,
// -escalations, -route, -run-id) are sent when that rung's first chunk
// arrives, so a rung that fails before it still escalates, and every
// error up to then is answered with a status as above. Each upstream
// chunk becomes one chat.completion.chunk event, flushed at once; then
// come the finish reason, the usage chunk (stream_options.include_usage)
// and [DONE]. The cost, unknown when the headers leave, is sent as the
// HTTP trailer x-costwise-cost-usd (and is in the ledger); clients that
// ignore trailers do not see it. A failure after the first chunk cannot
// escalate: the stream ends with a data: {"error": ...} event and no
// [DONE]. Routes with a validate rule, JSON mode or stop words are
// buffered by the router: their answer arrives in one chunk once checked;
// so are requests with tools, whose calls come whole, one delta with every
// call (each with its index), before the finish reason "tool_calls".
func (s *Server) chat(w http.ResponseWriter, r *http.Request, k *Key) {
	start := time.Now()
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()
	req, route, opts, ok := s.decodeChat(w, r, k)
	if !ok {
		return
	}
	var sw *sseWriter
	if req.Stream && !s.buffer {
		sw = &sseWriter{w: w, id: newID("chatcmpl-"), created: s.now().Unix(), route: route, simulated: s.simulated}
		opts = append(opts, executor.WithStreamStart(sw.start), llms.WithStreamingFunc(sw.content))
	}
	call, ok := s.prepareChat(w, req, opts)
	if !ok {
		return
	}
	plan := call.Plan()
	settle := func(int64) {}
	kb, day, err := s.dayBudget(k)
	if err != nil {
		s.log.Error("key budget", "key", k.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "ledger_error", "the gateway could not read this key's spend today: "+err.Error())
		return
	}
	if kb != nil {
		// Hold the worst case (every rung once, within the route's cap)
		// so concurrent requests cannot overspend the key's budget.
		var need int64
		for _, c := range plan.Ladder {
			need += c.ReserveNano
		}
		if plan.CapNano > 0 {
			need = min(need, plan.CapNano)
		}
		res, err := kb.Reserve(need)
		if err != nil {
			s.m.rejected.WithLabelValues("budget").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(day.Add(24*time.Hour).Sub(s.now()).Seconds())+1))
			writeError(w, http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota",
				fmt.Sprintf("key %q: this request may cost up to $%.6f, more than is left of the key's daily budget of $%.2f (spent $%.6f today, UTC); retry tomorrow or ask the operator to raise budget_usd_per_day",
					k.Name, float64(need)/1e9, float64(k.BudgetNanoPerDay)/1e9, float64(kb.Spent())/1e9))
			return
		}
		settle = res.Settle
	}
	resp, err := s.router.Execute(r.Context(), call)
	if err != nil {
		settle(0) // failed requests' paid attempts are in the ledger, not the key's day
		if sw != nil && sw.started {
			s.log.Warn("upstream failure after the stream started", "route", route, "err", err)
			sw.fail(err)
			s.m.requests.WithLabelValues(route, sw.model, "", "stream_error").Inc()
			s.m.latency.WithLabelValues(route, sw.model, "").Observe(time.Since(start).Seconds())
			return
		}
		s.chatError(w, r, route, err, start)
		return
	}
	ch := resp.Choices[0]
	info := ch.GenerationInfo
	model := metaString(info, executor.InfoModel)
	costNano, _ := info[executor.InfoCostNano].(int64)
	costUSD, _ := info[executor.InfoCostUSD].(float64)
	settle(costNano)
	provider := ""
	if m, ok := s.cat.Lookup(model); ok {
		provider = m.Provider
	}
	esc := metaInt(info, executor.InfoEscalations)
	usage := &Usage{PromptTokens: metaInt(info, "PromptTokens"), CompletionTokens: metaInt(info, "CompletionTokens")}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	cacheRead, cacheWrite := metaInt(info, "PromptCachedTokens"), metaInt(info, "CacheCreationTokens")
	if cacheRead > 0 {
		usage.PromptTokensDetails = &PromptTokensDetails{CachedTokens: cacheRead}
	}

	h := w.Header()
	h.Set("x-costwise-model", model)
	h.Set("x-costwise-cost-usd", strconv.FormatFloat(costUSD, 'f', -1, 64))
	h.Set("x-costwise-escalations", strconv.Itoa(esc))
	h.Set("x-costwise-route", route)
	if s.simulated {
		h.Set("x-costwise-simulated", "true")
	}
	if id := metaString(info, executor.InfoRunID); id != "" {
		h.Set("x-costwise-run-id", id)
	}
	id, created, finish := newID("chatcmpl-"), s.now().Unix(), finishReason(ch.StopReason)
	if len(ch.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	switch {
	case sw != nil:
		if !sw.started { // nothing was streamed: an empty answer, or tool calls
			sw.start(executor.StreamStart{Model: model, Escalations: esc, RunID: metaString(info, executor.InfoRunID)})
		}
		sw.finish(strconv.FormatFloat(costUSD, 'f', -1, 64), toolCalls(ch.ToolCalls, true), finish, usage, req.IncludeUsage())
	case req.Stream:
		writeStream(w, id, created, model, ch.Content, toolCalls(ch.ToolCalls, true), finish, usage, req.IncludeUsage())
	default:
		msg := &AssistantMessage{Role: "assistant", ToolCalls: toolCalls(ch.ToolCalls, false)}
		if content := ch.Content; content != "" || len(msg.ToolCalls) == 0 {
			msg.Content = &content
		}
		out := appendCompletion(make([]byte, 0, 256+len(ch.Content)), &ChatResponse{ID: id, Object: "chat.completion", Created: created,
			Model: model, Choices: []ChatChoice{{Message: msg, Logprobs: choiceLogprobs(info), FinishReason: &finish}}, Usage: usage})
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(out)+1))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(out, '\n'))
	}
	ms := s.m.answeredFor(route, model, provider)
	ms.requests.Inc()
	ms.promptTokens.Add(float64(usage.PromptTokens))
	ms.completion.Add(float64(usage.CompletionTokens))
	if cacheRead > 0 {
		ms.cacheRead.Add(float64(cacheRead))
	}
	if cacheWrite > 0 {
		ms.cacheWrite.Add(float64(cacheWrite))
	}
	ms.cost.Add(costUSD)
	ms.escalations.Add(float64(esc))
	ms.latency.Observe(time.Since(start).Seconds())
}

// decodeChat reads and checks a chat completions body and returns it with
// its route and call options; it answers 400 (or 413) itself and returns
// false when the body cannot be served.
func (s *Server) decodeChat(w http.ResponseWriter, r *http.Request, k *Key) (*ChatRequest, string, []llms.CallOption, bool) {
	body, ok := s.readBody(w, r)
	if !ok {
		s.m.rejected.WithLabelValues("bad_request").Inc()
		return nil, "", nil, false
	}
	req, err := DecodeChatRequest(body)
	if err != nil {
		s.m.rejected.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
		return nil, "", nil, false
	}
	route, opts, ok := s.callOptionsFor(req.Model)
	if !ok {
		s.m.rejected.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusBadRequest, "invalid_request_error", "model_not_found",
			fmt.Sprintf("model %q is neither a catalog model id nor a route; send %q, a route name or a catalog id (GET /v1/models lists them)", truncate(req.Model), AutoModel))
		return nil, "", nil, false
	}
	opts = append(opts, req.callOptions()...)
	if len(s.cfg.Keys) > 0 { // the ledger knows whose request it was
		opts = append(opts, executor.WithOwner(k.Name))
	}
	return req, route, opts, true
}

// prepareChat routes a decoded request; it answers 400 itself and returns
// false when no model can take it.
func (s *Server) prepareChat(w http.ResponseWriter, req *ChatRequest, opts []llms.CallOption) (*executor.PreparedCall, bool) {
	call, err := s.router.Prepare(req.messages(), opts...)
	if err != nil {
		s.m.rejected.WithLabelValues("bad_request").Inc()
		code := "no_model_qualifies"
		if errors.Is(err, executor.ErrInvalidSchema) {
			code = "invalid_json_schema"
		}
		writeError(w, http.StatusBadRequest, "invalid_request_error", code, err.Error())
		return nil, false
	}
	return call, true
}

// ChatPlan is the answer of POST /v1/chat/plan: how the gateway would route
// a chat completion, without sending it. Amounts are USD.
type ChatPlan struct {
	Object               string  `json:"object"` // "costwise.chat_plan"
	Route                string  `json:"route"`
	Task                 string  `json:"task"`
	TaskSource           string  `json:"task_source"` // metadata, route or heuristic
	PickedBy             string  `json:"picked_by"`   // cost, classifier or cascade
	Cascade              string  `json:"cascade,omitempty"`
	PredictedCostUSD     float64 `json:"predicted_cost_usd"`
	PromptTokens         int     `json:"prompt_tokens"` // o200k_base, the conversation as one text
	ExpectedOutputTokens int     `json:"expected_output_tokens"`
	// MaxCostUSD is the route's cap per request (null: none).
	MaxCostUSD *float64 `json:"max_cost_usd"`
	// Ladder is the models in the order they would be tried.
	Ladder []ChatPlanRung `json:"ladder"`
	// Rejected counts the catalog's other models by reason, with one
	// example of each.
	Rejected []ChatPlanRejection `json:"rejected"`
}

// ChatPlanRung is one model of a ChatPlan's ladder.
type ChatPlanRung struct {
	Model            string  `json:"model"`
	Provider         string  `json:"provider"`
	Quality          float64 `json:"quality"`
	InputTokens      int64   `json:"input_tokens"`
	MaxTokens        int     `json:"max_tokens"`
	PredictedCostUSD float64 `json:"predicted_cost_usd"`
	// ReserveUSD is what the gateway holds from the key's budget before
	// the call: its worst case.
	ReserveUSD float64 `json:"reserve_usd"`
	// Signal and Threshold are set on a cascade's stages.
	Signal    string   `json:"signal,omitempty"`
	Threshold *float64 `json:"threshold,omitempty"`
}

// ChatPlanRejection is how many models one reason left out, and one of them.
type ChatPlanRejection struct {
	Reason  string `json:"reason"`
	Count   int    `json:"count"`
	Example string `json:"example"` // "model: detail"
}

// chatPlan answers POST /v1/chat/plan: the body of a chat completion in,
// the routing decision out (ChatPlan); nothing is sent or charged.
func (s *Server) chatPlan(w http.ResponseWriter, r *http.Request, k *Key) {
	req, _, opts, ok := s.decodeChat(w, r, k)
	if !ok {
		return
	}
	call, ok := s.prepareChat(w, req, opts)
	if !ok {
		return
	}
	p := call.Plan()
	out := ChatPlan{Object: "costwise.chat_plan", Route: p.Route, Task: p.Task, TaskSource: p.TaskSource, PickedBy: p.PickedBy,
		Cascade: p.Cascade, PredictedCostUSD: p.PredictedUSD, PromptTokens: p.PromptTokens, ExpectedOutputTokens: p.ExpectedOutput,
		Ladder: make([]ChatPlanRung, 0, len(p.Ladder)), Rejected: []ChatPlanRejection{}}
	if p.CapNano > 0 {
		c := float64(p.CapNano) / 1e9
		out.MaxCostUSD = &c
	}
	for _, c := range p.Ladder {
		rung := ChatPlanRung{Model: c.Model, Provider: c.Provider, Quality: c.Quality, InputTokens: c.InputTokens, MaxTokens: c.MaxTokens,
			PredictedCostUSD: c.PredictedUSD, ReserveUSD: float64(c.ReserveNano) / 1e9, Signal: c.Signal}
		if c.Signal != "" {
			th := c.Threshold
			rung.Threshold = &th
		}
		out.Ladder = append(out.Ladder, rung)
	}
	at := map[string]int{}
	for _, x := range p.Rejected {
		i, seen := at[x.Reason]
		if !seen {
			i, at[x.Reason] = len(out.Rejected), len(out.Rejected)
			out.Rejected = append(out.Rejected, ChatPlanRejection{Reason: x.Reason, Example: x.Model + ": " + x.Detail})
		}
		out.Rejected[i].Count++
	}
	writeJSONBody(w, http.StatusOK, out)
}

// chatError answers a request the router could not serve.
func (s *Server) chatError(w http.ResponseWriter, r *http.Request, route string, err error, start time.Time) {
	var be *executor.ErrBudgetExhausted
	status := http.StatusBadGateway
	switch {
	case r.Context().Err() != nil:
		status = 499 // the client went away; nobody reads the answer
	case errors.As(err, &be):
		status = http.StatusTooManyRequests
		now := s.now().UTC()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		w.Header().Set("Retry-After", strconv.Itoa(int(midnight.Sub(now).Seconds())+1))
		writeError(w, status, "insufficient_quota", "insufficient_quota",
			"the gateway's daily budget (server.budget_usd_per_day) is exhausted: "+err.Error())
	case strings.Contains(err.Error(), "router: ledger:"):
		status = http.StatusInternalServerError
		s.log.Error("ledger failure", "route", route, "err", err)
		writeError(w, status, "server_error", "ledger_error", "the gateway could not record the request: "+err.Error())
	default:
		s.log.Warn("upstream failure", "route", route, "err", err)
		writeError(w, status, "upstream_error", "upstream_failed", err.Error())
	}
	s.m.requests.WithLabelValues(route, "", "", strconv.Itoa(status)).Inc()
	s.m.latency.WithLabelValues(route, "", "").Observe(time.Since(start).Seconds())
}

// writeStream sends an answer as OpenAI server-sent events: the role, the
// content, the tool calls, the finish reason, the usage when asked, then
// [DONE].
func writeStream(w http.ResponseWriter, id string, created int64, model, content string, calls []ToolCall, finish string, usage *Usage, includeUsage bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(c ChatChunk) {
		c.ID, c.Object, c.Created, c.Model = id, "chat.completion.chunk", created, model
		b, _ := json.Marshal(c)
		_, _ = w.Write([]byte("data: "))
		_, _ = w.Write(b)
		_, _ = w.Write([]byte("\n\n"))
		if fl != nil {
			fl.Flush()
		}
	}
	empty := ""
	send(ChatChunk{Choices: []ChatChoice{{Delta: &AssistantDelta{Role: "assistant", Content: &empty}}}})
	if content != "" {
		send(ChatChunk{Choices: []ChatChoice{{Delta: &AssistantDelta{Content: &content}}}})
	}
	if len(calls) > 0 {
		send(ChatChunk{Choices: []ChatChoice{{Delta: &AssistantDelta{ToolCalls: calls}}}})
	}
	send(ChatChunk{Choices: []ChatChoice{{Delta: &AssistantDelta{}, FinishReason: &finish}}})
	if includeUsage {
		send(ChatChunk{Choices: []ChatChoice{}, Usage: usage})
	}
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
	if fl != nil {
		fl.Flush()
	}
}

// sseWriter streams one answer as OpenAI server-sent events while the
// router passes its chunks on. It is used by one request's goroutine.
type sseWriter struct {
	w            http.ResponseWriter
	id           string
	created      int64
	route, model string
	simulated    bool // x-costwise-simulated: the server answers with a Simulator
	started      bool
	werr         error // first write error: the client went away
}

// start sends the status, the headers and the role chunk.
func (sw *sseWriter) start(st executor.StreamStart) {
	if sw.started {
		return
	}
	sw.started, sw.model = true, st.Model
	h := sw.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("x-costwise-model", st.Model)
	h.Set("x-costwise-escalations", strconv.Itoa(st.Escalations))
	h.Set("x-costwise-route", sw.route)
	if sw.simulated {
		h.Set("x-costwise-simulated", "true")
	}
	if st.RunID != "" {
		h.Set("x-costwise-run-id", st.RunID)
	}
	h.Set("Trailer", "x-costwise-cost-usd")
	sw.w.WriteHeader(http.StatusOK)
	empty := ""
	sw.send(ChatChunk{Choices: []ChatChoice{{Delta: &AssistantDelta{Role: "assistant", Content: &empty}}}})
}

// content sends one upstream chunk; a write error (the client is gone)
// stops the upstream call.
func (sw *sseWriter) content(_ context.Context, chunk []byte) error {
	text := string(chunk)
	sw.send(ChatChunk{Choices: []ChatChoice{{Delta: &AssistantDelta{Content: &text}}}})
	return sw.werr
}

// finish sends the tool calls (each whole, in one delta), the finish
// reason, the usage when asked, [DONE] and the cost trailer.
func (sw *sseWriter) finish(costUSD string, calls []ToolCall, reason string, usage *Usage, includeUsage bool) {
	if len(calls) > 0 {
		sw.send(ChatChunk{Choices: []ChatChoice{{Delta: &AssistantDelta{ToolCalls: calls}}}})
	}
	sw.send(ChatChunk{Choices: []ChatChoice{{Delta: &AssistantDelta{}, FinishReason: &reason}}})
	if includeUsage {
		sw.send(ChatChunk{Choices: []ChatChoice{}, Usage: usage})
	}
	sw.raw([]byte("data: [DONE]\n\n"))
	sw.w.Header().Set("x-costwise-cost-usd", costUSD)
}

// fail ends a started stream with an error event (and no [DONE]).
func (sw *sseWriter) fail(err error) {
	b, _ := json.Marshal(ErrorBody{Error: ErrorDetail{Message: err.Error(), Type: "upstream_error", Code: "stream_broken"}})
	sw.raw(append(append([]byte("data: "), b...), "\n\n"...))
}

func (sw *sseWriter) send(c ChatChunk) {
	c.ID, c.Object, c.Created, c.Model = sw.id, "chat.completion.chunk", sw.created, sw.model
	b, _ := json.Marshal(c)
	sw.raw(append(append([]byte("data: "), b...), "\n\n"...))
}

func (sw *sseWriter) raw(b []byte) {
	if sw.werr != nil {
		return
	}
	if _, err := sw.w.Write(b); err != nil {
		sw.werr = err
		return
	}
	if fl, ok := sw.w.(http.Flusher); ok {
		fl.Flush()
	}
}
