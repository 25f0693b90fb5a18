package cascade

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompareArmsWithClassifier(t *testing.T) {
	all, _ := genPromptTable(3000, 5)
	train, test, _, _ := splitTables(t, all, 1)
	c, err := TrainClassifier(train, ClassifierOptions{Seed: 1})
	require.NoError(t, err)
	strong := Single("strong")
	cases := []struct {
		name string
		a, b Arm
	}{
		{"policy vs classifier", PolicyArm(strong), ClassifierArm("router.json", c)},
		{"classifier vs policy", ClassifierArm("router.json", c), PolicyArm(strong)},
		{"classifier vs itself", ClassifierArm("a", c), ClassifierArm("b", c)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmp, err := CompareArms(test, tc.a, tc.b, 500, 3)
			require.NoError(t, err)
			ma, err := tc.a.Evaluate(test)
			require.NoError(t, err)
			mb, err := tc.b.Evaluate(test)
			require.NoError(t, err)
			assert.Equal(t, ma, cmp.MetricsA)
			assert.Equal(t, mb, cmp.MetricsB)
			assert.InDelta(t, mb.Quality-ma.Quality, cmp.Quality.Estimate, 1e-12)
			assert.InDelta(t, mb.CostUSD-ma.CostUSD, cmp.CostUSD.Estimate, 1e-12)
			assert.LessOrEqual(t, cmp.CostUSD.Lo, cmp.CostUSD.Estimate)
			assert.GreaterOrEqual(t, cmp.CostUSD.Hi, cmp.CostUSD.Estimate)
			assert.Equal(t, tc.a.Kind(), cmp.ArmA.Kind())
			if tc.a.Classifier != nil {
				assert.Nil(t, cmp.A.Models, "A holds a fixed policy only")
			} else {
				assert.Equal(t, strong.Models, cmp.A.Models)
			}
		})
	}
	// The classifier routes most prompts to cheaper models: clearly cheaper
	// than strong, with an interval that excludes zero.
	cmp, err := CompareArms(test, PolicyArm(strong), ClassifierArm("router.json", c), 1000, 1)
	require.NoError(t, err)
	assert.Less(t, cmp.CostUSD.Hi, 0.0)
	assert.Equal(t, "classifier", cmp.ArmB.Kind())
	assert.Contains(t, cmp.ArmB.String(), "classifier: cheapest of cheap, mid with p >= ")
}

func TestArmCheck(t *testing.T) {
	all, _ := genPromptTable(600, 5)
	c, err := TrainClassifier(all, ClassifierOptions{Seed: 1})
	require.NoError(t, err)
	noPrompt := all.Subset(seq(all.Len()))
	noPrompt.Prompt = nil
	renamed := all.Subset(seq(all.Len()))
	require.NoError(t, renamed.RenameModels(map[string]string{"mid": "medium"}))
	cases := []struct {
		name string
		arm  Arm
		tab  *Table
		want string
	}{
		{"classifier ok", ClassifierArm("r.json", c), all, ""},
		{"no prompt column", ClassifierArm("r.json", c), noPrompt, `r.json: gen:1: header, column "prompt": the outcome table has no prompt column`},
		{"model missing", ClassifierArm("r.json", c), renamed, `r.json: the classifier routes to model "mid", which is not in the outcome table`},
		{"policy ok", PolicyArm(Single("mid")), all, ""},
		{"policy model missing", PolicyArm(Single("midd")), all, `models: model "midd" is not in the outcome table; did you mean "mid"?`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.arm.Check(tc.tab)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.want)
			_, err = CompareArms(tc.tab, tc.arm, PolicyArm(Single("strong")), 10, 1)
			assert.Error(t, err)
		})
	}
}

func TestWriteSVGPoints(t *testing.T) {
	all := genTable(1000, 21, []genModel{noisyModel("a", 0.0002, 0.45, 0.9, true), noisyModel("b", 0.04, 0.9, 0.1, false)})
	rep, err := RunSplit(all, 0.3, 1, Options{})
	require.NoError(t, err)
	var plain bytes.Buffer
	require.NoError(t, WriteSVG(&plain, rep))
	// A point far outside the others widens the axes and shows in the legend.
	rep.Points = []PlotPoint{{Label: "classifier", Title: "prompt classifier <a|b>", Test: Metrics{Quality: 0.2, CostUSD: 5}}}
	var buf bytes.Buffer
	require.NoError(t, WriteSVG(&buf, rep))
	counts := wellFormed(t, buf.Bytes())
	plainCounts := wellFormed(t, plain.Bytes())
	assert.Equal(t, plainCounts["path"]+2, counts["path"], "the point and its legend mark")
	s := buf.String()
	assert.Contains(t, s, "prompt classifier &lt;a|b&gt;: quality 0.2000, $5 per query")
	assert.Contains(t, s, `fill="#9467bd">classifier</text>`)
	assert.Contains(t, s, "$10</text>", "the cost axis reaches the point")
	assert.NotContains(t, plain.String(), "$10</text>")
	assert.Equal(t, 2, strings.Count(s, ">classifier</text>"), "label next to the point and in the legend")
}
