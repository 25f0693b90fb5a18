package cascade

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func TestReadOutcomesRouterBenchLayout(t *testing.T) {
	path := filepath.Join("testdata", "routerbench_small.csv")
	tab, err := ReadOutcomeFiles(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"small-model", "big/model-v2"}, tab.Models)
	assert.Equal(t, 4, tab.Len())
	assert.Equal(t, []float64{1, 1, 0, 0}, tab.Perf[0])
	assert.Equal(t, []float64{1, 1, 1, 0}, tab.Perf[1])
	assert.Equal(t, []float64{0.00001, 0.000012, 0.00002, 0.000018}, tab.Cost[0])
	assert.True(t, tab.HasConfidence(0))
	assert.False(t, tab.HasConfidence(1))
	assert.Equal(t, []float64{0.93, 0.88, 0.41, 0.35}, tab.Conf[0])
	require.NotNil(t, tab.LatencyMS)
	assert.Nil(t, tab.LatencyMS[0])
	assert.Equal(t, []float64{800, 750, 1900, 1700}, tab.LatencyMS[1])
	assert.Equal(t, "What is 2+2?\nAnswer briefly.", tab.Prompt[0])
	assert.Equal(t, `Capital of "France"?`, tab.Prompt[1])
	assert.Equal(t, []string{"mmlu", "mmlu", "gsm8k", "gsm8k"}, tab.EvalName)
	assert.Equal(t, []string{"sample_id", "oracle_model_to_route_to", "small-model|model_response", "big/model-v2|model_response"}, tab.Ignored)
	// The quoted prompt spans two lines: row 2 starts on line 4.
	assert.Equal(t, Origin{File: path, Row: 2, Line: 4}, tab.Origin[1])
}

