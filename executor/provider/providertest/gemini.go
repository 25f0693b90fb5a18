package providertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/costwise/costwise/estimator/catalog"
)

// NewGeminiServer starts a fake Gemini API endpoint (Google AI, REST):
// POST {BaseURL}/v1beta/models/{model}:generateContent and
// :streamGenerateContent. BaseURL is the server URL itself (the value of
// base_url for a googleai provider; the client adds /v1beta).
//
// A stream is framed as the request asks: with ?alt=sse as server-sent
// events ("data: {...}" per chunk, no end marker), otherwise — as Google's
// Go client asks with $alt=json;enum-encoding=int — as one JSON array
// whose elements arrive as they are generated (finishReason then a
// number). Each chunk is a GenerateContentResponse with one candidate
// holding a few bytes of text, and usageMetadata as the service reports it
// on every chunk: promptTokenCount (Reply.Usage Input+CacheRead+
// CacheWrite, cached included), cachedContentTokenCount (CacheRead, when
// > 0), thoughtsTokenCount (Reasoning, when > 0), and candidatesTokenCount
// (Output) growing chunk by chunk to its total on the last one, which also
// carries finishReason (default STOP). generateContent answers one such
// object with the whole text.
//
// The key is read from x-goog-api-key or ?key=; none gives 403
// PERMISSION_DENIED, one refused by AcceptKeys 400 INVALID_ARGUMENT
// "API key not valid". Errors use Google's format {"error": {"code",
// "message", "status"}}; ErrorType sets status, ErrorMessage message.
// Reply's other fault switches work as for the other servers (StreamCut
// drops the connection after that many chunks, before the last one;
// Malformed cuts the first chunk's JSON; EmptyChoices answers no
// candidates; NoUsage omits usageMetadata).
func NewGeminiServer(script Script) *Server {
	return startServer(formatGemini, script, (*Server).serveGemini)
}

// geminiContent is a Content: a role and its parts.
type geminiContent struct {
	Role  string `json:"role"`
	Parts []struct {
		Text         string `json:"text"`
		FunctionCall *struct {
			Name string          `json:"name"`
			Args json.RawMessage `json:"args"`
		} `json:"functionCall"`
		InlineData *struct {
			MIMEType string `json:"mimeType"`
			Data     string `json:"data"`
		} `json:"inlineData"`
		FunctionResponse *struct {
			Name     string          `json:"name"`
			Response json.RawMessage `json:"response"`
		} `json:"functionResponse"`
	} `json:"parts"`
}

// messages reads a content as Messages: its text and function calls (as
// " name args": Gemini's calls have no id), and each function response
// as a "tool" message whose ToolCallID is the function's name.
func (c *geminiContent) messages() []Message {
	role := c.Role
	if role == "model" {
		role = "assistant"
	}
	m := Message{Role: role, Text: c.text()}
	var results []Message
	for _, p := range c.Parts {
		switch {
		case p.FunctionCall != nil:
			m.ToolCalls = append(m.ToolCalls, " "+p.FunctionCall.Name+" "+string(p.FunctionCall.Args))
		case p.InlineData != nil:
			m.Images = append(m.Images, "data:"+p.InlineData.MIMEType+";base64,"+p.InlineData.Data)
		case p.FunctionResponse != nil:
			var r struct {
				Response string `json:"response"`
			}
			_ = json.Unmarshal(p.FunctionResponse.Response, &r)
			results = append(results, Message{Role: "tool", Text: r.Response, ToolCallID: p.FunctionResponse.Name})
		}
	}
	if m.Text == "" && len(m.ToolCalls) == 0 && len(m.Images) == 0 && len(results) > 0 {
		return results
	}
	return append([]Message{m}, results...)
}

