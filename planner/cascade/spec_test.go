package cascade

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
)

const goodSpec = `# fitted by hand
[[cascade]]
task = "classification"
models = ["openai/gpt-5-nano", "openai/gpt-5"]
thresholds = [0.72]
signal = "logprob"
quality = 0.91
reach = [1.0, 0.34]
rows = 1200
source = "outcomes.csv, test split (seed 1)"

[[cascade]]
models = ["a/x", "b/y", "c/z"]
thresholds = [0.5, 1]
signal = "self_check"
quality = 1
reach = [1, 0.5, 0.25]
`

func TestParseSpecs(t *testing.T) {
	cs, err := ParseSpecs("c.toml", []byte(goodSpec))
	require.NoError(t, err)
	require.Len(t, cs, 2)
	assert.Equal(t, estimator.Cascade{
		Task: "classification", Models: []string{"openai/gpt-5-nano", "openai/gpt-5"}, Thresholds: []float64{0.72},
		Signal: "logprob", Quality: 0.91, Reach: []float64{1, 0.34}, Rows: 1200, Source: "outcomes.csv, test split (seed 1)",
	}, cs[0])
	assert.Equal(t, "", cs[1].Task, "task is optional: any task")
	assert.Equal(t, []float64{0.5, 1}, cs[1].Thresholds, "integers are accepted as numbers")
	assert.Equal(t, 0, cs[1].Rows)
	assert.Equal(t, "cascade:self_check:a/x@0.5>b/y@1>c/z", cs[1].ID())
}