func TestReadOutcomesErrors(t *testing.T) {
	const head = "a,a|total_cost,a|confidence,b|performance,b|total_cost\n"
	cases := []struct {
		name string
		src  string
		want []string // substrings of the errors, in order
	}{
		{"empty file", "", []string{"f.csv: the file is empty"}},
		{"header only", head, []string{"f.csv: the file has a header but no data rows"}},
		{"no models", "x,y\n1,2\n", []string{"f.csv:1: header: no model columns"}},
		{"bad number", head + "1,0.1,0.5,1,0.2\n1,abc,0.5,1,0.2\n",
			[]string{`f.csv:3:3: row 2, column "a|total_cost": "abc" is not a finite number; write the cost of the answer in USD`}},
		{"performance out of range", head + "1.5,0.1,0.5,1,0.2\n",
			[]string{`f.csv:2:1: row 1, column "a": performance 1.5 is outside [0, 1]`}},
		{"negative cost", head + "1,0.1,0.5,1,-0.2\n",
			[]string{`f.csv:2:13: row 1, column "b|total_cost": -0.2 is negative`}},
		{"empty cell", head + "1,0.1,,1,0.2\n", []string{`f.csv:2:7: row 1, column "a|confidence": the cell is empty`}},
		{"nan", head + "1,0.1,NaN,1,0.2\n", []string{`row 1, column "a|confidence": "NaN" is not a finite number`}},
		{"short row", head + "1,0.1,0.5,1\n1,0.1,0.5,1,0.2\n", []string{`f.csv:2:1: row 1: wrong number of fields`}},
		{"two bad rows", head + "x,0.1,0.5,1,0.2\n1,0.1,0.5,2,0.2\n",
			[]string{`f.csv:2:1: row 1, column "a"`, `f.csv:3:11: row 2, column "b|performance": performance 2`}},
		{"bare quote", head + "1,0.1,0.5,1,0\"2\n", []string{`f.csv:2:14: row 1: bare " in non-quoted-field`}},
		{"missing performance", "a|total_cost,b,b|total_cost\n0.1,1,0.2\n",
			[]string{`f.csv:1:1: header, column "a|total_cost": model "a" has a cost but no score; add a column "a" or "a|performance"`}},
		{"orphan confidence", "a,a|total_cost,c|confidence\n1,0.1,0.5\n",
			[]string{`f.csv:1:16: header, column "c|confidence": model "c" has no c|total_cost column`}},
		{"duplicate column", "a,a|total_cost,a\n1,0.1,1\n", []string{`f.csv:1:16: header, column "a": the column name repeats column 1`}},
		{"two scores", "a,a|performance,a|total_cost\n1,1,0.1\n", []string{`header, column "a|performance": model "a" already has its performance in column "a"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, err := ReadOutcomes("f.csv", stringsReader(c.src))
			require.Error(t, err)
			assert.Nil(t, tab)
			var errs Errors
			require.True(t, errors.As(err, &errs), "%T", err)
			require.Len(t, errs, len(c.want), "%v", err)
			for i, w := range c.want {
				assert.Contains(t, errs[i].Error(), w)
			}
		})
	}
}

func TestReadOutcomesStopsAfterMaxErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("a,a|total_cost\n")
	for range 100 {
		b.WriteString("x,y\n")
	}
	_, err := ReadOutcomes("f.csv", stringsReader(b.String()))
	var errs Errors
	require.True(t, errors.As(err, &errs))
	assert.Len(t, errs, MaxErrors+1)
	assert.Contains(t, errs[MaxErrors].Error(), "stopped after 20 problems")
}

func TestConcat(t *testing.T) {
	read := func(name, src string) *Table {
		tab, err := ReadOutcomes(name, stringsReader(src))
		require.NoError(t, err)
		return tab
	}
	a := read("a.csv", "x,x|total_cost,x|confidence,y,y|total_cost,prompt\n1,0.1,0.9,0,1,p1\n")
	b := read("b.csv", "y|total_cost,y,x|confidence,x|total_cost,x\n2,1,0.3,0.2,0\n0,0,0.1,0.3,1\n")
	cases := []struct {
		name    string
		tables  []*Table
		wantErr string
	}{
		{"same models, other order", []*Table{a, b}, ""},
		{"missing and extra", []*Table{a, read("c.csv", "x,x|total_cost,x|confidence,z,z|total_cost\n1,0.1,0.9,1,1\n")},
			"c.csv:1: models differ from a.csv: missing y; extra z;"},
		{"confidence differs", []*Table{a, read("d.csv", "x,x|total_cost,y,y|total_cost\n1,0.1,1,1\n")},
			"d.csv:1: confidence columns differ from a.csv for x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, err := Concat(c.tables...)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{"x", "y"}, tab.Models)
			assert.Equal(t, []float64{1, 0, 1}, tab.Perf[0])
			assert.Equal(t, []float64{0.1, 0.2, 0.3}, tab.Cost[0])
			assert.Equal(t, []float64{0.9, 0.3, 0.1}, tab.Conf[0])
			assert.Equal(t, []float64{0, 1, 0}, tab.Perf[1])
			assert.Equal(t, []float64{1, 2, 0}, tab.Cost[1])
			assert.Nil(t, tab.Prompt, "b.csv has no prompt column")
			assert.Equal(t, "b.csv", tab.Origin[2].File)
			assert.Equal(t, 2, tab.Origin[2].Row)
		})
	}
}

func TestReadOutcomeFilesMissing(t *testing.T) {
	_, err := ReadOutcomeFiles(filepath.Join(t.TempDir(), "nope.csv"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope.csv: cannot open: no such file or directory")
}

func TestSubsetCopies(t *testing.T) {
	tab, err := ReadOutcomeFiles(filepath.Join("testdata", "routerbench_small.csv"))
	require.NoError(t, err)
	s := tab.Subset([]int{3, 0})
	assert.Equal(t, []float64{0, 1}, s.Perf[0])
	assert.Equal(t, []string{"gsm8k", "mmlu"}, s.EvalName)
	s.Perf[0][0] = 0.5
	assert.Equal(t, 0.0, tab.Perf[0][3])
}

// FuzzReadOutcomes checks that ReadOutcomes never panics and returns either
// a consistent table or non-empty Errors naming the file.
func FuzzReadOutcomes(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("testdata", "routerbench_small.csv")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("a,a|total_cost,a|confidence\n1,0.1,0.5\n0,0.2,-3\n"))
	f.Add([]byte("a|performance,a|total_cost,a|tokens_in,a|tokens_out,a|latency_ms,prompt\n0.5,1e-5,10,20,30,\"x\"\"y\"\n"))
	f.Add([]byte("\ufeffa,a|total_cost\n\"1\",\"2\n"))
	f.Add([]byte("a,a|total_cost,a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ReadOutcomes("fuzz.csv", bytes.NewReader(data))
		if (tab == nil) == (err == nil) {
			t.Fatalf("table %v and error %v", tab != nil, err)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is %T, want non-empty Errors", err)
			}
			for _, e := range errs {
				if e.File != "fuzz.csv" || e.Msg == "" {
					t.Fatalf("error without file or message: %+v", e)
				}
			}
			return
		}
		n := tab.Len()
		if n == 0 || len(tab.Models) == 0 || len(tab.Origin) != n {
			t.Fatalf("table with %d rows, %d models, %d origins", n, len(tab.Models), len(tab.Origin))
		}
		for m := range tab.Models {
			for _, cols := range [][][]float64{tab.Perf, tab.Cost, tab.Conf, tab.TokensIn, tab.TokensOut, tab.LatencyMS} {
				if cols != nil && cols[m] != nil && len(cols[m]) != n {
					t.Fatalf("model %d: column of %d values, want %d", m, len(cols[m]), n)
				}
			}
			for r := range n {
				if p, c := tab.Perf[m][r], tab.Cost[m][r]; !(p >= 0 && p <= 1) || !(c >= 0) {
					t.Fatalf("row %d model %d: performance %v cost %v", r, m, p, c)
				}
			}
		}
		if _, err := Evaluate(tab, Single(tab.Models[0])); err != nil {
			t.Fatalf("evaluate: %v", err)
		}
	})
}
