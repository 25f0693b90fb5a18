package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

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
func (s *Server) chat(w http.ResponseWriter, r *http.Request, k *Key) {
	start := time.Now()
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()
	body, ok := s.readBody(w, r)
	if !ok {
		s.m.rejected.WithLabelValues("bad_request").Inc()
		return
	}
	req, err := DecodeChatRequest(body)
	if err != nil {
		s.m.rejected.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
		return
	}
	route, opts, ok := s.callOptionsFor(req.Model)
	if !ok {
		s.m.rejected.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusBadRequest, "invalid_request_error", "model_not_found",
			fmt.Sprintf("model %q is neither a catalog model id nor a route; send %q, a route name or a catalog id (GET /v1/models lists them)", truncate(req.Model), AutoModel))
		return
	}
	opts = append(opts, req.callOptions()...)
	msgs := req.messages()
	call, err := s.router.Prepare(msgs, opts...)
	if err != nil {
		s.m.rejected.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusBadRequest, "invalid_request_error", "no_model_qualifies", err.Error())
		return
	}
	plan := call.Plan()
	settle := func(int64) {}
	if kb, day := s.dayBudget(k); kb != nil {
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

	h := w.Header()
	h.Set("x-costwise-model", model)
	h.Set("x-costwise-cost-usd", strconv.FormatFloat(costUSD, 'f', -1, 64))
	h.Set("x-costwise-escalations", strconv.Itoa(esc))
	h.Set("x-costwise-route", route)
	if id := metaString(info, executor.InfoRunID); id != "" {
		h.Set("x-costwise-run-id", id)
	}
	id, created, finish := newID("chatcmpl-"), s.now().Unix(), finishReason(ch.StopReason)
	if req.Stream {
		writeStream(w, id, created, model, ch.Content, finish, usage, req.IncludeUsage())
	} else {
		content := ch.Content
		writeJSONBody(w, http.StatusOK, ChatResponse{ID: id, Object: "chat.completion", Created: created, Model: model,
			Choices: []ChatChoice{{Message: &AssistantDelta{Role: "assistant", Content: &content}, FinishReason: &finish}},
			Usage:   usage})
	}
	s.m.requests.WithLabelValues(route, model, provider, "200").Inc()
	s.m.tokens.WithLabelValues(route, model, provider, "prompt").Add(float64(usage.PromptTokens))
	s.m.tokens.WithLabelValues(route, model, provider, "completion").Add(float64(usage.CompletionTokens))
	s.m.cost.WithLabelValues(route, model, provider).Add(costUSD)
	s.m.escalations.WithLabelValues(route, model, provider).Add(float64(esc))
	s.m.latency.WithLabelValues(route, model, provider).Observe(time.Since(start).Seconds())
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
// content, the finish reason, the usage when asked, then [DONE].
func writeStream(w http.ResponseWriter, id string, created int64, model, content, finish string, usage *Usage, includeUsage bool) {
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
	send(ChatChunk{Choices: []ChatChoice{{Delta: &AssistantDelta{}, FinishReason: &finish}}})
	if includeUsage {
		send(ChatChunk{Choices: []ChatChoice{}, Usage: usage})
	}
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
	if fl != nil {
		fl.Flush()
	}
}