func TestParseSpecsErrors(t *testing.T) {
	const head = "[[cascade]]\n"
	const ok = "models = [\"a\", \"b\"]\nthresholds = [0.5]\nsignal = \"logprob\"\nquality = 0.9\nreach = [1, 0.4]\n"
	cases := []struct {
		name string
		src  string
		want []string // substrings of each error, in order
	}{
		{"typo in a key", head + ok + "sorce = \"x\"\n", []string{`c.toml:7:1: cascade[0].sorce: unknown key "sorce" in a [[cascade]] table; did you mean "source"?`}},
		{"unknown top-level key", "cascades = 1\n" + head + ok, []string{`c.toml:1:1: cascades: unknown key "cascades" in the top level; did you mean "cascade"?`}},
		{"unknown key, no hint", head + ok + "colour = 1\n", []string{`c.toml:7:1: cascade[0].colour: unknown key "colour" in a [[cascade]] table; allowed keys are task, models,`}},
		{"syntax", head + "models = [\"a\"\n", []string{`c.toml:2:14: TOML syntax:`}},
		{"empty file", "", []string{`c.toml:1:1: no cascade in the file`}},
		{"single table instead of array", "[cascade]\n" + ok, []string{`c.toml:1:1: cascade: must be an array of tables, one per cascade; head each one [[cascade]]`}},
		{"missing signal", head + strings.Replace(ok, "signal = \"logprob\"\n", "", 1), []string{`c.toml:1:1: cascade 1: signal: missing; add signal = "logprob"`}},
		{"bad signal", head + strings.Replace(ok, `"logprob"`, `"logprobs"`, 1), []string{`c.toml:4:10: cascade 1: signal: "logprobs" is not one of logprob, validate, self_check`}},
		{"signal not a string", head + strings.Replace(ok, `"logprob"`, `3`, 1), []string{`c.toml:4:10: cascade 1: signal: must be a string, got an integer`}},
		{"threshold count", head + strings.Replace(ok, "[0.5]", "[0.5, 0.6]", 1), []string{`c.toml:3:14: cascade 1: thresholds: 2 models need 1 thresholds, got 2`}},
		{"threshold not a number", head + strings.Replace(ok, "[0.5]", "[\"high\"]", 1), []string{`c.toml:3:14: cascade 1: thresholds: entry 1 is a string, not a number`}},
		{"nan threshold", head + strings.Replace(ok, "[0.5]", "[nan]", 1), []string{`c.toml:3:14: cascade 1: thresholds: threshold 1 is not a finite number`}},
		{"one model", head + strings.Replace(strings.Replace(ok, `["a", "b"]`, `["a"]`, 1), "[0.5]", "[]", 1), []string{`c.toml:2:10: cascade 1: models: a cascade needs at least two models, got 1`}},
		{"repeated model", head + strings.Replace(ok, `["a", "b"]`, `["a", "a"]`, 1), []string{`c.toml:2:10: cascade 1: models: "a" appears twice`}},
		{"empty model", head + strings.Replace(ok, `["a", "b"]`, `["a", ""]`, 1), []string{`c.toml:2:10: cascade 1: models: entry 2 must be a model ID`}},
		{"reach starts below 1", head + strings.Replace(ok, "[1, 0.4]", "[0.9, 0.4]", 1), []string{`c.toml:6:9: cascade 1: reach: the first share is 0.9`}},
		{"reach increases", head + strings.Replace(ok, "[1, 0.4]", "[1, 1.5]", 1), []string{`c.toml:6:9: cascade 1: reach: share 2 is 1.5, outside [0, 1]`}},
		{"quality zero", head + strings.Replace(ok, "0.9\n", "0\n", 1), []string{`c.toml:5:11: cascade 1: quality: 0 is outside (0, 1]`}},
		{"quality a string", head + strings.Replace(ok, "0.9\n", "\"high\"\n", 1), []string{`c.toml:5:11: cascade 1: quality: must be a number, got a string`}},
		{"rows negative", head + ok + "rows = -3\n", []string{`c.toml:7:8: cascade 1: rows: -3 is outside 0..`}},
		{"rows a float", head + ok + "rows = 1.5\n", []string{`c.toml:7:8: cascade 1: rows: must be a whole number, got a float`}},
		{"second cascade at fault", head + ok + "\n" + head + strings.Replace(ok, "[0.5]", "[]", 1), []string{`c.toml:10:14: cascade 2: thresholds: 2 models need 1 thresholds, got 0`}},
		{"two problems in file order", head + strings.Replace(ok, "0.9\n", "2\n", 1) + "tsk = \"x\"\n", []string{
			`c.toml:5:11: cascade 1: quality: 2 is outside (0, 1]`, `c.toml:7:1: cascade[0].tsk: unknown key "tsk"`}},
		{"not UTF-8", "\xff\xfe", []string{`c.toml:1:1: the file is not UTF-8 text`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs, err := ParseSpecs("c.toml", []byte(c.src))
			require.Error(t, err)
			assert.Nil(t, cs)
			var errs Errors
			require.True(t, errors.As(err, &errs), "%v", err)
			require.Len(t, errs, len(c.want), "%v", err)
			for i, w := range c.want {
				assert.Contains(t, errs[i].Error(), w)
			}
		})
	}
}

func TestWriteSpecsRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		cs   []estimator.Cascade
	}{
		{"readme example", []estimator.Cascade{{Task: "classification", Models: []string{"openai/gpt-5-nano", "openai/gpt-5"}, Thresholds: []float64{0.72},
			Signal: estimator.SignalLogprob, Quality: 0.91, Reach: []float64{1, 0.34}, Rows: 1200, Source: "outcomes.csv, test split (seed 1)"}}},
		{"awkward numbers and strings", []estimator.Cascade{
			{Models: []string{"a", "b", "c"}, Thresholds: []float64{1e-7, -2}, Signal: estimator.SignalSelfCheck,
				Quality: 1.0 / 3, Reach: []float64{1, 2.0 / 3, 0}, Rows: 3, Source: "quote \" backslash \\ tab\t newline\n bell\x07 é"},
			{Task: "code", Models: []string{"x/y", "z/w"}, Thresholds: []float64{1}, Signal: estimator.SignalValidate,
				Quality: 1, Reach: []float64{1, 1}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, WriteSpecs(&b, c.cs))
			back, err := ParseSpecs("w.toml", b.Bytes())
			require.NoError(t, err, b.String())
			assert.Equal(t, c.cs, back)
		})
	}
	// The README layout, key for key (golden file; -update rewrites it).
	var b bytes.Buffer
	require.NoError(t, WriteSpecs(&b, cases[0].cs))
	golden := filepath.Join("testdata", "cascades.toml")
	if *update {
		require.NoError(t, os.WriteFile(golden, b.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), b.String())
}

