package cascade

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePolicy(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want Policy
		errs []string
	}{
		{"single", "kind = \"single\"\nmodel = \"a\"\n", Policy{Name: "p.toml", Models: []string{"a"}}, nil},
		{"cascade", "name = \"cheap first\"\nkind = \"cascade\"\nmodels = [\"a\", \"b\", \"c\"]\nthresholds = [0.8, 1]\n",
			Policy{Name: "cheap first", Models: []string{"a", "b", "c"}, Thresholds: []float64{0.8, 1}}, nil},
		{"missing kind", "model = \"a\"\n", Policy{}, []string{`p.toml:1:1: kind: missing; add kind = "single"`}},
		{"bad kind", "kind = \"router\"\nmodel = \"a\"\n", Policy{}, []string{`p.toml:1:8: kind: must be "single" or "cascade", got router`}},
		{"unknown key", "kind = \"cascade\"\nmodels = [\"a\", \"b\"]\nthreshold = [0.5]\n", Policy{},
			[]string{`p.toml:2:10: thresholds: 2 models need 1 thresholds`, `p.toml:3:1: threshold: unknown key "threshold"; did you mean "thresholds"?`}},
		{"wrong count", "kind = \"cascade\"\nmodels = [\"a\", \"b\"]\nthresholds = [0.5, 0.6]\n", Policy{},
			[]string{`p.toml:3:14: thresholds: 2 models need 1 thresholds (one per model but the last), got 2`}},
		{"not strings", "kind = \"cascade\"\nmodels = [\"a\", 3]\nthresholds = [0.5]\n", Policy{},
			[]string{`p.toml:2:10: models: every entry must be a model name`}},
		{"single with thresholds", "kind = \"single\"\nmodel = \"a\"\nthresholds = [0.5]\n", Policy{},
			[]string{`p.toml:1:8: kind: a single-model policy takes model = "..." only`}},
		{"syntax", "kind = \"single\nmodel = \"a\"\n", Policy{}, []string{`p.toml:1:15: TOML syntax: `}},
		{"nan", "kind = \"cascade\"\nmodels = [\"a\", \"b\"]\nthresholds = [nan]\n", Policy{}, []string{`p.toml:3:14: thresholds: nan is not a threshold`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParsePolicy("p.toml", []byte(c.src))
			if c.errs == nil {
				require.NoError(t, err)
				assert.Equal(t, c.want.Name, p.Name)
				assert.Equal(t, c.want.Models, p.Models)
				assert.Equal(t, c.want.Thresholds, p.Thresholds)
				return
			}
			var errs Errors
			require.True(t, errors.As(err, &errs), "%v", err)
			require.Len(t, errs, len(c.errs), "%v", err)
			for i, w := range c.errs {
				assert.Contains(t, errs[i].Error(), w)
			}
		})
	}
}

func TestCheckPolicyNamesTheKey(t *testing.T) {
	tab := genTable(10, 1, []genModel{thresholdModel("small", 0.001, 0.5), perfectModel("large", 0.03)})
	cases := []struct{ src, want string }{
		{"kind = \"single\"\nmodel = \"smal\"\n", `p.toml:2:9: model: model "smal" is not in the outcome table; did you mean "small"?`},
		{"kind = \"cascade\"\nmodels = [\"large\", \"small\"]\nthresholds = [0.5]\n", `p.toml:2:10: models: model "large" stands before the last but the table has no large|confidence column to decide when it escalates`},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			p, err := ParsePolicy("p.toml", []byte(c.src))
			require.NoError(t, err)
			err = CheckPolicy(tab, p)
			require.Error(t, err)
			assert.Equal(t, c.want, err.Error())
		})
	}
	ok := Policy{Models: []string{"small", "large"}, Thresholds: []float64{0.5}}
	assert.NoError(t, CheckPolicy(tab, ok))
}

func TestLoadPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.toml")
	require.NoError(t, os.WriteFile(path, []byte("kind = \"single\"\nmodel = \"x\"\n"), 0o644))
	p, err := LoadPolicy(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"x"}, p.Models)
	_, err = LoadPolicy(path + ".missing")
	assert.ErrorContains(t, err, "a.toml.missing: cannot read")
}

func TestCompare(t *testing.T) {
	models := []genModel{thresholdModel("small", 0.001, 0.4), perfectModel("large", 0.03)}
	tab := genTable(2000, 3, models)
	small, large := Single("small"), Single("large")
	casc := Policy{Models: []string{"small", "large"}, Thresholds: []float64{0.4}}
	cases := []struct {
		name string
		a, b Policy
	}{
		{"same policy", casc, casc},
		{"small vs large", small, large},
		{"cascade vs large", casc, large},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmp, err := Compare(tab, c.a, c.b, 2000, 7)
			require.NoError(t, err)
			ma, _ := Evaluate(tab, c.a)
			mb, _ := Evaluate(tab, c.b)
			assert.InDelta(t, mb.Quality-ma.Quality, cmp.Quality.Estimate, 1e-12)
			assert.InDelta(t, mb.CostUSD-ma.CostUSD, cmp.CostUSD.Estimate, 1e-12)
			for _, iv := range []Interval{cmp.Quality, cmp.CostUSD} {
				assert.LessOrEqual(t, iv.Lo, iv.Estimate+1e-12)
				assert.GreaterOrEqual(t, iv.Hi, iv.Estimate-1e-12)
			}
			if c.a.String() == c.b.String() {
				assert.Equal(t, Interval{}, cmp.Quality)
				assert.Equal(t, Interval{}, cmp.CostUSD)
			} else {
				assert.Less(t, cmp.CostUSD.Lo, cmp.CostUSD.Hi)
			}
			again, err := Compare(tab, c.a, c.b, 2000, 7)
			require.NoError(t, err)
			assert.Equal(t, cmp, again, "same seed, same intervals")
		})
	}
	// small vs large: large is right on every row small gets wrong, so the
	// quality difference is the share of rows with confidence <= 0.4 and
	// its interval is about +-1.96 sqrt(p(1-p)/n) wide.
	cmp, err := Compare(tab, small, large, 2000, 7)
	require.NoError(t, err)
	assert.InDelta(t, 0.4, cmp.Quality.Estimate, 0.04)
	assert.InDelta(t, 2*1.96*0.011, cmp.Quality.Hi-cmp.Quality.Lo, 0.01)
	other, err := Compare(tab, small, large, 2000, 8)
	require.NoError(t, err)
	assert.NotEqual(t, cmp.Quality.Lo, other.Quality.Lo, "another seed draws other resamples")

	_, err = Compare(tab, Single("nope"), large, 10, 1)
	assert.Error(t, err)
}

// Over independent tables, the 95% interval of the quality difference
// covers the true difference (0.4 by construction) nearly every time.
func TestCompareCoverage(t *testing.T) {
	covered := 0
	const trials = 20
	for s := range uint64(trials) {
		tab := genTable(400, 100+s, []genModel{thresholdModel("small", 0.001, 0.4), perfectModel("large", 0.03)})
		cmp, err := Compare(tab, Single("small"), Single("large"), DefaultResamples, s)
		require.NoError(t, err)
		if cmp.Quality.Lo <= 0.4 && 0.4 <= cmp.Quality.Hi {
			covered++
		}
	}
	assert.GreaterOrEqual(t, covered, 17)
}
