package suggest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClosest(t *testing.T) {
	keys := []string{"name", "models", "history", "input_per_mtok", "output_per_mtok"}
	cases := []struct{ in, want string }{
		{"nmae", "name"},
		{"model", "models"},
		{"hist", "history"},
		{"input_per_mtk", "input_per_mtok"},
		{"zz", ""},
		{"colour", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) { assert.Equal(t, c.want, Closest(c.in, keys)) })
	}
	assert.Equal(t, 3, EditDistance("kitten", "sitting"))
}

func TestClosestPrefersTheNearerOfTwoPrefixMatches(t *testing.T) {
	// "openai/gpt-5" is a prefix of the typo, "openai/gpt-5-nano" one edit away.
	assert.Equal(t, "openai/gpt-5-nano", Closest("openai/gpt-5-nan", []string{"openai/gpt-5", "openai/gpt-5-nano", "openai/gpt-5.4"}))
}
