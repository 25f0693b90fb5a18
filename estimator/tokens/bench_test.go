package tokens_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/costwise/costwise/estimator/tokens"
)

// benchText builds n bytes of mixed prose, code and numbers, deterministic.
func benchText(n int) string {
	parts := []string{
		"The planner assigns the cheapest model that still meets quality, latency and budget constraints. ",
		"func (p *Planner) Plan(ctx context.Context, g *graph.Graph) (*Plan, error) {\n\treturn nil, nil\n}\n",
		"Invoice 2026-11-03: 1,234 tokens at $0.40/MTok = $0.0004936; total 98765.4321.\n",
		"Les modèles multilingues coûtent plus cher: 日本語のテキストも含まれます。\n",
	}
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(parts[i%len(parts)])
	}
	return b.String()[:n]
}

func BenchmarkCount(b *testing.B) {
	for _, enc := range []tokens.Encoding{tokens.O200kBase, tokens.Cl100kBase} {
		if err := tokens.Preload(enc); err != nil {
			b.Fatal(err)
		}
		for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
			text := benchText(size)
			n, err := tokens.Count(enc, text)
			if err != nil || n == 0 {
				b.Fatalf("validity check: %d tokens, %v", n, err)
			}
			b.Run(fmt.Sprintf("%s/%dKB", enc, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := tokens.Count(enc, text); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
