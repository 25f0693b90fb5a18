package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// evalTable writes an outcome table in the RouterBench layout: "cheap" is
// right exactly when its confidence is above 0.5, "mid" two times in three,
// "strong" always; costs 0.001, 0.004 and 0.02 USD.
func evalTable(t *testing.T, name string, rows int, seed uint64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.WriteString("sample_id,prompt,cheap,cheap|total_cost,cheap|confidence,cheap|model_response,mid|performance,mid|total_cost,mid|confidence,strong,strong|total_cost\n")
	for r := range rows {
		c := rng.Float64()
		right := 0
		if c > 0.5 {
			right = 1
		}
		mid := 0
		if rng.IntN(3) > 0 {
			mid = 1
		}
		fmt.Fprintf(&b, "q%d,\"prompt, %d\",%d,0.001,%.6f,\"ans\",%d,0.004,%.6f,1,0.02\n", r, r, right, c, mid, rng.Float64())
	}
	return writeTemp(t, name, b.String())
}

// runEval runs the CLI in-process and returns its exit code and output.
func runEval(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"eval"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestEvalJSONContract(t *testing.T) {
	csv := evalTable(t, "out.csv", 1000, 1)
	plot := filepath.Join(t.TempDir(), "curves.svg")
	code, stdout, stderr := runEval("--outcomes", csv, "--json", "--plot", plot, "--target-quality", "1")
	require.Equal(t, 0, code, stderr)

	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
	for _, k := range []string{"target_quality", "train_rows", "test_rows", "models", "strongest", "best_single", "cascade", "oracle", "saving_vs_strongest"} {
		assert.Contains(t, doc, k)
	}
	var rep struct {
		TargetQuality float64 `json:"target_quality"`
		TrainRows     int     `json:"train_rows"`
		TestRows      int     `json:"test_rows"`
		Models        []struct {
			Model   string   `json:"model"`
			Quality *float64 `json:"quality"`
			CostUSD *float64 `json:"cost_usd"`
		} `json:"models"`
		Strongest struct {
			Model   string  `json:"model"`
			Quality float64 `json:"quality"`
			CostUSD float64 `json:"cost_usd"`
		} `json:"strongest"`
		BestSingle map[string]any `json:"best_single"`
		Cascade    struct {
			Models     []string  `json:"models"`
			Thresholds []float64 `json:"thresholds"`
			Quality    float64   `json:"quality"`
			CostUSD    float64   `json:"cost_usd"`
			Binds      string    `json:"binds"`
		} `json:"cascade"`
		Oracle struct {
			Quality *float64 `json:"quality"`
			CostUSD *float64 `json:"cost_usd"`
		} `json:"oracle"`
		SavingVsStrongest float64 `json:"saving_vs_strongest"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.Equal(t, 1.0, rep.TargetQuality)
	assert.Equal(t, 700, rep.TrainRows)
	assert.Equal(t, 300, rep.TestRows)
	require.Len(t, rep.Models, 3)
	for _, m := range rep.Models {
		assert.NotNil(t, m.Quality, m.Model)
		assert.NotNil(t, m.CostUSD, m.Model)
	}
	assert.Equal(t, "strong", rep.Strongest.Model)
	assert.Equal(t, 1.0, rep.Strongest.Quality)
	assert.InDelta(t, 0.02, rep.Strongest.CostUSD, 1e-12)
	assert.Equal(t, "strong", rep.BestSingle["model"])
	assert.Equal(t, []string{"cheap", "strong"}, rep.Cascade.Models)
	require.Len(t, rep.Cascade.Thresholds, 1)
	assert.InDelta(t, 0.5, rep.Cascade.Thresholds[0], 0.02)
	assert.Greater(t, rep.Cascade.Thresholds[0], 0.5)
	assert.Equal(t, "quality", rep.Cascade.Binds)
	assert.Equal(t, 1.0, rep.Cascade.Quality)
	// About half the queries escalate: 0.001 + 0.5 x 0.02.
	assert.InDelta(t, 0.011, rep.Cascade.CostUSD, 0.0015)
	assert.InDelta(t, 1-rep.Cascade.CostUSD/rep.Strongest.CostUSD, rep.SavingVsStrongest, 1e-12)
	require.NotNil(t, rep.Oracle.Quality)
	assert.Equal(t, 1.0, *rep.Oracle.Quality)

	// The SVG is well-formed XML with an svg root, the model points and the
	// cascade's curve.
	data, err := os.ReadFile(plot)
	require.NoError(t, err)
	dec := xml.NewDecoder(bytes.NewReader(data))
	elems := map[string]int{}
	var root string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			elems[se.Name.Local]++
		}
	}
	assert.Equal(t, "svg", root)
	assert.Equal(t, 1, elems["polyline"])
	assert.GreaterOrEqual(t, elems["circle"], 3)
	assert.Contains(t, string(data), ">cheap</text>")
}

func TestEvalSplitIsDeterministic(t *testing.T) {
	csv := evalTable(t, "out.csv", 600, 2)
	run1 := func(seed string) map[string]any {
		code, stdout, stderr := runEval("--outcomes", csv, "--json", "--seed", seed)
		require.Equal(t, 0, code, stderr)
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
		return doc
	}
	a, b, c := run1("5"), run1("5"), run1("6")
	assert.Equal(t, a, b)
	assert.NotEqual(t, a["models"], c["models"], "another seed holds out other rows")
}

func TestEvalTrainTestFilesAndText(t *testing.T) {
	train := evalTable(t, "train.csv", 500, 3)
	test := evalTable(t, "test.csv", 200, 4)
	code, stdout, stderr := runEval("--train", train, "--test", test)
	require.Equal(t, 0, code, stderr)
	for _, want := range []string{"500 training rows (--train), 200 held-out rows (--test), 3 models",
		"strongest: strong", "fitted cascade: cheap -> strong", "oracle", "saving vs strongest (strong): ", "binds: quality"} {
		assert.Contains(t, stdout, want)
	}
}

func TestEvalWithoutConfidenceFallsBack(t *testing.T) {
	csv := writeTemp(t, "plain.csv", "a,a|total_cost,b,b|total_cost\n"+strings.Repeat("0,0.001,1,0.01\n1,0.001,1,0.01\n", 20))
	code, stdout, stderr := runEval("--outcomes", csv, "--json")
	require.Equal(t, 0, code, stderr)
	var doc struct {
		Cascade struct {
			Kind       string    `json:"kind"`
			Models     []string  `json:"models"`
			Thresholds []float64 `json:"thresholds"`
		} `json:"cascade"`
		Note string `json:"note"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
	assert.Equal(t, "single", doc.Cascade.Kind)
	assert.Equal(t, []string{"b"}, doc.Cascade.Models)
	assert.NotNil(t, doc.Cascade.Thresholds)
	assert.Empty(t, doc.Cascade.Thresholds)
	assert.Contains(t, doc.Note, "no M|confidence column")
}

func TestEvalCompare(t *testing.T) {
	csv := evalTable(t, "out.csv", 1000, 5)
	a := writeTemp(t, "a.toml", "kind = \"cascade\"\nmodels = [\"cheap\", \"strong\"]\nthresholds = [0.5]\n")
	b := writeTemp(t, "b.toml", "kind = \"single\"\nmodel = \"strong\"\n")
	code, stdout, stderr := runEval("--compare", a, b, "--outcomes", csv, "--json")
	require.Equal(t, 0, code, stderr)
	var doc struct {
		TestRows int `json:"test_rows"`
		A, B     struct {
			Kind    string  `json:"kind"`
			Quality float64 `json:"quality"`
			CostUSD float64 `json:"cost_usd"`
		}
		Quality struct {
			Estimate, Low, High float64
		} `json:"quality_diff"`
		CostUSD struct {
			Estimate float64 `json:"estimate"`
			Low      float64 `json:"ci_low"`
			High     float64 `json:"ci_high"`
		} `json:"cost_usd_diff"`
		Resamples  int     `json:"resamples"`
		Confidence float64 `json:"confidence"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
	assert.Equal(t, 300, doc.TestRows)
	assert.Equal(t, "cascade", doc.A.Kind)
	assert.Equal(t, "single", doc.B.Kind)
	assert.Equal(t, 2000, doc.Resamples)
	assert.Equal(t, 0.95, doc.Confidence)
	// Both are always right (cheap accepts only when conf >= 0.5 > its
	// error region), so the cost is the only difference.
	assert.InDelta(t, doc.B.CostUSD-doc.A.CostUSD, doc.CostUSD.Estimate, 1e-12)
	assert.Greater(t, doc.CostUSD.Low, 0.0)
	assert.LessOrEqual(t, doc.CostUSD.Low, doc.CostUSD.Estimate)
	assert.GreaterOrEqual(t, doc.CostUSD.High, doc.CostUSD.Estimate)

	code, stdout, _ = runEval("--compare", a, b, "--outcomes", csv)
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "B - A, 95% confidence intervals")
	assert.Contains(t, stdout, "(B higher)")
}

func TestEvalExitCodes(t *testing.T) {
	csv := evalTable(t, "out.csv", 200, 6)
	bad := writeTemp(t, "bad.csv", "a,a|total_cost,a|confidence\n1,0.1,0.5\n1,oops,0.5\n2,0.1,0.5\n")
	other := writeTemp(t, "other.csv", "x,x|total_cost\n1,0.1\n")
	badPolicy := writeTemp(t, "p.toml", "kind = \"cascade\"\nmodels = [\"cheap\", \"strong\"]\nthreshold = [0.5]\n")
	unknownModel := writeTemp(t, "q.toml", "kind = \"single\"\nmodel = \"stronk\"\n")
	good := writeTemp(t, "g.toml", "kind = \"single\"\nmodel = \"strong\"\n")
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"no tables", nil, 2, []string{"eval needs outcome tables"}},
		{"both ways", []string{"--outcomes", csv, "--train", csv, "--test", csv}, 2, []string{"not both"}},
		{"train alone", []string{"--train", csv}, 2, []string{"--train and --test go together"}},
		{"split with files", []string{"--train", csv, "--test", csv, "--split", "0.2"}, 2, []string{"--split chooses a random split"}},
		{"split out of range", []string{"--outcomes", csv, "--split", "1.5"}, 2, []string{"--split must be in (0, 1)"}},
		{"target out of range", []string{"--outcomes", csv, "--target-quality", "0"}, 2, []string{"--target-quality must be in (0, 1]"}},
		{"max length", []string{"--outcomes", csv, "--max-length", "4"}, 2, []string{"--max-length must be 1, 2 or 3"}},
		{"stray argument", []string{"--outcomes", csv, "x.toml"}, 2, []string{"eval takes no arguments"}},
		{"compare one file", []string{"--compare", good, "--outcomes", csv}, 2, []string{"--compare takes two policy files"}},
		{"unknown flag", []string{"--outcome", csv}, 2, []string{"unknown flag: --outcome"}},
		{"bad csv", []string{"--outcomes", bad}, 1, []string{
			bad + `:3:3: row 2, column "a|total_cost": "oops" is not a finite number`,
			bad + `:4:1: row 3, column "a": performance 2 is outside [0, 1]`}},
		{"models differ", []string{"--outcomes", csv, "--outcomes", other}, 1, []string{other + ":1: models differ from " + csv}},
		{"missing file", []string{"--outcomes", csv + ".nope"}, 1, []string{"out.csv.nope: cannot open"}},
		{"bad policy", []string{"--compare", badPolicy, good, "--outcomes", csv}, 1, []string{
			badPolicy + `:2:10: thresholds: 2 models need 1 thresholds`, badPolicy + `:3:1: threshold: unknown key "threshold"; did you mean "thresholds"?`}},
		{"unknown policy model", []string{"--compare", good, unknownModel, "--outcomes", csv}, 1, []string{
			unknownModel + `:2:9: model: model "stronk" is not in the outcome table; did you mean "strong"?`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runEval(c.args...)
			assert.Equal(t, c.code, code, stderr)
			for _, w := range c.stderr {
				assert.Contains(t, stderr, w)
			}
		})
	}
}

func TestEvalInfeasibleTargetExitsThree(t *testing.T) {
	// Nothing is ever fully right: a target of 1 cannot be met.
	csv := writeTemp(t, "weak.csv", "a,a|total_cost,a|confidence,b,b|total_cost\n"+strings.Repeat("0,0.001,0.2,0,0.01\n1,0.001,0.9,1,0.01\n", 20))
	code, stdout, stderr := runEval("--outcomes", csv, "--target-quality", "1", "--json")
	assert.Equal(t, 3, code)
	assert.Contains(t, stderr, "no policy reaches quality 1 on the training rows")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc), "the report is still printed")
	cascade := doc["cascade"].(map[string]any)
	assert.Equal(t, false, cascade["feasible"])
	assert.Equal(t, "infeasible", cascade["binds"])
}

func TestEvalBinaryHelp(t *testing.T) {
	code, stdout, _ := runBinary(t, "eval", "--help")
	assert.Equal(t, 0, code)
	flags := []string{"--outcomes", "--split", "--seed", "--train", "--test", "--target-quality", "--json", "--plot", "--compare"}
	sort.Strings(flags)
	for _, f := range flags {
		assert.Contains(t, stdout, f)
	}
}
