package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trainedClassifier trains and saves a prompt classifier on csv's training
// split with eval itself.
func trainedClassifier(t *testing.T, csv string) string {
	t.Helper()
	saved := filepath.Join(t.TempDir(), "router.json")
	code, _, stderr := runEval("--outcomes", csv, "--save-classifier", saved)
	require.Equal(t, 0, code, stderr)
	return saved
}

func TestEvalCompareClassifier(t *testing.T) {
	csv := promptTable(t, "p.csv", 3000, 1, false)
	router := trainedClassifier(t, csv)
	strong := writeTemp(t, "strong.toml", "kind = \"single\"\nmodel = \"strong\"\n")
	cheap := writeTemp(t, "cheap.toml", "kind = \"single\"\nmodel = \"cheap\"\n")

	type side struct {
		File       string    `json:"file"`
		Kind       string    `json:"kind"`
		Models     []string  `json:"models"`
		Thresholds []float64 `json:"thresholds"`
		Threshold  *float64  `json:"threshold"`
		Quality    float64   `json:"quality"`
		CostUSD    float64   `json:"cost_usd"`
	}
	var doc struct {
		TestRows int  `json:"test_rows"`
		A        side `json:"a"`
		B        side `json:"b"`
		Quality  struct {
			Estimate float64 `json:"estimate"`
			Low      float64 `json:"ci_low"`
			High     float64 `json:"ci_high"`
		} `json:"quality_diff"`
		Cost struct {
			Estimate float64 `json:"estimate"`
			Low      float64 `json:"ci_low"`
			High     float64 `json:"ci_high"`
		} `json:"cost_usd_diff"`
	}
	code, stdout, stderr := runEval("--compare", strong, router, "--outcomes", csv, "--json")
	require.Equal(t, 0, code, stderr)
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
	assert.Equal(t, 900, doc.TestRows)
	assert.Equal(t, "single", doc.A.Kind)
	assert.Equal(t, "classifier", doc.B.Kind)
	assert.Equal(t, router, doc.B.File)
	assert.Equal(t, []string{"cheap", "strong"}, doc.B.Models)
	require.NotNil(t, doc.B.Threshold)
	assert.Empty(t, doc.B.Thresholds)
	assert.Nil(t, doc.A.Threshold)
	assert.InDelta(t, doc.B.CostUSD-doc.A.CostUSD, doc.Cost.Estimate, 1e-12)
	assert.InDelta(t, doc.B.Quality-doc.A.Quality, doc.Quality.Estimate, 1e-12)
	assert.Less(t, doc.Cost.High, 0.0, "the classifier is clearly cheaper than strong alone")

	// The same numbers as eval --classifier reports for the same split.
	code, stdout, stderr = runEval("--outcomes", csv, "--classifier", "--json")
	require.Equal(t, 0, code, stderr)
	var rep classifierDoc
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.InDelta(t, rep.Classifier.Quality, doc.B.Quality, 1e-12)
	assert.InDelta(t, rep.Classifier.CostUSD, doc.B.CostUSD, 1e-12)

	// Either side may be the classifier; the text table names it.
	code, stdout, stderr = runEval("--compare", router, cheap, "--outcomes", csv)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "A  classifier: cheapest of cheap with p >= ")
	assert.Contains(t, stdout, "B  cheap")
	assert.Contains(t, stdout, "(B lower)", "cheap alone loses quality on the prompts that need strong")
}

func TestEvalCompareClassifierErrors(t *testing.T) {
	csv := promptTable(t, "p.csv", 600, 1, false)
	router := trainedClassifier(t, csv)
	strong := writeTemp(t, "strong.toml", "kind = \"single\"\nmodel = \"strong\"\n")
	data, err := os.ReadFile(router)
	require.NoError(t, err)
	broken := writeTemp(t, "broken.json", string(data[:len(data)/2]))
	badField := writeTemp(t, "bad.json", "{\n  \"format\": 3\n}\n")
	noPrompt := evalTableNoPrompt(t)
	for _, c := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no prompt column", []string{"--compare", strong, router, "--outcomes", noPrompt}, router + `: ` + noPrompt + `:1: header, column "prompt": the outcome table has no prompt column`},
		{"cut short", []string{"--compare", strong, broken, "--outcomes", csv}, broken + ":"},
		{"wrong type", []string{"--compare", badField, strong, "--outcomes", csv}, badField + ":2:"},
		{"missing file", []string{"--compare", strong, filepath.Join(t.TempDir(), "r.json"), "--outcomes", csv}, "r.json: cannot read: no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runEval(c.args...)
			assert.Equal(t, 1, code, stderr)
			assert.Contains(t, stderr, c.stderr)
		})
	}
}

// --plot draws the prompt classifier as a point of its own.
func TestEvalPlotClassifier(t *testing.T) {
	csv := promptTable(t, "p.csv", 1500, 2, false)
	plot := filepath.Join(t.TempDir(), "p.svg")
	code, _, stderr := runEval("--outcomes", csv, "--classifier", "--plot", plot)
	require.Equal(t, 0, code, stderr)
	data, err := os.ReadFile(plot)
	require.NoError(t, err)
	assert.Contains(t, string(data), "<title>prompt classifier: cheap | strong: quality ")
	assert.Contains(t, string(data), `fill="#9467bd">classifier</text>`)

	code, _, stderr = runEval("--outcomes", csv, "--plot", plot)
	require.Equal(t, 0, code, stderr)
	data, err = os.ReadFile(plot)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "prompt classifier", "no point without --classifier")
}