func TestWriteSpecsRefusesBadCascades(t *testing.T) {
	var b bytes.Buffer
	assert.EqualError(t, WriteSpecs(&b, nil), "no cascade to write")
	err := WriteSpecs(&b, []estimator.Cascade{{Models: []string{"a", "b"}, Thresholds: []float64{0.5}, Signal: "vibes", Quality: 0.9, Reach: []float64{1, 0.5}}})
	assert.ErrorContains(t, err, `cascade 1 (cascade:vibes:a@0.5>b): signal: "vibes" is not one of`)
	assert.Zero(t, b.Len(), "nothing written")
}

func TestLoadSpecs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	cs := []estimator.Cascade{{Models: []string{"a", "b"}, Thresholds: []float64{0.5}, Signal: "logprob", Quality: 0.9, Reach: []float64{1, 0.5}, Rows: 10}}
	require.NoError(t, WriteSpecsFile(path, cs))
	back, err := LoadSpecs(path)
	require.NoError(t, err)
	assert.Equal(t, cs, back)
	_, err = LoadSpecs(filepath.Join(dir, "missing.toml"))
	assert.ErrorContains(t, err, "missing.toml: cannot read: no such file or directory")
}

func TestNewSpec(t *testing.T) {
	p := Policy{Models: []string{"cheap", "mid", "strong"}, Thresholds: []float64{0.8, 0.6}}
	cases := []struct {
		name      string
		p         Policy
		held      Metrics
		o         SpecOptions
		wantReach []float64
		wantErr   string
	}{
		{"three stages", p, Metrics{Rows: 100, Quality: 0.9, Answered: []float64{0.5, 0.3, 0.2}},
			SpecOptions{Task: "qa", Signal: "logprob", Source: "s", Rename: map[string]string{"cheap": "openai/gpt-5-nano"}}, []float64{1, 0.5, 0.2}, ""},
		{"rounding never raises a later share", p, Metrics{Rows: 3, Quality: 1, Answered: []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}},
			SpecOptions{Signal: "validate"}, []float64{1, 2.0 / 3, 1.0 / 3}, ""},
		{"nothing escalates", p, Metrics{Rows: 3, Quality: 1, Answered: []float64{1, 0, 0}}, SpecOptions{Signal: "validate"}, []float64{1, 0, 0}, ""},
		{"single model", Single("a"), Metrics{Rows: 3, Quality: 1, Answered: []float64{1}}, SpecOptions{Signal: "logprob"}, nil, "is a single model, not a cascade"},
		{"stages differ", p, Metrics{Rows: 3, Quality: 1, Answered: []float64{1}}, SpecOptions{Signal: "logprob"}, nil, "the held-out metrics have 1 stages but the policy 3 models"},
		{"zero quality", p, Metrics{Rows: 3, Quality: 0, Answered: []float64{1, 0, 0}}, SpecOptions{Signal: "logprob"}, nil, "quality: 0 is outside (0, 1]"},
		{"bad signal", p, Metrics{Rows: 3, Quality: 1, Answered: []float64{1, 0, 0}}, SpecOptions{Signal: "confidence"}, nil, `signal: "confidence" is not one of`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewSpec(c.p, c.held, c.o)
			if c.wantErr != "" {
				assert.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, s.Reach, len(c.wantReach))
			for k := range c.wantReach {
				assert.InDelta(t, c.wantReach[k], s.Reach[k], 1e-12, "reach %d", k)
			}
			assert.Equal(t, 1.0, s.Reach[0])
			assert.Equal(t, c.held.Quality, s.Quality)
			assert.Equal(t, c.held.Rows, s.Rows)
			assert.Equal(t, c.p.Thresholds, s.Thresholds)
			assert.Equal(t, c.o.Task, s.Task)
			assert.Equal(t, c.o.Source, s.Source)
			for k, m := range c.p.Models {
				want := m
				if id, ok := c.o.Rename[m]; ok {
					want = id
				}
				assert.Equal(t, want, s.Models[k])
			}
			assert.NoError(t, s.Check())
		})
	}
}

