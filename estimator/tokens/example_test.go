package tokens_test

import (
	"fmt"

	"github.com/costwise/costwise/estimator/tokens"
)

func ExampleCount() {
	enc, _ := tokens.EncodingForModel("gpt-4o-mini")
	n, _ := tokens.Count(enc, "hello world")
	fmt.Println(enc, n)
	// Output: o200k_base 2
}

func ExampleCountChat() {
	n, _ := tokens.CountChat(tokens.O200kBase, []tokens.Message{
		{Role: "system", Content: "You are terse."},
		{Role: "user", Content: "Summarise the report."},
	})
	fmt.Println(n)
	// Output: 21
}

func ExampleCountText() {
	// A Claude model: no local tokenizer, so estimate from o200k_base with the
	// provider's default ratio and report the band.
	c, _ := tokens.CountText(tokens.RuleForProvider("anthropic"), "The quick brown fox jumps over the lazy dog.")
	fmt.Println(c.Tokens, c.Exact, c.Low(), c.High())
	// Output: 12 false 10 14
}

func ExampleImageTokens() {
	gpt4o := tokens.ImageRule{Kind: tokens.ImageOpenAITile, BaseTokens: 85, TileTokens: 170}
	high, _ := tokens.ImageTokens(gpt4o, 2048, 4096, tokens.DetailHigh)
	low, _ := tokens.ImageTokens(gpt4o, 2048, 4096, tokens.DetailLow)
	claude, _ := tokens.ImageTokens(tokens.ImageRule{Kind: tokens.ImageAnthropic}, 1092, 1092, "")
	gemini, _ := tokens.ImageTokens(tokens.ImageRule{Kind: tokens.ImageGemini}, 960, 540, "")
	fmt.Println(high, low, claude, gemini)
	// Output: 1105 85 1590 1548
}

func ExampleMediaTokens() {
	audio, _ := tokens.MediaTokens(90, tokens.GeminiAudioTokensPerSecond)
	video, _ := tokens.MediaTokens(90, tokens.GeminiVideoTokensPerSecond)
	fmt.Println(audio, video)
	// Output: 2880 23670
}

func ExamplePDFTokens() {
	c, _ := tokens.PDFTokens(tokens.ImageRule{Kind: tokens.ImageAnthropic}, 10)
	fmt.Println(c.Tokens, c.Low(), c.High())
	// Output: 22500 15000 30000
}
