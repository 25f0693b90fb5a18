package providertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/costwise/costwise/estimator/catalog"
)

// The Ollama and Gemini servers share Server's script, call log and fault
// switches; only their wire formats differ.
const (
	formatOllama format = iota + 100
	formatGemini
)

// NewOllamaServer starts a fake Ollama chat endpoint (POST
// {BaseURL}/api/chat). Like the real service it streams newline-delimited
// JSON unless the request says "stream": false: one line per text chunk,
// then a line with "done": true, the done_reason and the usage as
// prompt_eval_count (Reply.Usage Input+CacheRead+CacheWrite: Ollama has
// no cache split) and eval_count (Output+Reasoning), with durations in
// nanoseconds. Errors are {"error": "..."} with the HTTP status. Ollama
// takes no key; one presented as Authorization: Bearer is recorded.
//
// Reply fields: Text, Usage, NoUsage (no counts on the last line),
// FinishReason (done_reason, default "stop"), Status and ErrorMessage,
// Delay, Hang, Reset, Malformed (a line cut in the middle), EmptyChoices
// (no content lines), StreamCut (drop the connection after that many
// content lines, before "done"), ChunkDelay and RawBody.
func NewOllamaServer(script Script) *Server {
	return startServer(formatOllama, script, (*Server).serveOllama)
}

// ollamaRequest is the part of an /api/chat request the server reads.
type ollamaRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string   `json:"role"`
		Content string   `json:"content"`
		Images  []string `json:"images"` // base64, no media type
	} `json:"messages"`
	Stream  *bool           `json:"stream"`
	Format  json.RawMessage `json:"format"`
	Options struct {
		NumPredict  int      `json:"num_predict"`
		Temperature *float64 `json:"temperature"`
	} `json:"options"`
}

func (s *Server) serveOllama(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/chat" {
		ollamaError(w, http.StatusNotFound, "404 page not found")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		ollamaError(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var req ollamaRequest
	jsonErr := json.Unmarshal(body, &req)
	stream := req.Stream == nil || *req.Stream // Ollama streams by default
	call := Call{Model: req.Model, Key: key, Header: r.Header.Clone(), Body: body, Stream: stream,
		MaxTokens: req.Options.NumPredict, Temperature: req.Options.Temperature}
	var format string
	_ = json.Unmarshal(req.Format, &format)
	call.JSON = format == "json" || (len(req.Format) > 0 && req.Format[0] == '{')
	for _, m := range req.Messages {
		if m.Role == "system" {
			call.System += m.Content
			continue
		}
		msg := Message{Role: m.Role, Text: m.Content}
		for _, img := range m.Images {
			msg.Images = append(msg.Images, "base64,"+img)
		}
		call.add(msg)
	}
	if jsonErr != nil {
		s.record(call)
		ollamaError(w, http.StatusBadRequest, "invalid character in request body: "+jsonErr.Error())
		return
	}
	if req.Model == "" {
		s.record(call)
		ollamaError(w, http.StatusBadRequest, "model is required")
		return
	}
	rep, ok := s.replyFor(call)
	call.Reply = rep
	i := s.record(call)
	if !ok {
		ollamaError(w, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", req.Model))
		return
	}
	if !s.fault(w, r, rep) {
		return
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		msg := rep.ErrorMessage
		if msg == "" {
			msg = strings.ToLower(http.StatusText(rep.Status))
		}
		ollamaError(w, rep.Status, msg)
		return
	}
	if rep.RawBody != "" {
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = io.WriteString(w, rep.RawBody)
		return
	}
	answer := rep.answer()
	usage := ollamaUsage(s.usage(rep, call, answer))
	if !rep.NoUsage && !rep.Malformed && rep.StreamCut == 0 {
		s.setUsage(i, usage)
	}
	created := time.Now().UTC()
	line := func(content string, done bool) map[string]any {
		l := map[string]any{"model": req.Model, "created_at": created.Format(time.RFC3339Nano),
			"message": map[string]any{"role": "assistant", "content": content}, "done": done}
		if done {
			reason := rep.FinishReason
			if reason == "" {
				reason = "stop"
			}
			l["done_reason"] = reason
			l["total_duration"], l["load_duration"] = int64(5_000_000), int64(1_000_000)
			if !rep.NoUsage {
				l["prompt_eval_count"] = usage.InputTokens
				l["prompt_eval_duration"] = int64(1_000_000)
				l["eval_count"] = usage.OutputTokens
				l["eval_duration"] = int64(3_000_000)
			}
		}
		return l
	}
	if rep.Malformed {
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = io.WriteString(w, `{"model":"`+req.Model+`","message":{"role":"assistant","content":"he`)
		return
	}
	if !stream {
		text := answer
		if rep.EmptyChoices {
			text = ""
		}
		writeJSON(w, line(text, true))
		return
	}
	f, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	send := func(v any) {
		b, _ := json.Marshal(v)
		_, _ = w.Write(append(b, '\n'))
		f.Flush()
	}
	if !rep.EmptyChoices {
		for k, part := range chunks(answer) {
			if rep.StreamCut > 0 && k >= rep.StreamCut {
				panic(http.ErrAbortHandler) // drop the connection mid-stream
			}
			if !s.pause(r, rep, k) {
				return
			}
			send(line(part, false))
		}
	}
	send(line("", true))
}

// fault plays the reply's transport faults (Retry-After, Hang, Delay,
// Reset); false means the request has been dealt with.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, rep Reply) bool {
	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	if rep.Hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return false
	}
	if rep.Delay > 0 {
		t := time.NewTimer(rep.Delay)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return false
		case <-s.done:
			return false
		case <-t.C:
		}
	}
	if rep.Reset {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return false
			}
		}
		panic(http.ErrAbortHandler)
	}
	return true
}

// ollamaError answers in Ollama's error format.
func ollamaError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": msg})
}

// ollamaUsage folds u into the two counts Ollama reports: InputTokens is
// prompt_eval_count, OutputTokens eval_count.
func ollamaUsage(u catalog.Usage) catalog.Usage {
	return catalog.Usage{InputTokens: u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens + u.CacheWrite1hTokens,
		OutputTokens: u.OutputTokens + u.ReasoningTokens}
}