// The reach of a spec replayed from a table matches a direct count of the
// rows each stage saw.
func TestNewSpecReachMatchesReplay(t *testing.T) {
	tab := genTable(2000, 3, []genModel{noisyModel("a", 0.001, 0.6, 0.8, true), noisyModel("b", 0.004, 0.8, 0.4, true), perfectModel("c", 0.02)})
	p := Policy{Models: []string{"a", "b", "c"}, Thresholds: []float64{0.7, 0.4}}
	met, err := Evaluate(tab, p)
	require.NoError(t, err)
	s, err := NewSpec(p, met, SpecOptions{Signal: "logprob"})
	require.NoError(t, err)
	reachB, reachC := 0, 0
	for r := range tab.Len() {
		if tab.Conf[0][r] < 0.7 {
			reachB++
			if tab.Conf[1][r] < 0.4 {
				reachC++
			}
		}
	}
	n := float64(tab.Len())
	assert.InDelta(t, float64(reachB)/n, s.Reach[1], 1e-12)
	assert.InDelta(t, float64(reachC)/n, s.Reach[2], 1e-12)
	assert.InDelta(t, met.Quality, s.Quality, 0)
}

func FuzzParseSpecs(f *testing.F) {
	f.Add([]byte(goodSpec))
	f.Add([]byte("[[cascade]]\nmodels = [\"a\", \"b\"]\nthresholds = [0.5]\nsignal = \"validate\"\nquality = 1\nreach = [1, 0]\n"))
	f.Add([]byte("[[cascade]]\nmodels = [\"a\", \"b\"]\nthresholds = [inf]\nsignal = \"logprob\"\nquality = 0.5\nreach = [1, 0.5]\nsource = \"\\u0001\"\n"))
	f.Add([]byte("[cascade]\nmodels = 1\n"))
	f.Add([]byte("cascade = [{models = [\"a\"]}]\n"))
	if seeds, err := os.ReadFile(filepath.Join("testdata", "cascades.toml")); err == nil {
		f.Add(seeds)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseSpecs("f.toml", data)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not Errors: %v", err)
			}
			for _, e := range errs {
				if e.Line < 1 || e.Col < 1 {
					t.Fatalf("error without a position: %v", e)
				}
			}
			return
		}
		if len(cs) == 0 {
			t.Fatal("accepted a file with no cascade")
		}
		for k := range cs {
			if err := cs[k].Check(); err != nil {
				t.Fatalf("accepted cascade %d fails Check: %v", k+1, err)
			}
		}
		var b bytes.Buffer
		if err := WriteSpecs(&b, cs); err != nil {
			t.Fatalf("cannot write an accepted spec: %v", err)
		}
		back, err := ParseSpecs("w.toml", b.Bytes())
		if err != nil {
			t.Fatalf("written spec does not parse: %v\n%s", err, b.String())
		}
		if len(back) != len(cs) {
			t.Fatalf("round trip: %d cascades, want %d", len(back), len(cs))
		}
		for k := range cs {
			a, z := cs[k], back[k]
			if strings.ToValidUTF8(a.Task, "\uFFFD") != z.Task || strings.ToValidUTF8(a.Source, "\uFFFD") != z.Source ||
				a.Signal != z.Signal || a.Rows != z.Rows || !sameFloats([]float64{a.Quality}, []float64{z.Quality}) ||
				!sameFloats(a.Thresholds, z.Thresholds) || !sameFloats(a.Reach, z.Reach) || strings.Join(a.Models, "\x00") != strings.Join(z.Models, "\x00") {
				t.Fatalf("round trip changed cascade %d:\n%+v\n%+v", k+1, a, z)
			}
		}
	})
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}
