package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// promptTable writes an outcome table whose prompts decide the model: a
// prompt holding "proof" needs "strong" (cheap is right 10% of the time),
// every other prompt is fine on "cheap" (right 97%). "strong" is right 98%
// of the time; costs 0.001 and 0.02 USD. flip inverts every score (to make
// a table that a leaking fit would learn something else from).
func promptTable(t *testing.T, name string, rows int, seed uint64, flip bool) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	words := []string{"alpha", "beta", "gamma", "delta", "list", "sum", "city", "river", "name", "color", "count", "train"}
	var b strings.Builder
	b.WriteString("sample_id,prompt,cheap,cheap|total_cost,strong,strong|total_cost\n")
	for r := range rows {
		ws := make([]string, 5+rng.IntN(15))
		for i := range ws {
			ws[i] = words[rng.IntN(len(words))]
		}
		hard := rng.IntN(4) == 0
		if hard {
			ws[rng.IntN(len(ws))] = "proof"
		}
		pc, ps := 0.97, 0.98
		if hard {
			pc = 0.1
		}
		score := func(p float64) int {
			v := 0
			if rng.Float64() < p {
				v = 1
			}
			if flip {
				v = 1 - v
			}
			return v
		}
		fmt.Fprintf(&b, "q%d,\"%s\",%d,0.001,%d,0.02\n", r, strings.Join(ws, " "), score(pc), score(ps))
	}
	return writeTemp(t, name, b.String())
}

type classifierDoc struct {
	Strongest struct {
		Quality float64 `json:"quality"`
		CostUSD float64 `json:"cost_usd"`
	} `json:"strongest"`
	Classifier *struct {
		Kind            string    `json:"kind"`
		Models          []string  `json:"models"`
		Threshold       float64   `json:"threshold"`
		Quality         float64   `json:"quality"`
		CostUSD         float64   `json:"cost_usd"`
		AnsweredByModel []float64 `json:"answered_by_model"`
		Saving          float64   `json:"saving_vs_strongest"`
		HoldOutRows     int       `json:"holdout_rows"`
		Feasible        bool      `json:"feasible"`
		SavedTo         string    `json:"saved_to"`
	} `json:"classifier"`
}

func TestEvalClassifier(t *testing.T) {
	csv := promptTable(t, "p.csv", 3000, 1, false)
	saved := filepath.Join(t.TempDir(), "router.json")
	code, stdout, stderr := runEval("--outcomes", csv, "--classifier", "--save-classifier", saved, "--json")
	require.Equal(t, 0, code, stderr)
	var doc classifierDoc
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
	c := doc.Classifier
	require.NotNil(t, c)
	assert.Equal(t, "classifier", c.Kind)
	assert.Equal(t, []string{"cheap", "strong"}, c.Models)
	assert.True(t, c.Feasible)
	assert.Equal(t, 420, c.HoldOutRows) // 20% of the 2100 training rows
	assert.Less(t, c.CostUSD, 0.5*doc.Strongest.CostUSD)
	assert.Greater(t, c.Quality, doc.Strongest.Quality-0.03)
	assert.InDelta(t, 1-c.CostUSD/doc.Strongest.CostUSD, c.Saving, 1e-9)
	assert.InDelta(t, 0.75, c.AnsweredByModel[0], 0.06, "about three prompts in four need only cheap")
	assert.Equal(t, saved, c.SavedTo)
	data, err := os.ReadFile(saved)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"format":"costwise.prompt-classifier/v1"`)

	code, stdout, stderr = runEval("--outcomes", csv, "--classifier")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "classifier: cheap | strong")
	assert.Contains(t, stdout, "prompt classifier: cheapest of cheap predicted to suffice")
	assert.Contains(t, stdout, "held-out queries routed to: cheap ")

	code, stdout, _ = runEval("--outcomes", csv, "--json")
	require.Equal(t, 0, code)
	assert.NotContains(t, stdout, `"classifier"`, "no classifier without --classifier")
}

// The saved classifier depends on the training rows only.
func TestEvalClassifierNeverSeesTestRows(t *testing.T) {
	train := promptTable(t, "train.csv", 1500, 1, false)
	testA := promptTable(t, "a.csv", 500, 2, false)
	testB := promptTable(t, "b.csv", 500, 3, true)
	dir := t.TempDir()
	var files [2][]byte
	for i, test := range []string{testA, testB} {
		out := filepath.Join(dir, fmt.Sprintf("c%d.json", i))
		code, _, stderr := runEval("--train", train, "--test", test, "--save-classifier", out, "--seed", "5")
		require.Equal(t, 0, code, stderr)
		var err error
		files[i], err = os.ReadFile(out)
		require.NoError(t, err)
	}
	assert.Equal(t, string(files[0]), string(files[1]))
}

func TestEvalClassifierErrors(t *testing.T) {
	noPrompt := evalTableNoPrompt(t)
	csv := promptTable(t, "p.csv", 200, 1, false)
	good := writeTemp(t, "g.toml", "kind = \"single\"\nmodel = \"strong\"\n")
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no prompt column", []string{"--outcomes", noPrompt, "--classifier"}, 1, `--classifier: ` + noPrompt + `:1: header, column "prompt": the outcome table has no prompt column`},
		{"with compare", []string{"--compare", good, good, "--outcomes", csv, "--classifier"}, 2, "use one or the other"},
		{"unwritable", []string{"--outcomes", csv, "--save-classifier", filepath.Join(t.TempDir(), "no", "dir", "c.json")}, 1, "cannot write the classifier"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runEval(c.args...)
			assert.Equal(t, c.code, code, stderr)
			assert.Contains(t, stderr, c.stderr)
		})
	}
}

func evalTableNoPrompt(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("cheap,cheap|total_cost,strong,strong|total_cost\n")
	for r := range 100 {
		fmt.Fprintf(&b, "%d,0.001,1,0.02\n", r%2)
	}
	return writeTemp(t, "noprompt.csv", b.String())
}
