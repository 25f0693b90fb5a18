package executor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// pngDataURL is a w x h PNG as a data: URL.
func pngDataURL(t *testing.T, w, h int) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))))
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

// TestRouterImages: a call with a picture goes only to models that take
// images, each priced with its own image rule: a PNG's size is read from
// its data: URL, a remote picture is priced at the most the rule bills for
// a picture a provider accepts; the picture reaches the provider.
func TestRouterImages(t *testing.T) {
	e := newRTEnv(t, providertest.Script{"mini": {{Text: "A grey square.", Usage: u(900, 5)}}}, providertest.Script{})
	// mini takes images, billed with OpenAI's tile rule.
	blocks := strings.Split(rtCatalog, "[[model]]")
	for i, b := range blocks {
		if strings.Contains(b, `id = "openai/mini"`) {
			b = strings.Replace(b, `modalities = ["text"]`, `modalities = ["text", "image"]`, 1)
			blocks[i] = strings.Replace(b, "\n[model.quality]", "\nimage_tokens = \"openai-tile\"\nimage_base_tokens = 85\nimage_tile_tokens = 170\n[model.quality]", 1)
		}
	}
	src := strings.Join(blocks, "[[model]]")
	cat, err := catalog.LoadTOML("rt-catalog.toml", []byte(src))
	require.NoError(t, err)
	mini, ok := cat.Lookup("openai/mini")
	require.True(t, ok)
	require.True(t, mini.HasModality("image"), "the test catalog gives mini image input")
	e.cat = cat
	r := e.router(t, executor.RouterOptions{})

	inputOf := func(msgs []llms.MessageContent, opts ...llms.CallOption) (ladder []string, miniIn int64) {
		t.Helper()
		p, err := r.Prepare(msgs, opts...)
		require.NoError(t, err)
		for _, c := range p.Plan().Ladder {
			ladder = append(ladder, c.Model)
			if c.Model == "openai/mini" {
				miniIn = c.InputTokens
			}
		}
		return ladder, miniIn
	}
	ask := func(parts ...llms.ContentPart) []llms.MessageContent {
		return []llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: append([]llms.ContentPart{llms.TextContent{Text: "What is this?"}}, parts...)}}
	}
	// The same text with the transcript's marker of one picture, as the
	// prompt is counted.
	_, textOnly := inputOf(human("What is this?\n[image]"), llms.WithModel("openai/mini"))
	require.Positive(t, textOnly)
	square := pngDataURL(t, 1024, 1024)
	// A noisy 600x400 PNG is over a megabyte as base64: its size is read
	// from the head of the data: URL.
	noisy := image.NewRGBA(image.Rect(0, 0, 600, 400))
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range noisy.Pix {
		noisy.Pix[i] = uint8(rnd.IntN(256))
	}
	var nb bytes.Buffer
	require.NoError(t, png.Encode(&nb, noisy))
	large := "data:image/png;base64," + base64.StdEncoding.EncodeToString(nb.Bytes())
	require.Greater(t, len(large), 1<<20)
	for _, tc := range []struct {
		name  string
		image llms.ImageURLContent
		want  int64
	}{
		{"1024x1024, high detail: 2x2 tiles", llms.ImageURLContent{URL: square, Detail: "high"}, 85 + 4*170},
		{"low detail: the base", llms.ImageURLContent{URL: square, Detail: "low"}, 85},
		{"a large PNG, 600x400: 2x1 tiles", llms.ImageURLContent{URL: large, Detail: "high"}, 85 + 2*170},
		{"remote, size unknown: the largest a provider keeps (768x2048, 2x4 tiles)", llms.ImageURLContent{URL: "https://example.com/x.png"}, 85 + 8*170},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ladder, in := inputOf(ask(tc.image))
			assert.Equal(t, []string{"openai/mini"}, ladder, "only models that take images")
			assert.Equal(t, tc.want, in-textOnly, "the image's tokens")
		})
	}

	resp, err := r.GenerateContent(context.Background(), ask(llms.ImageURLContent{URL: square, Detail: "high"}))
	require.NoError(t, err)
	assert.Equal(t, "A grey square.", resp.Choices[0].Content)
	calls := e.oa.CallsFor("mini")
	require.Len(t, calls, 1)
	require.Len(t, calls[0].Messages, 1)
	assert.Equal(t, "What is this?", calls[0].Messages[0].Text)
	assert.Equal(t, []string{square + "#detail=high"}, calls[0].Messages[0].Images)
}

// TestRouterConversationCache: a follow-up asks Anthropic for a cache
// breakpoint on its last user message and is reserved at the cache-write
// rate; a first turn is not, and NoConversationCache turns it off.
func TestRouterConversationCache(t *testing.T) {
	e := newRTEnvOK(t)
	blocks := strings.Split(rtCatalog, "[[model]]")
	for i, b := range blocks {
		if strings.Contains(b, `id = "anthropic/sonnet"`) {
			blocks[i] = strings.Replace(b, "\n[model.quality]", "\ncache_write_per_mtok = 3.75\ncache_read_per_mtok = 0.3\n[model.quality]", 1)
		}
	}
	cat, err := catalog.LoadTOML("rt-catalog.toml", []byte(strings.Join(blocks, "[[model]]")))
	require.NoError(t, err)
	e.cat = cat
	followUp := []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeHuman, "Here is a long document."),
		llms.TextParts(llms.ChatMessageTypeAI, "Read it."),
		llms.TextParts(llms.ChatMessageTypeHuman, "Summarise it."),
	}
	reserveOf := func(r *executor.Router, msgs []llms.MessageContent) int64 {
		t.Helper()
		p, err := r.Prepare(msgs, llms.WithModel("anthropic/sonnet"))
		require.NoError(t, err)
		return p.Plan().Ladder[0].ReserveNano
	}
	cached := e.router(t, executor.RouterOptions{})
	plain := e.router(t, executor.RouterOptions{NoConversationCache: true})
	assert.Greater(t, reserveOf(cached, followUp), reserveOf(plain, followUp), "reserved at the cache-write rate")
	assert.Equal(t, reserveOf(cached, human("Summarise it.")), reserveOf(plain, human("Summarise it.")), "a first turn caches nothing")

	_, err = cached.GenerateContent(context.Background(), followUp, llms.WithModel("anthropic/sonnet"))
	require.NoError(t, err)
	_, err = plain.GenerateContent(context.Background(), followUp, llms.WithModel("anthropic/sonnet"))
	require.NoError(t, err)
	calls := e.an.CallsFor("sonnet")
	require.Len(t, calls, 2)
	assert.True(t, calls[0].Messages[2].Cached, "the breakpoint is on the last user message")
	assert.False(t, calls[1].Messages[2].Cached)
}
