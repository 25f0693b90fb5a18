package cascade

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// wellFormed parses an SVG with encoding/xml and counts its elements by name.
func wellFormed(t *testing.T, data []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	counts := map[string]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	return counts
}

func TestWriteSVG(t *testing.T) {
	all := genTable(2000, 21, []genModel{
		noisyModel("tiny <&> model", 0.0002, 0.45, 0.9, true),
		noisyModel("mid", 0.002, 0.7, 0.5, true),
		noisyModel("big", 0.04, 0.9, 0.1, false),
	})
	rep, err := RunSplit(all, 0.3, 1, Options{})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, WriteSVG(&buf, rep))
	counts := wellFormed(t, buf.Bytes())
	assert.Equal(t, 1, counts["svg"])
	assert.Equal(t, 1, counts["polyline"], "the cascade curve")
	assert.GreaterOrEqual(t, counts["circle"], len(rep.Models)+len(rep.Curve))
	assert.Contains(t, buf.String(), "tiny &lt;&amp;&gt; model")
	assert.Contains(t, buf.String(), "log scale")

	golden := filepath.Join("testdata", "report.svg")
	if *update {
		require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -run TestWriteSVG -update to create it")
	assert.Equal(t, string(want), buf.String())
}

func TestWriteSVGSingleFallback(t *testing.T) {
	// No confidence: no curve, linear axis (costs within a factor of 10).
	all := genTable(200, 2, []genModel{noisyModel("a", 0.01, 0.6, 0, false), noisyModel("b", 0.03, 0.9, 0, false)})
	rep, err := RunSplit(all, 0.3, 1, Options{})
	require.NoError(t, err)
	assert.Empty(t, rep.Curve)
	var buf bytes.Buffer
	require.NoError(t, WriteSVG(&buf, rep))
	counts := wellFormed(t, buf.Bytes())
	assert.Zero(t, counts["polyline"])
	assert.False(t, strings.Contains(buf.String(), "log scale"))
}
