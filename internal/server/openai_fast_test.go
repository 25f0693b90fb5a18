package server

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// completionJSON is what encoding/json writes for the gateway's answer.
func completionJSON(t testing.TB, r *ChatResponse) string {
	b, err := json.Marshal(r)
	require.NoError(t, err)
	return string(b)
}

func answer(id, model, content, finish string, usage *Usage) *ChatResponse {
	return &ChatResponse{ID: id, Object: "chat.completion", Created: 1764216720, Model: model,
		Choices: []ChatChoice{{Message: &AssistantMessage{Role: "assistant", Content: &content}, FinishReason: &finish}}, Usage: usage}
}

var encodeCorpus = []string{
	"", "ok", "Hello, world!", `quote " backslash \ slash /`, "tab\tnewline\nreturn\rback\bfeed\f", "\x00\x01\x1f\x7f",
	"<script>alert('x') && 1 > 0</script>", "héllo wörld ☃ 日本語 🙂", "\u2028 and \u2029", "bad utf8 \xff\xfe end", "\xed\xa0\x80",
	"truncated \xe2\x82", `{"json": [1, 2, {"a": null}]}`,
}

func TestAppendCompletionIsWhatEncodingJSONWrites(t *testing.T) {
	for _, s := range encodeCorpus {
		t.Run(s, func(t *testing.T) {
			r := answer("chatcmpl-"+s, "openai/"+s, s, "stop", &Usage{PromptTokens: 20, CompletionTokens: 2, TotalTokens: 22})
			require.Equal(t, completionJSON(t, r), string(appendCompletion(nil, r)))
		})
	}
	t.Run("no usage, no role, no content, no finish reason", func(t *testing.T) {
		r := answer("id", "m", "x", "length", nil)
		r.Choices[0].Message.Role, r.Choices[0].Message.Content, r.Choices[0].FinishReason = "", nil, nil
		require.Equal(t, completionJSON(t, r), string(appendCompletion(nil, r)))
	})
	t.Run("cached prompt tokens", func(t *testing.T) {
		r := answer("id", "m", "x", "stop", &Usage{PromptTokens: 2000, CompletionTokens: 5, TotalTokens: 2005,
			PromptTokensDetails: &PromptTokensDetails{CachedTokens: 1800}})
		require.Equal(t, completionJSON(t, r), string(appendCompletion(nil, r)))
	})
	t.Run("a shape it does not write itself", func(t *testing.T) {
		r := answer("id", "m", "x", "stop", nil)
		r.Choices = append(r.Choices, r.Choices[0])
		require.Equal(t, completionJSON(t, r), string(appendCompletion(nil, r)))
	})
}

func FuzzAppendCompletion(f *testing.F) {
	for _, s := range encodeCorpus {
		f.Add(s, "openai/gpt-4o-mini", "stop", 20, 2)
	}
	f.Fuzz(func(t *testing.T, content, model, finish string, in, out int) {
		r := answer("chatcmpl-0123", model, content, finish, &Usage{PromptTokens: in, CompletionTokens: out, TotalTokens: in + out})
		if got, want := string(appendCompletion(nil, r)), completionJSON(t, r); got != want {
			t.Fatalf("appendCompletion wrote\n%s\nencoding/json writes\n%s", got, want)
		}
	})
}

// FuzzDecodeChatRequestPaths checks that the in-place decoding of a
// well-formed body and the Decoder that explains a malformed one agree.
func FuzzDecodeChatRequestPaths(f *testing.F) {
	for _, s := range []string{
		`{"model": "m", "messages": [{"role": "user", "content": "hi"}]}`,
		`{"model": "m", "messages": [{"role": "user", "content": "hi"}]} {}`,
		`{"model": "m", "max_tokens": "x", "messages": []}`,
		`{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}], "stop": ["x"], "temperature": 0.5}`,
		`[1]`, `{"model": 1}`, `{`, `null`, `{"model": "m", "messages": [{"role": "user", "content": "hi"}]}` + "\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(bytes.TrimSpace(body)) == 0 {
			return // refused before any decoding
		}
		got, gerr := DecodeChatRequest(body)
		var strict ChatRequest
		var want *ChatRequest
		werr := decodeStrict(body, &strict)
		if werr == nil {
			want, werr = validateChatRequest(&strict)
		}
		if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
			t.Fatalf("DecodeChatRequest: %v; the Decoder: %v", gerr, werr)
		}
		if gerr == nil {
			require.Equal(t, want, got)
		}
	})
}
