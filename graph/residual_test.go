package graph

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResidual(t *testing.T) {
	w, err := Parse("t.toml", []byte(valid+"\n[[node]]\nid = \"c\"\ndepends_on = [\"a\", \"b\"]\nprompt = \"{{node.a.output}} / {{node.b.output}}\"\n"))
	require.NoError(t, err)
	r, err := w.Residual(map[string]string{"a": "billing"})
	require.NoError(t, err)
	require.Len(t, r.Nodes, 2)
	assert.Equal(t, "Answer {{input.done__a}}", r.Nodes[0].Prompt)
	assert.Empty(t, r.Nodes[0].DependsOn)
	assert.Equal(t, []string{"b"}, r.Nodes[1].DependsOn)
	assert.Equal(t, "{{input.done__a}} / {{node.b.output}}", r.Nodes[1].Prompt)
	in := r.Input("done__a")
	require.NotNil(t, in)
	assert.Equal(t, "billing", in.Example)
	// The original is untouched.
	assert.Equal(t, "Answer {{node.a.output}}", w.Nodes[1].Prompt)
	assert.Len(t, w.Nodes, 3)
}
