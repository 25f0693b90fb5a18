package graph

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./graph -update")
	assert.Equal(t, string(want), string(got))
}

func TestExportGolden(t *testing.T) {
	for _, ex := range []string{"support-triage", "code-review"} {
		w, err := Load(filepath.Join("..", "examples", ex, "workflow.toml"))
		require.NoError(t, err)
		t.Run(ex+"/dot", func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, w.WriteDOT(&b, nil))
			golden(t, ex+".dot", b.Bytes())
		})
		t.Run(ex+"/mermaid", func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, w.WriteMermaid(&b, nil))
			golden(t, ex+".mmd", b.Bytes())
		})
	}
}

func TestExportAnnotations(t *testing.T) {
	w, err := Parse("t.toml", []byte(valid))
	require.NoError(t, err)
	ann := func(i int) Annotation {
		return Annotation{Lines: []string{"model \"m\""}, Fill: "#ff0000"}
	}
	var dot, mmd bytes.Buffer
	require.NoError(t, w.WriteDOT(&dot, ann))
	require.NoError(t, w.WriteMermaid(&mmd, ann))
	assert.Contains(t, dot.String(), `"a" [label="a\ndefault\nmodel \"m\"", fillcolor="#ff0000"];`)
	assert.Contains(t, mmd.String(), `n0["a<br/>default<br/>model #quot;m#quot;"]`)
	assert.Contains(t, mmd.String(), "style n1 fill:#ff0000")
}

// TestExamplesValidate loads every example shipped with costwise.
func TestExamplesValidate(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "examples", "*", "workflow.toml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(paths), 5)
	for _, p := range paths {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			w, err := Load(p)
			require.NoError(t, err)
			assert.NotEmpty(t, w.Order())
		})
	}
}
