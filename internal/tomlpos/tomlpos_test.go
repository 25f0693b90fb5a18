package tomlpos

import (
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const doc = `name = "x" # comment
desc = """
fake = 1
[[node]]
"""
[inputs.ticket]
tokens = 600

[[node]]
id = "a"
repeat = { mean = 3, max = 8, history = true }
models = [
  "openai/*", # a comment with = in it
  "anthropic/*",
]

[[node]]
id = "b"
colour = 'red'
[[node.attachment]]
kind = "image"
[[node.attachment]]
kind = "audio"
seconds = 3

[node.extra]
x.y = 1
"q k" = 2
`

func TestBuildPositions(t *testing.T) {
	ix := Build([]byte(doc))
	cases := []struct {
		path string
		want Pos
	}{
		{"name", Pos{1, 1}},
		{"desc", Pos{2, 1}},
		{"inputs.ticket", Pos{6, 1}},
		{"inputs.ticket.tokens", Pos{7, 1}},
		{"node[0]", Pos{9, 1}},
		{"node[0].id", Pos{10, 1}},
		{"node[0].repeat", Pos{11, 1}},
		{"node[0].repeat.max", Pos{11, 22}},
		{"node[0].models", Pos{12, 1}},
		{"node[1].id", Pos{18, 1}},
		{"node[1].colour", Pos{19, 1}},
		{"node[1].attachment[1].seconds", Pos{24, 1}},
		{"node[1].attachment[0].kind", Pos{21, 1}},
		{"node[1].extra.x.y", Pos{27, 1}},
		{"node[1].extra.q k", Pos{28, 1}},
		{"node[1].attachment[1].pages", Pos{22, 1}}, // falls back to the element header
		{"fake", Pos{}},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			assert.Equal(t, c.want, ix.Key(c.path))
		})
	}
	assert.Equal(t, Pos{11, 10}, ix.Value("node[0].repeat"))
}

func TestUndecoded(t *testing.T) {
	var v struct {
		Name   string
		Desc   string
		Inputs map[string]struct{ Tokens int }
		Node   []struct {
			ID     string
			Repeat struct {
				Mean, Max int
				History   bool
			}
			Models     []string
			Attachment []struct{ Kind string }
		}
	}
	md, err := toml.Decode(doc, &v)
	require.NoError(t, err)
	got := Build([]byte(doc)).Undecoded(md)
	var paths []string
	for _, l := range got {
		paths = append(paths, l.Path+"@"+l.Pos.String())
	}
	assert.Equal(t, []string{
		"node[1].colour@19:1",
		"node[1].attachment[1].seconds@24:1",
		"node[1].extra@26:1",
	}, paths)
}

func FuzzBuild(f *testing.F) {
	f.Add(doc)
	f.Add(`a = "unterminated`)
	f.Add(`[[`)
	f.Fuzz(func(t *testing.T, s string) {
		ix := Build([]byte(s))
		for _, p := range ix.order {
			_ = ix.Key(p)
		}
	})
}

func TestTypeName(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"x", "a string"}, {int64(1), "an integer"}, {1.5, "a float"}, {true, "a boolean"},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "a date/time"}, {[]any{1}, "an array"},
		{map[string]any{}, "a table"}, {[]map[string]any{{}}, "an array of tables"},
	} {
		t.Run(tc.want, func(t *testing.T) { assert.Equal(t, tc.want, TypeName(tc.v)) })
	}
}
