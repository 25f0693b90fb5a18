package cascade

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rec is a compact record for tests: conf < 0 means none.
func rec(q, m string, perf, cost, conf float64) Record {
	r := Record{Query: q, Model: m, Perf: perf, CostUSD: cost, LatencyMS: 100, TokensIn: 10, TokensOut: 5}
	if conf >= 0 {
		r.Conf, r.HasConf = conf, true
	}
	return r
}

func TestFromRecords(t *testing.T) {
	// Every query went to cheap; q1..q4 also to strong; q1 and q2 to mid as well.
	base := []Record{
		rec("q1", "cheap", 0, 0.001, 0.2), rec("q1", "strong", 1, 0.02, -1), rec("q1", "mid", 1, 0.005, -1),
		rec("q2", "cheap", 0, 0.001, 0.3), rec("q2", "strong", 1, 0.02, -1), rec("q2", "mid", 0, 0.005, -1),
		rec("q3", "cheap", 1, 0.001, 0.4), rec("q3", "strong", 1, 0.02, -1),
		rec("q4", "cheap", 0, 0.001, 0.1), rec("q4", "strong", 0, 0.02, -1),
		rec("q5", "cheap", 1, 0.001, 0.9),
		rec("q6", "cheap", 1, 0.001, 0.8),
	}
	cases := []struct {
		name       string
		recs       []Record
		models     []string
		rows       int
		dropped    []string
		noConf     []string
		perfCheap  []float64
		confCheap  []float64
		hasGroups  bool
		wantErrSub string
	}{
		{"complete cases of the models called together", base, []string{"cheap", "strong"}, 4,
			[]string{"mid (2 of 6 queries)"}, []string{"strong"}, []float64{0, 0, 1, 0}, []float64{0.2, 0.3, 0.4, 0.1}, false, ""},
		{"all models on every query", []Record{rec("a", "x", 1, 1, 0.5), rec("a", "y", 0, 2, 0.6), rec("b", "y", 1, 2, 0.1), rec("b", "x", 0, 1, 0.9)},
			[]string{"x", "y"}, 2, nil, nil, nil, nil, false, ""},
		{"one model only when none share a query", []Record{rec("a", "x", 1, 1, -1), rec("b", "x", 1, 1, -1), rec("c", "y", 0, 2, -1)},
			[]string{"x"}, 2, []string{"y (1 of 3 queries)"}, []string{"x"}, nil, nil, false, ""},
		{"a confidence missing on one kept row drops the column", []Record{rec("a", "x", 1, 1, 0.5), rec("a", "y", 0, 2, -1), rec("b", "x", 0, 1, -1), rec("b", "y", 1, 2, -1)},
			[]string{"x", "y"}, 2, nil, []string{"x", "y"}, nil, nil, false, ""},
		{"groups become eval_name", []Record{{Query: "a", Model: "x", Perf: 1, Group: "qa"}, {Query: "a", Model: "y", Perf: 1, Group: "qa"}},
			[]string{"x", "y"}, 1, nil, []string{"x", "y"}, nil, nil, true, ""},
		{"repeated record", []Record{rec("a", "x", 1, 1, -1), rec("a", "x", 0, 1, -1)}, nil, 0, nil, nil, nil, nil, false,
			`led: record 2 repeats query "a" on model "x" (first at record 1)`},
		{"performance out of range", []Record{rec("a", "x", 1.5, 1, -1)}, nil, 0, nil, nil, nil, nil, false,
			`led: record 1 (query "a", model "x"): performance 1.5 is outside 0..1`},
		{"negative cost", []Record{rec("a", "x", 1, -1, -1)}, nil, 0, nil, nil, nil, nil, false, "cost -1 is not a number >= 0"},
		{"nan confidence", []Record{{Query: "a", Model: "x", Perf: 1, Conf: math.NaN(), HasConf: true}}, nil, 0, nil, nil, nil, nil, false, "the confidence is not a finite number"},
		{"no records", nil, nil, 0, nil, nil, nil, nil, false, "led: no outcomes recorded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, cov, err := FromRecords("led", c.recs)
			if c.wantErrSub != "" {
				assert.ErrorContains(t, err, c.wantErrSub)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.models, tab.Models)
			assert.Equal(t, c.models, cov.Models)
			assert.Equal(t, c.rows, tab.Len())
			assert.Equal(t, c.rows, cov.Rows)
			assert.Equal(t, c.dropped, cov.DroppedModels)
			assert.Equal(t, c.noConf, cov.NoConfidence)
			for i, m := range tab.Models {
				assert.Equal(t, !contains(c.noConf, m), tab.HasConfidence(i), m)
			}
			if c.perfCheap != nil {
				assert.Equal(t, c.perfCheap, tab.Perf[0])
				assert.Equal(t, c.confCheap, tab.Conf[0])
				assert.Equal(t, []float64{0.02, 0.02, 0.02, 0.02}, tab.Cost[1])
			}
			assert.Equal(t, c.hasGroups, tab.EvalName != nil)
			require.Len(t, tab.Origin, tab.Len())
			assert.Equal(t, Origin{File: "led", Row: 1}, tab.Origin[0])
			// The table replays like any other.
			_, err = Evaluate(tab, Single(tab.Models[0]))
			assert.NoError(t, err)
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// With many models and queries the choice stays exact: a planted block of
// queries answered by every model of a subset is found.
func TestFromRecordsFindsTheLargestCompleteBlock(t *testing.T) {
	var recs []Record
	models := []string{"m0", "m1", "m2", "m3", "m4", "m5"}
	for q := range 1000 {
		id := fmt.Sprintf("q%d", q)
		for i, m := range models {
			// m0..m2 on every query; m3..m5 on one query in ten each, at
			// different queries.
			if i < 3 || q%10 == i {
				recs = append(recs, rec(id, m, float64(q%2), 0.001*float64(i+1), -1))
			}
		}
	}
	tab, cov, err := FromRecords("led", recs)
	require.NoError(t, err)
	assert.Equal(t, []string{"m0", "m1", "m2"}, tab.Models)
	assert.Equal(t, 1000, cov.Rows)
	assert.Equal(t, []string{"m3 (100 of 1000 queries)", "m4 (100 of 1000 queries)", "m5 (100 of 1000 queries)"}, cov.DroppedModels)
}

func TestRenameModels(t *testing.T) {
	mk := func() *Table {
		return genTable(5, 1, []genModel{thresholdModel("cheap", 0.001, 0.5), perfectModel("strong", 0.02)})
	}
	cases := []struct {
		name    string
		m       map[string]string
		want    []string
		wantErr string
	}{
		{"both", map[string]string{"cheap": "openai/gpt-5-nano", "strong": "openai/gpt-5"}, []string{"openai/gpt-5-nano", "openai/gpt-5"}, ""},
		{"one", map[string]string{"strong": "openai/gpt-5"}, []string{"cheap", "openai/gpt-5"}, ""},
		{"swap", map[string]string{"strong": "cheap", "cheap": "strong"}, []string{"strong", "cheap"}, ""},
		{"typo", map[string]string{"chep": "x/y"}, nil, `model "chep" is not in the outcome table; did you mean "cheap"?`},
		{"unknown", map[string]string{"zzzzzz": "x/y"}, nil, `model "zzzzzz" is not in the outcome table; its models are cheap, strong`},
		{"collision", map[string]string{"cheap": "strong"}, nil, `models "cheap" and "strong" would both be named "strong"`},
		{"empty", map[string]string{"cheap": ""}, nil, `model "cheap" would be renamed to an empty name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := mk()
			err := tab.RenameModels(c.m)
			if c.wantErr != "" {
				assert.ErrorContains(t, err, c.wantErr)
				assert.Equal(t, []string{"cheap", "strong"}, tab.Models, "unchanged on error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, tab.Models)
		})
	}
}

func TestJoinCommon(t *testing.T) {
	a := genTable(10, 1, []genModel{thresholdModel("x", 0.001, 0.5), thresholdModel("y", 0.002, 0.5), perfectModel("z", 0.02)})
	b := genTable(4, 2, []genModel{perfectModel("z", 0.03), thresholdModel("x", 0.001, 0.5), perfectModel("y", 0.002), perfectModel("w", 1)})
	j, mg, err := JoinCommon(a, b)
	require.NoError(t, err)
	assert.Equal(t, []string{"x", "y", "z"}, j.Models)
	assert.Equal(t, 14, j.Len())
	assert.Equal(t, []string{"w"}, mg.DroppedModels)
	assert.Equal(t, []string{"y"}, mg.DroppedConfidence, "b has no y|confidence")
	assert.True(t, j.HasConfidence(0))
	assert.False(t, j.HasConfidence(1))
	assert.Equal(t, b.Cost[0][3], j.Cost[2][13], "b's rows follow a's, columns matched by name")
	assert.Equal(t, []string{"x", "y", "z"}, a.Models, "inputs untouched")
	assert.NotNil(t, a.Conf[1])

	_, _, err = JoinCommon(a, genTable(3, 1, []genModel{perfectModel("q", 1)}))
	assert.ErrorContains(t, err, "the tables have no model in common (gen: x, y, z; gen: q)")
}

func BenchmarkFromRecords(b *testing.B) {
	for _, size := range []struct{ queries, models int }{{1000, 5}, {50000, 5}, {50000, 30}} {
		var recs []Record
		for q := range size.queries {
			id := "q" + fmt.Sprint(q)
			for i := range size.models {
				if i < 4 || q%(i+1) == 0 {
					recs = append(recs, rec(id, fmt.Sprintf("m%02d", i), 1, 0.001, 0.5))
				}
			}
		}
		tab, _, err := FromRecords("led", recs)
		if err != nil || tab.Len() != size.queries || len(tab.Models) < 4 {
			b.Fatalf("bad table: %v", err)
		}
		b.Run(fmt.Sprintf("queries=%d/models=%d", size.queries, size.models), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := FromRecords("led", recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
