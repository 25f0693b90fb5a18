package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/planner/cascade"
)

// catalogMaps name catalog models for evalTable's cheap, mid and strong.
var catalogMaps = []string{"--map", "cheap=openai/gpt-5-nano", "--map", "mid=openai/gpt-5-mini", "--map", "strong=openai/gpt-5"}

// directCascade replays "cheap (conf >= thr) -> strong" on an evalTable file
// by reading the CSV itself: mean quality and the share of rows escalated.
func directCascade(t *testing.T, path string, thr float64) (quality, escalated float64, rows int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	head := map[string]int{}
	for i, h := range recs[0] {
		head[h] = i
	}
	num := func(row []string, col string) float64 {
		v, err := strconv.ParseFloat(row[head[col]], 64)
		require.NoError(t, err)
		return v
	}
	var q, esc float64
	for _, row := range recs[1:] {
		if num(row, "cheap|confidence") >= thr {
			q += num(row, "cheap")
		} else {
			q += num(row, "strong")
			esc++
		}
	}
	n := float64(len(recs) - 1)
	return q / n, esc / n, len(recs) - 1
}

func TestEvalSaveCascade(t *testing.T) {
	train := evalTable(t, "train.csv", 1500, 1)
	test := evalTable(t, "test.csv", 600, 2)
	out := filepath.Join(t.TempDir(), "cascades.toml")
	args := append([]string{"--train", train, "--test", test, "--target-quality", "1", "--save-cascade", out,
		"--task", "classification", "--signal", "validate", "--json"}, catalogMaps...)
	code, stdout, stderr := runEval(args...)
	require.Equal(t, 0, code, stderr)

	cs, err := cascade.LoadSpecs(out)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	c := cs[0]
	require.NoError(t, c.Check())
	assert.Equal(t, []string{"openai/gpt-5-nano", "openai/gpt-5"}, c.Models)
	assert.Equal(t, "classification", c.Task)
	assert.Equal(t, estimator.SignalValidate, c.Signal)
	require.Len(t, c.Thresholds, 1)
	assert.InDelta(t, 0.5, c.Thresholds[0], 0.02)
	// Quality and reach are the held-out replay, computed here from the CSV.
	q, esc, rows := directCascade(t, test, c.Thresholds[0])
	assert.Equal(t, rows, c.Rows)
	assert.InDelta(t, q, c.Quality, 1e-12)
	assert.Equal(t, 1.0, c.Reach[0])
	assert.InDelta(t, esc, c.Reach[1], 1e-12)
	assert.Contains(t, c.Source, "trained on "+train+", measured on "+test+" (600 rows)")

	var doc struct {
		Models []struct {
			Model string `json:"model"`
		} `json:"models"`
		Saved struct {
			File    string    `json:"file"`
			ID      string    `json:"id"`
			Quality float64   `json:"quality"`
			Reach   []float64 `json:"reach"`
		} `json:"saved_cascade"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
	assert.Equal(t, out, doc.Saved.File)
	assert.Equal(t, c.ID(), doc.Saved.ID)
	assert.Equal(t, c.Reach, doc.Saved.Reach)
	var names []string
	for _, m := range doc.Models {
		names = append(names, m.Model)
	}
	assert.ElementsMatch(t, []string{"openai/gpt-5-nano", "openai/gpt-5-mini", "openai/gpt-5"}, names, "--map renames everywhere")

	// The text report says where it went.
	out2 := filepath.Join(t.TempDir(), "c2.toml")
	code, stdout, stderr = runEval(append([]string{"--outcomes", train, "--save-cascade", out2, "--target-quality", "1"}, catalogMaps...)...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "cascade cascade:logprob:openai/gpt-5-nano@")
	assert.Contains(t, stdout, "written to "+out2)
	cs2, err := cascade.LoadSpecs(out2)
	require.NoError(t, err)
	assert.Contains(t, cs2[0].Source, train+", held-out split 0.3 (seed 1), 450 of 1500 rows")
	assert.Equal(t, "", cs2[0].Task)
}

func TestEvalSaveCascadeErrors(t *testing.T) {
	tab := evalTable(t, "out.csv", 400, 1)
	noConf := evalTableNoPrompt(t) // no confidence column: the fit is one model
	cat := writeTemp(t, "cat.toml", testCatalog)
	// No model is right on every row: a target of 1 is out of reach.
	lossy := writeTemp(t, "lossy.csv", "cheap,cheap|total_cost,cheap|confidence,strong,strong|total_cost\n"+
		strings.Repeat("1,0.001,0.9,1,0.02\n0,0.001,0.2,0,0.02\n", 20))
	dir := t.TempDir()
	cases := []struct {
		name    string
		args    []string
		code    int
		stderr  []string
		written bool
	}{
		{"table names are not catalog IDs", []string{"--outcomes", tab, "--target-quality", "1"}, 1,
			[]string{`--save-cascade: model cheap of the fitted cascade: "cheap" is not a model of the catalog`, "add --map cheap=PROVIDER/MODEL"}, false},
		{"mapped ID misspelt", []string{"--outcomes", tab, "--map", "cheap=openai/gpt-5-nan"}, 1,
			[]string{`--map cheap=openai/gpt-5-nan: "openai/gpt-5-nan" is not a model of the catalog; did you mean "openai/gpt-5-nano"?`}, false},
		{"mapped name not in the table", []string{"--outcomes", tab, "--map", "chep=openai/gpt-5-nano"}, 1,
			[]string{`--map: ` + tab + `: model "chep" is not in the outcome table; did you mean "cheap"?`}, false},
		{"checked against the loaded catalog", []string{"--outcomes", tab, "--map", "cheap=openai/gpt-5-nano", "--catalog", cat, "--no-default-catalog"}, 1,
			[]string{`--map cheap=openai/gpt-5-nano: "openai/gpt-5-nano" is not a model of the catalog`}, false},
		{"custom catalog", []string{"--outcomes", tab, "--map", "cheap=acme/small", "--map", "strong=acme/large", "--catalog", cat, "--no-default-catalog", "--target-quality", "1"}, 0,
			nil, true},
		{"single model fit", []string{"--outcomes", noConf, "--map", "cheap=openai/gpt-5-nano", "--map", "strong=openai/gpt-5"}, 1,
			[]string{"--save-cascade: the fit is the single model openai/gpt-5, not a cascade (", "nothing written to"}, false},
		{"infeasible target", []string{"--outcomes", lossy, "--target-quality", "1", "--map", "cheap=openai/gpt-5-nano", "--map", "strong=openai/gpt-5"}, 3,
			[]string{"--save-cascade: no policy reaches the target quality on the training rows; nothing written"}, false},
		{"map syntax", []string{"--outcomes", tab, "--map", "cheap"}, 2, []string{`--map "cheap": write --map NAME=ID`}, false},
		{"map twice", []string{"--outcomes", tab, "--map", "cheap=a/b", "--map", "cheap=a/c"}, 2, []string{`--map maps "cheap" twice`}, false},
		{"two names one ID", []string{"--outcomes", tab, "--map", "cheap=a/b", "--map", "mid=a/b"}, 2, []string{`--map maps both "cheap" and "mid" to "a/b"`}, false},
		{"bad signal", []string{"--outcomes", tab, "--signal", "vibes"}, 2, []string{`--signal must be logprob, validate or self_check, got "vibes"`}, false},
		{"unwritable", append([]string{"--outcomes", tab, "--target-quality", "1"}, catalogMaps...), 1, []string{"cannot write the cascade"}, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, strconv.Itoa(i), "c.toml")
			if c.name != "unwritable" {
				require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
			}
			code, _, stderr := runEval(append(c.args, "--save-cascade", out)...)
			assert.Equal(t, c.code, code, stderr)
			for _, w := range c.stderr {
				assert.Contains(t, stderr, w)
			}
			if c.written {
				assert.FileExists(t, out)
			} else {
				assert.NoFileExists(t, out)
			}
		})
	}
	// Flags that need --save-cascade or clash with --compare.
	good := writeTemp(t, "g.toml", "kind = \"single\"\nmodel = \"strong\"\n")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"signal alone", []string{"--outcomes", tab, "--signal", "validate"}, "--signal names the signal of the cascade --save-cascade writes"},
		{"task alone", []string{"--outcomes", tab, "--task", "qa"}, "--task keeps the --ledger nodes of a task and labels the --save-cascade spec"},
		{"with compare", []string{"--compare", good, good, "--outcomes", tab, "--save-cascade", filepath.Join(dir, "x.toml")}, "use one or the other"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runEval(c.args...)
			assert.Equal(t, 2, code, stderr)
			assert.Contains(t, stderr, c.want)
		})
	}
}

// A cascade whose first stage cannot give log-probabilities is written with
// a warning.
func TestEvalSaveCascadeWarnsOnLogprobStage(t *testing.T) {
	tab := evalTable(t, "out.csv", 400, 1)
	out := filepath.Join(t.TempDir(), "c.toml")
	code, _, stderr := runEval("--outcomes", tab, "--target-quality", "1", "--save-cascade", out,
		"--map", "cheap=anthropic/claude-sonnet-4-5", "--map", "mid=openai/gpt-5-mini", "--map", "strong=openai/gpt-5")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "warning: stage 1 (anthropic/claude-sonnet-4-5) cannot give the logprob signal")
	assert.FileExists(t, out)
}
