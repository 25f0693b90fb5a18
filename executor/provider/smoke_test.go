package provider

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
)

// Google AI: construction through genai's REST client and one
// generateContent round trip against a fake endpoint.
func TestGoogleAISmoke(t *testing.T) {
	var mu sync.Mutex
	var gotPath, gotKey string
	var gotBody map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		gotPath, gotKey = r.URL.Path, r.Header.Get("X-Goog-Api-Key")
		_ = json.Unmarshal(b, &gotBody)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		body := `{
  "candidates": [{"content": {"parts": [{"text": "Paris."}], "role": "model"}, "finishReason": "STOP", "index": 0}],
  "usageMetadata": {"promptTokenCount": 4000, "candidatesTokenCount": 3, "totalTokenCount": 4003, "cachedContentTokenCount": 3000},
  "modelVersion": "gemini-2.5-flash"
}`
		if strings.Contains(r.URL.Path, ":streamGenerateContent") {
			body = "[" + body + "]" // the REST stream is a JSON array
		}
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	t.Setenv("CW_TEST_GEMINI", keyA)
	cl, err := NewClient(ProviderConfig{Name: "gemini", Kind: KindGoogleAI, APIKeyEnv: []string{"CW_TEST_GEMINI"}, BaseURL: srv.URL})
	require.NoError(t, err)
	defer func() { _ = cl.(*client).ring.slots[0].close() }()
	resp, err := cl.Call(context.Background(), Request{Model: "gemini-2.5-flash", System: "Be brief.", Prompt: "Capital of France?", MaxTokens: 20})
	require.NoError(t, err)
	assert.Equal(t, "Paris.", resp.Text)
	assert.True(t, resp.UsageReported)
	assert.Equal(t, catalog.Usage{InputTokens: 1000, CacheReadTokens: 3000, OutputTokens: 3}, resp.Usage)
	mu.Lock()
	defer mu.Unlock()
	assert.True(t, strings.HasPrefix(gotPath, "/v1beta/models/gemini-2.5-flash:"), gotPath)
	assert.Equal(t, keyA, gotKey, "the key travels in x-goog-api-key")
	assert.Contains(t, gotBody, "contents")
}

// Ollama: construction and one /api/chat round trip (NDJSON stream).
func TestOllamaSmoke(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/chat" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = io.WriteString(w, `{"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}
{"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"lo"},"done":false}
{"model":"llama3.2","created_at":"2025-01-01T00:00:01Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":1000,"prompt_eval_count":26,"eval_count":2}
`)
	}))
	defer srv.Close()
	cl, err := NewClient(ProviderConfig{Name: "local", Kind: KindOllama, BaseURL: srv.URL})
	require.NoError(t, err)
	resp, err := cl.Call(context.Background(), Request{Model: "llama3.2", Prompt: "Say hello"})
	require.NoError(t, err)
	assert.Equal(t, "Hello", resp.Text)
	assert.Equal(t, catalog.Usage{InputTokens: 26, OutputTokens: 2}, resp.Usage)
	assert.True(t, resp.UsageReported)
	assert.Empty(t, resp.KeyEnv)
}