func (c *geminiContent) text() string {
	if c == nil {
		return ""
	}
	var b strings.Builder
	for _, p := range c.Parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// geminiRequest is the part of a GenerateContentRequest the server reads.
type geminiRequest struct {
	Contents          []geminiContent `json:"contents"`
	SystemInstruction *geminiContent  `json:"systemInstruction"`
	GenerationConfig  struct {
		MaxOutputTokens  int      `json:"maxOutputTokens"`
		Temperature      *float64 `json:"temperature"`
		ResponseMIMEType string   `json:"responseMimeType"`
	} `json:"generationConfig"`
	Tools []struct {
		FunctionDeclarations []struct {
			Name string `json:"name"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
}

// geminiFinish numbers the FinishReason enum, for enum-encoding=int.
var geminiFinish = map[string]int{"STOP": 1, "MAX_TOKENS": 2, "SAFETY": 3, "RECITATION": 4, "OTHER": 5}

func (s *Server) serveGemini(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	rest, ok := strings.CutPrefix(path, "/v1beta/models/")
	if !ok {
		rest, ok = strings.CutPrefix(path, "/v1/models/")
	}
	model, method, _ := strings.Cut(rest, ":")
	if r.Method != http.MethodPost || !ok || (method != "generateContent" && method != "streamGenerateContent") {
		geminiError(w, http.StatusNotFound, "", fmt.Sprintf("The requested URL %s was not found on this server.", path))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		geminiError(w, http.StatusBadRequest, "", "could not read the request body")
		return
	}
	key := r.Header.Get("X-Goog-Api-Key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	var req geminiRequest
	jsonErr := json.Unmarshal(body, &req)
	stream := method == "streamGenerateContent"
	call := Call{Model: model, Key: key, Header: r.Header.Clone(), Body: body, Stream: stream,
		System: req.SystemInstruction.text(), MaxTokens: req.GenerationConfig.MaxOutputTokens,
		Temperature: req.GenerationConfig.Temperature, JSON: req.GenerationConfig.ResponseMIMEType == "application/json"}
	for _, c := range req.Contents {
		for _, m := range c.messages() {
			call.add(m)
		}
	}
	for _, t := range req.Tools {
		for _, f := range t.FunctionDeclarations {
			call.Tools = append(call.Tools, f.Name)
		}
	}

	switch {
	case key == "":
		s.record(call)
		geminiError(w, http.StatusForbidden, "", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
		return
	case !s.keyAccepted(key):
		s.record(call)
		geminiError(w, http.StatusBadRequest, "", "API key not valid. Please pass a valid API key.")
		return
	case jsonErr != nil:
		s.record(call)
		geminiError(w, http.StatusBadRequest, "", "Invalid JSON payload received. "+jsonErr.Error())
		return
	case len(req.Contents) == 0:
		s.record(call)
		geminiError(w, http.StatusBadRequest, "", "* GenerateContentRequest.contents: contents is not specified")
		return
	}
	rep, known := s.replyFor(call)
	call.Reply = rep
	i := s.record(call)
	if !known {
		geminiError(w, http.StatusNotFound, "", fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for generateContent.", model))
		return
	}
	if !s.fault(w, r, rep) {
		return
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		geminiError(w, rep.Status, rep.ErrorType, rep.ErrorMessage)
		return
	}
	if rep.RawBody != "" {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = io.WriteString(w, rep.RawBody)
		return
	}
	answer := rep.answer()
	usage := s.usage(rep, call, answer)
	if !rep.NoUsage && !rep.Malformed && !rep.EmptyChoices && rep.StreamCut == 0 {
		s.setUsage(i, usage)
	}
	sse := r.URL.Query().Get("alt") == "sse"
	intEnums := strings.Contains(r.URL.Query().Get("$alt"), "enum-encoding=int")
	finish := rep.FinishReason
	if finish == "" {
		finish = "STOP"
	}
	id := s.id("resp-")
	parts := chunks(answer)
	if !stream || len(parts) == 0 {
		parts = []string{answer}
	}
	// chunk is the k-th GenerateContentResponse of len(parts).
	chunk := func(k int) map[string]any {
		out := map[string]any{"modelVersion": model, "responseId": id}
		if rep.EmptyChoices {
			out["candidates"] = []any{}
		} else {
			content := []any{}
			if parts[k] != "" {
				content = append(content, map[string]any{"text": parts[k]})
			}
			if k == len(parts)-1 {
				for _, tc := range rep.ToolCalls { // Gemini's calls have no id
					content = append(content, map[string]any{"functionCall": map[string]any{"name": tc.Name, "args": json.RawMessage(tc.Arguments)}})
				}
			}
			c := map[string]any{"content": map[string]any{"role": "model", "parts": content}, "index": 0}
			if k == len(parts)-1 {
				c["finishReason"] = finish
				if n, ok := geminiFinish[finish]; ok && intEnums {
					c["finishReason"] = n
				}
			}
			out["candidates"] = []any{c}
		}
		if !rep.NoUsage {
			out["usageMetadata"] = geminiUsage(usage, k, len(parts))
		}
		return out
	}
	if rep.Malformed {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		b, _ := json.Marshal(chunk(0))
		if stream && !sse {
			_, _ = io.WriteString(w, "[")
		}
		_, _ = w.Write(b[:len(b)/2])
		return
	}
	if !stream {
		writeJSON(w, chunk(0))
		return
	}
	f, _ := w.(http.Flusher)
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	}
	for k := range parts {
		if rep.StreamCut > 0 && k >= rep.StreamCut {
			panic(http.ErrAbortHandler) // drop the connection mid-stream
		}
		if !s.pause(r, rep, k) {
			return
		}
		b, _ := json.Marshal(chunk(k))
		switch {
		case sse:
			_, _ = fmt.Fprintf(w, "data: %s\r\n\r\n", b)
		case k == 0:
			_, _ = fmt.Fprintf(w, "[%s", b)
		default:
			_, _ = fmt.Fprintf(w, "\n,\r\n%s", b)
		}
		f.Flush()
	}
	if !sse {
		_, _ = io.WriteString(w, "]")
	}
}

// geminiUsage is chunk k's usageMetadata of n: the prompt counts on every
// chunk, the output counted so far (all of it on the last chunk).
func geminiUsage(u catalog.Usage, k, n int) map[string]any {
	prompt := u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens + u.CacheWrite1hTokens + u.AudioInputTokens
	out := u.OutputTokens + u.AudioOutputTokens
	if k < n-1 {
		out = out * int64(k+1) / int64(n)
	}
	m := map[string]any{"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out + u.ReasoningTokens}
	if u.CacheReadTokens > 0 {
		m["cachedContentTokenCount"] = u.CacheReadTokens
	}
	if u.ReasoningTokens > 0 {
		m["thoughtsTokenCount"] = u.ReasoningTokens
	}
	return m
}

// geminiStatus is the google.rpc status name of an HTTP status.
func geminiStatus(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	default:
		if code >= 500 {
			return "INTERNAL"
		}
		return "FAILED_PRECONDITION"
	}
}

// geminiError answers in Google's error format; status "" and msg "" are
// filled from the HTTP status.
func geminiError(w http.ResponseWriter, code int, status, msg string) {
	if status == "" {
		status = geminiStatus(code)
	}
	if msg == "" {
		switch code {
		case http.StatusTooManyRequests:
			msg = "Resource has been exhausted (e.g. check quota)."
		case http.StatusServiceUnavailable:
			msg = "The model is overloaded. Please try again later."
		default:
			msg = http.StatusText(code)
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}
