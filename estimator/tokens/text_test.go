package tokens_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/tokens"
)

// Published vectors: tiktoken's own tests (tests/test_encoding.py), the
// tiktoken-go test suite (o200k ids for "hello world"), and the OpenAI
// cookbook "How to count tokens with tiktoken" (section 5).
func TestCountPublishedVectors(t *testing.T) {
	cases := []struct {
		name string
		enc  tokens.Encoding
		text string
		want int
	}{
		{"cl100k hello world [15339 1917]", tokens.Cl100kBase, "hello world", 2},
		{"o200k hello world [24912 2375]", tokens.O200kBase, "hello world", 2},
		{"cl100k two spaces [15339 220 1917]", tokens.Cl100kBase, "hello  world", 3},
		{"o200k three spaces [24912 256 2375]", tokens.O200kBase, "hello   world", 3},
		{"cl100k rer [38149]", tokens.Cl100kBase, "rer", 1},
		{"cl100k 'rer [2351 81]", tokens.Cl100kBase, "'rer", 2},
		{"cl100k today newline space", tokens.Cl100kBase, "today\n ", 3},
		{"cl100k thumbs up [9468 239 235]", tokens.Cl100kBase, "👍", 3},
		{"cl100k special token as text", tokens.Cl100kBase, "hello <|endoftext|>", 7},
		{"cookbook tiktoken is great!", tokens.Cl100kBase, "tiktoken is great!", 6},
		{"cookbook antidisestablishmentarianism", tokens.Cl100kBase, "antidisestablishmentarianism", 6},
		{"cookbook 2 + 2 = 4", tokens.Cl100kBase, "2 + 2 = 4", 7},
		{"cookbook Japanese birthday", tokens.Cl100kBase, "お誕生日おめでとう", 9},
		{"cl100k DEL is its own byte token (id 221)", tokens.Cl100kBase, "\x7f", 1},
		{"o200k DEL between letters", tokens.O200kBase, "a\x7fb", 3},
		{"empty o200k", tokens.O200kBase, "", 0},
		{"empty cl100k", tokens.Cl100kBase, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tokens.Count(tc.enc, tc.text)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestKnownDeviationBlankLineWithSpaces pins a known upstream deviation:
// tiktoken encodes "today\n \n" as [31213 27907] (the whitespace run is one
// piece), but the regexp matcher generated for tiktoken-go v0.10.0 splits the
// run "\n \n" into "\n" and " \n", one token more. Only whitespace runs of
// newline, spaces/tabs, newline (blank lines holding indentation) are
// affected, each over-counted by about one token. If this test fails, the
// upstream bug is fixed: move these cases into TestCountPublishedVectors.
func TestKnownDeviationBlankLineWithSpaces(t *testing.T) {
	for _, tc := range []struct {
		text     string
		tiktoken int
	}{
		{"today\n \n", 2},
		{"today\n  \n", 2},
	} {
		got, err := tokens.Count(tokens.Cl100kBase, tc.text)
		require.NoError(t, err)
		assert.Equal(t, tc.tiktoken+1, got, "%q", tc.text)
	}
}

func TestCountUnknownEncoding(t *testing.T) {
	_, err := tokens.Count("p50k_base", "hi")
	require.ErrorIs(t, err, tokens.ErrUnknownEncoding)
	assert.Contains(t, err.Error(), "p50k_base")
	assert.Contains(t, err.Error(), "o200k_base")
}

func TestCountRepetitiveInput(t *testing.T) {
	// tiktoken's "catastrophically repetitive" cases must finish and be sane.
	for _, c := range []string{"^", "0", "a", "'s", " ", "\n"} {
		for _, enc := range []tokens.Encoding{tokens.O200kBase, tokens.Cl100kBase} {
			s := " " + strings.Repeat(c, 10_000) + "\n"
			n, err := tokens.Count(enc, s)
			require.NoError(t, err)
			assert.Greater(t, n, 0)
			assert.LessOrEqual(t, n, len(s))
		}
	}
}

func TestCountConcurrent(t *testing.T) {
	want, err := tokens.Count(tokens.O200kBase, "The quick brown fox jumps over the lazy dog.")
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				got, err := tokens.Count(tokens.O200kBase, "The quick brown fox jumps over the lazy dog.")
				if err != nil || got != want {
					errs <- "mismatch"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	assert.Empty(t, errs)
}

func TestEncodingForModel(t *testing.T) {
	cases := []struct {
		model string
		want  tokens.Encoding
	}{
		{"gpt-4o", tokens.O200kBase},
		{"gpt-4o-mini-2024-07-18", tokens.O200kBase},
		{"chatgpt-4o-latest", tokens.O200kBase},
		{"gpt-4.1", tokens.O200kBase},
		{"openai/gpt-4.1-nano", tokens.O200kBase},
		{"gpt-4.5-preview", tokens.O200kBase},
		{"gpt-5", tokens.O200kBase},
		{"gpt-5-mini", tokens.O200kBase},
		{"gpt-5.1-codex", tokens.O200kBase},
		{"o1", tokens.O200kBase},
		{"o1-mini", tokens.O200kBase},
		{"o3", tokens.O200kBase},
		{"o3-pro", tokens.O200kBase},
		{"o4-mini-2025-04-16", tokens.O200kBase},
		{"gpt-oss-120b", tokens.O200kBase},
		{"ft:gpt-4o-mini-2024-07-18:org::abc", tokens.O200kBase},
		{"GPT-4O", tokens.O200kBase},
		{"gpt-4", tokens.Cl100kBase},
		{"gpt-4-0613", tokens.Cl100kBase},
		{"gpt-4-turbo", tokens.Cl100kBase},
		{"gpt-3.5-turbo", tokens.Cl100kBase},
		{"gpt-3.5-turbo-0125", tokens.Cl100kBase},
		{"ft:gpt-3.5-turbo-0613:org::x", tokens.Cl100kBase},
		{"text-embedding-3-small", tokens.Cl100kBase},
	}
	for _, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			got, err := tokens.EncodingForModel(tc.model)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	for _, bad := range []string{"", "claude-sonnet-4", "o10", "gpt-40", "gemini-2.5-pro", "o", "gpt-4x"} {
		t.Run("unknown "+bad, func(t *testing.T) {
			_, err := tokens.EncodingForModel(bad)
			require.ErrorIs(t, err, tokens.ErrUnknownModel)
		})
	}
}

// The cookbook's example conversation: the OpenAI API itself reported 129
// prompt tokens for gpt-3.5-turbo-0613/gpt-4 (cl100k_base) and 124 for
// gpt-4o/gpt-4o-mini (o200k_base).
var cookbookMessages = []tokens.Message{
	{Role: "system", Content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
	{Role: "system", Name: "example_user", Content: "New synergies will help drive top-line growth."},
	{Role: "system", Name: "example_assistant", Content: "Things working well together will increase revenue."},
	{Role: "system", Name: "example_user", Content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
	{Role: "system", Name: "example_assistant", Content: "Let's talk later when we're less busy about how to do better."},
	{Role: "user", Content: "This late pivot means we don't have time to boil the ocean for the client deliverable."},
}

func TestCountChatCookbook(t *testing.T) {
	cases := []struct {
		enc  tokens.Encoding
		want int
	}{
		{tokens.Cl100kBase, 129},
		{tokens.O200kBase, 124},
	}
	for _, tc := range cases {
		t.Run(string(tc.enc), func(t *testing.T) {
			got, err := tokens.CountChat(tc.enc, cookbookMessages)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCountChatFraming(t *testing.T) {
	n, err := tokens.CountChat(tokens.O200kBase, nil)
	require.NoError(t, err)
	assert.Equal(t, tokens.ReplyPriming, n, "no messages: reply priming only")

	content, err := tokens.Count(tokens.O200kBase, "hello world")
	require.NoError(t, err)
	role, err := tokens.Count(tokens.O200kBase, "user")
	require.NoError(t, err)
	name, err := tokens.Count(tokens.O200kBase, "bob")
	require.NoError(t, err)

	n, err = tokens.CountChat(tokens.O200kBase, []tokens.Message{{Role: "user", Content: "hello world"}})
	require.NoError(t, err)
	assert.Equal(t, tokens.ReplyPriming+tokens.TokensPerMessage+role+content, n)

	n2, err := tokens.CountChat(tokens.O200kBase, []tokens.Message{{Role: "user", Content: "hello world", Name: "bob"}})
	require.NoError(t, err)
	assert.Equal(t, n+name+tokens.TokensPerName, n2)

	_, err = tokens.CountChat("bogus", nil)
	require.ErrorIs(t, err, tokens.ErrUnknownEncoding)
}

func TestCountMonotoneInAppendedText(t *testing.T) {
	// Appending whole words never lowers the count (BPE merges never cross
	// the pre-tokenizer's word boundaries).
	words := strings.Fields("costwise plans multi-step agent workflows at the lowest cost that still meets quality, latency and budget constraints 12345 日本語 テキスト")
	for _, enc := range []tokens.Encoding{tokens.O200kBase, tokens.Cl100kBase} {
		prev := 0
		var b strings.Builder
		for _, w := range words {
			b.WriteString(w)
			b.WriteString(" ")
			n, err := tokens.Count(enc, b.String())
			require.NoError(t, err)
			assert.GreaterOrEqual(t, n, prev, "%s after %q", enc, b.String())
			prev = n
		}
	}
}

func FuzzCount(f *testing.F) {
	for _, s := range []string{"", "hello world", "<|endoftext|>", "\xff\xfe", "👍", "お誕生日おめでとう", "   \n\n\t", "a'sb'LL"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, enc := range []tokens.Encoding{tokens.O200kBase, tokens.Cl100kBase} {
			n, err := tokens.Count(enc, s)
			if err != nil {
				t.Fatalf("%s: %v", enc, err)
			}
			// Every token covers at least one byte; non-empty text has tokens.
			if n < 0 || n > len(s) || (len(s) > 0 && n == 0) {
				t.Fatalf("%s: count %d for %d bytes", enc, n, len(s))
			}
		}
		c, err := tokens.Estimate(1.2, s)
		if err != nil || c.Tokens < 0 || c.Low() > c.Tokens || c.High() < c.Tokens {
			t.Fatalf("estimate %+v, %v", c, err)
		}
		if _, err := tokens.CountChat(tokens.O200kBase, []tokens.Message{{Role: "user", Content: s, Name: s}}); err != nil {
			t.Fatal(err)
		}
	})
}
