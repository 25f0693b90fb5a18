package cascade

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Prompt categories of genPromptTable and the model each needs.
const (
	catPlain     = iota // "cheap" suffices
	catTranslate        // "mid" suffices, "cheap" does not
	catIntegral         // only "strong" suffices
)

var catModel = []string{"cheap", "mid", "strong"}

// genPromptTable builds n rows with prompts of filler words; a prompt that
// holds "integral" (any case) needs the strong model, one that holds
// "translate" is fine on mid, every other one is fine on cheap. Each model
// is right with probability 0.97 on prompts it handles and 0.1 otherwise.
// It returns the table and each row's category.
func genPromptTable(n int, seed uint64) (*Table, []int) {
	rng := rand.New(rand.NewPCG(seed, 11))
	syll := []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "do", "gu"}
	vocab := make([]string, 300)
	for i := range vocab {
		var b strings.Builder
		for range 2 + rng.IntN(3) {
			b.WriteString(syll[rng.IntN(len(syll))])
		}
		vocab[i] = b.String()
	}
	costs := []float64{0.001, 0.004, 0.02}
	t := &Table{Models: catModel, Perf: make([][]float64, 3), Cost: make([][]float64, 3), Conf: make([][]float64, 3)}
	for m := range 3 {
		t.Perf[m], t.Cost[m] = make([]float64, n), make([]float64, n)
	}
	cats := make([]int, n)
	for r := range n {
		words := make([]string, 8+rng.IntN(40))
		for i := range words {
			words[i] = vocab[rng.IntN(len(vocab))]
		}
		cat := catPlain
		switch u := rng.Float64(); {
		case u < 0.2:
			cat = catIntegral
			words[rng.IntN(len(words))] = []string{"integral", "Integral", "INTEGRAL"}[rng.IntN(3)]
		case u < 0.4:
			cat = catTranslate
			words[rng.IntN(len(words))] = []string{"translate", "Translate"}[rng.IntN(2)]
		}
		if rng.IntN(4) == 0 {
			words = append(words, fmt.Sprint(rng.IntN(1000)))
		}
		p := strings.Join(words, " ")
		if rng.IntN(3) == 0 {
			p += "?"
		}
		cats[r] = cat
		t.Prompt = append(t.Prompt, p)
		t.Origin = append(t.Origin, Origin{File: "gen", Row: r + 1, Line: r + 2})
		for m := range 3 {
			right := 0.1
			if m >= cat {
				right = 0.97
			}
			if rng.Float64() < right {
				t.Perf[m][r] = 1
			}
			t.Cost[m][r] = costs[m] * (0.9 + 0.2*rng.Float64())
		}
	}
	return t, cats
}

// splitTables splits t into training and test tables (seeded).
func splitTables(t *testing.T, all *Table, seed uint64) (train, test *Table, trainRows, testRows []int) {
	t.Helper()
	tr, te, err := Split(all.Len(), 0.3, seed)
	require.NoError(t, err)
	return all.Subset(tr), all.Subset(te), tr, te
}

func saved(t testing.TB, c *Classifier) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, c.Save(&b))
	return b.Bytes()
}

func TestClassifierLearnsKeyword(t *testing.T) {
	all, cats := genPromptTable(6000, 3)
	train, test, _, testRows := splitTables(t, all, 1)
	c, err := TrainClassifier(train, ClassifierOptions{Seed: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"cheap", "mid", "strong"}, c.Models)
	assert.True(t, c.Fit.Feasible, c.Fit.Note)
	assert.Greater(t, c.Threshold, 0.0)
	assert.LessOrEqual(t, c.Threshold, 1.0)

	// Held-out routing accuracy against the category's needed model.
	right := 0
	for i, r := range testRows {
		m, probs := c.Route(test.Prompt[i])
		require.Len(t, probs, 3)
		assert.Equal(t, 1.0, probs[2])
		if m == catModel[cats[r]] {
			right++
		}
	}
	acc := float64(right) / float64(len(testRows))
	t.Logf("held-out routing accuracy %.4f, threshold %.2f", acc, c.Threshold)
	assert.Greater(t, acc, 0.9)

	met, err := c.Evaluate(test)
	require.NoError(t, err)
	strong, err := Evaluate(test, Single("strong"))
	require.NoError(t, err)
	t.Logf("classifier quality %.4f cost %.5f; strongest quality %.4f cost %.5f; answered %v", met.Quality, met.CostUSD, strong.Quality, strong.CostUSD, met.Answered)
	assert.Less(t, met.CostUSD, 0.4*strong.CostUSD)
	assert.GreaterOrEqual(t, met.Quality, strong.Quality-0.03)
	assert.InDelta(t, 1.0, met.Answered[0]+met.Answered[1]+met.Answered[2], 1e-9)

	// PerQuery agrees with Evaluate.
	q, cost, err := c.PerQuery(test)
	require.NoError(t, err)
	var sq, sc float64
	for r := range q {
		sq += q[r]
		sc += cost[r]
	}
	assert.InDelta(t, met.Quality, sq/float64(len(q)), 1e-12)
	assert.InDelta(t, met.CostUSD, sc/float64(len(q)), 1e-12)

	// Every cheaper single model falls short of this quality or costs more.
	for _, m := range []string{"cheap", "mid"} {
		s, _ := Evaluate(test, Single(m))
		assert.Less(t, s.Quality, met.Quality-0.05, m)
	}
}

func TestClassifierDeterministicBySeed(t *testing.T) {
	all, _ := genPromptTable(1500, 5)
	train, _, _, _ := splitTables(t, all, 2)
	a, err := TrainClassifier(train, ClassifierOptions{Seed: 7})
	require.NoError(t, err)
	b, err := TrainClassifier(train, ClassifierOptions{Seed: 7})
	require.NoError(t, err)
	assert.Equal(t, saved(t, a), saved(t, b))
	d, err := TrainClassifier(train, ClassifierOptions{Seed: 8})
	require.NoError(t, err)
	assert.NotEqual(t, saved(t, a), saved(t, d), "another seed must draw other held-back rows and another SGD order")
}

// The classifier trained on the training rows of a table does not change
// when the test rows are scrambled.
func TestClassifierNeverSeesTestRows(t *testing.T) {
	all, _ := genPromptTable(2000, 9)
	trainRows, testRows, err := Split(all.Len(), 0.3, 4)
	require.NoError(t, err)
	clean, err := TrainClassifier(all.Subset(trainRows), ClassifierOptions{Seed: 1})
	require.NoError(t, err)

	poisoned := all.Subset(seq(all.Len()))
	for _, r := range testRows {
		poisoned.Prompt[r] = "integral integral " + poisoned.Prompt[r]
		for m := range poisoned.Models {
			poisoned.Perf[m][r] = 1 - poisoned.Perf[m][r]
		}
	}
	dirty, err := TrainClassifier(poisoned.Subset(trainRows), ClassifierOptions{Seed: 1})
	require.NoError(t, err)
	assert.Equal(t, saved(t, clean), saved(t, dirty))
	assert.Equal(t, len(trainRows), clean.Fit.TrainRows)
	assert.Equal(t, int(math.Round(0.2*float64(len(trainRows)))), clean.Fit.HoldOutRows)
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestClassifierSaveLoadRoundTrip(t *testing.T) {
	all, _ := genPromptTable(1500, 5)
	c, err := TrainClassifier(all, ClassifierOptions{Seed: 3, HashBits: 14})
	require.NoError(t, err)
	data := saved(t, c)
	back, err := ParseClassifier("c.json", data)
	require.NoError(t, err)
	assert.Equal(t, c.Models, back.Models)
	assert.Equal(t, c.Threshold, back.Threshold)
	assert.Equal(t, c.Fit, back.Fit)
	for _, p := range []string{"", "please compute the integral of x", "translate this", all.Prompt[0], strings.Repeat("long ", 2000)} {
		m1, p1 := c.Route(p)
		m2, p2 := back.Route(p)
		assert.Equal(t, m1, m2, p)
		assert.Equal(t, p1, p2, p)
	}
	assert.Equal(t, data, saved(t, back))

	path := t.TempDir() + "/c.json"
	require.NoError(t, c.SaveFile(path))
	fromFile, err := LoadClassifierFile(path)
	require.NoError(t, err)
	assert.Equal(t, data, saved(t, fromFile))
}

func TestClassifierFeatures(t *testing.T) {
	c, err := TrainClassifier(mustGen(t, 1200, 2), ClassifierOptions{Seed: 1, HashBits: 12})
	require.NoError(t, err)
	probs := func(p string) []float64 { _, pr := c.Route(p); return pr }
	// ASCII case and whitespace runs do not matter.
	assert.Equal(t, probs("Please  compute the INTEGRAL now"), probs("please compute\n\tthe integral now"))
	// The keyword moves the prediction of the cheap model down.
	assert.Less(t, probs("sa ka lo integral mi ne")[0], probs("sa ka lo mi ne ru")[0])
	// Bytes past MaxFeatureBytes feed only the length feature.
	long := strings.Repeat("ka ", MaxFeatureBytes/3+10)
	assert.Equal(t, probs(long+"integral"), probs(long+"lolomine"))

	var x features
	x.start = []int32{0}
	f := &featurizer{bits: 12}
	f.extract("ab ab", &x)
	var norm float64
	for i, idx := range x.idx {
		if idx < 1<<12 {
			norm += float64(x.val[i] * x.val[i])
		} else {
			assert.Less(t, idx, uint32(1<<12+numDense))
		}
	}
	assert.InDelta(t, 1, norm, 1e-6, "hashed part has unit norm")
	assert.Equal(t, []float32{1, float32(math.Log1p(5) / 8), 0, 0, 0}, denseFeatures("ab ab"))
	assert.Equal(t, []float32{1, float32(math.Log1p(10) / 8), 1, 1, 1}, denseFeatures("```1?\nx```"))
}

func mustGen(t *testing.T, n int, seed uint64) *Table {
	t.Helper()
	tab, _ := genPromptTable(n, seed)
	return tab
}

func TestClassifierOnlyStrongestModel(t *testing.T) {
	// The strongest model is also the cheapest: nothing to route.
	tab := mustGen(t, 200, 1)
	tab.Cost[2] = tab.Cost[0]
	tab.Cost[0] = append([]float64(nil), tab.Cost[1]...)
	c, err := TrainClassifier(tab, ClassifierOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"strong"}, c.Models)
	assert.Contains(t, c.Fit.Note, "no model is cheaper")
	m, probs := c.Route("integral")
	assert.Equal(t, "strong", m)
	assert.Equal(t, []float64{1}, probs)
	back, err := ParseClassifier("c.json", saved(t, c))
	require.NoError(t, err)
	met, err := back.Evaluate(tab)
	require.NoError(t, err)
	assert.Equal(t, []float64{1}, met.Answered)
}

func TestClassifierErrors(t *testing.T) {
	tab := mustGen(t, 300, 1)
	noPrompt := tab.Subset(seq(tab.Len()))
	noPrompt.Prompt = nil
	other := tab.Subset(seq(tab.Len()))
	other.Models = []string{"cheap", "mid", "strong-v2"}
	for _, tc := range []struct {
		name string
		tab  *Table
		opt  ClassifierOptions
		want string
	}{
		{"no prompt column", noPrompt, ClassifierOptions{}, `gen:1: header, column "prompt": the outcome table has no prompt column`},
		{"too few rows", tab.Subset([]int{0, 1, 2, 3, 4, 5, 6, 7}), ClassifierOptions{}, "too few"},
		{"empty", &Table{}, ClassifierOptions{}, "no rows"},
		{"target", tab, ClassifierOptions{TargetQuality: 1.5}, "target quality must be in (0, 1]"},
		{"label", tab, ClassifierOptions{LabelThreshold: -1}, "label threshold"},
		{"epochs", tab, ClassifierOptions{Epochs: -2}, "epochs"},
		{"hash bits", tab, ClassifierOptions{HashBits: 30}, "hash bits"},
		{"hold out", tab, ClassifierOptions{HoldOut: 0.9}, "held-back share"},
		{"learning rate", tab, ClassifierOptions{LearningRate: -1}, "learning rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TrainClassifier(tc.tab, tc.opt)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	c, err := TrainClassifier(tab, ClassifierOptions{HashBits: 10})
	require.NoError(t, err)
	t.Run("evaluate without prompts", func(t *testing.T) {
		_, err := c.Evaluate(noPrompt)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no prompt column")
	})
	t.Run("evaluate on other models", func(t *testing.T) {
		_, err := c.Evaluate(other)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `model "strong", which is not in the outcome table; did you mean "strong-v2"?`)
	})
}

func TestClassifierLabelThreshold(t *testing.T) {
	tab := mustGen(t, 1000, 4)
	rel, err := TrainClassifier(tab, ClassifierOptions{Seed: 1, HashBits: 12})
	require.NoError(t, err)
	abs, err := TrainClassifier(tab, ClassifierOptions{Seed: 1, HashBits: 12, LabelThreshold: 1})
	require.NoError(t, err)
	// With an absolute label, rows where every model fails no longer count
	// as "cheap suffices": the share can only drop.
	assert.Less(t, abs.Fit.SufficientShare[0], rel.Fit.SufficientShare[0])
	assert.Equal(t, 1.0, abs.Fit.LabelThreshold)
}

func TestClassifierInfeasibleTarget(t *testing.T) {
	tab := mustGen(t, 600, 6)
	for m := range tab.Models {
		for r := range tab.Len() {
			tab.Perf[m][r] = math.Min(tab.Perf[m][r], 0.5)
		}
	}
	c, err := TrainClassifier(tab, ClassifierOptions{TargetQuality: 0.9, HashBits: 12})
	require.NoError(t, err)
	assert.False(t, c.Fit.Feasible)
	assert.Contains(t, c.Fit.Note, "no threshold reaches quality 0.9")
}

func TestParseClassifierErrors(t *testing.T) {
	c, err := TrainClassifier(mustGen(t, 300, 1), ClassifierOptions{HashBits: 10})
	require.NoError(t, err)
	good := string(saved(t, c))
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "empty or cut short"},
		{"syntax", "{\n  \"format\": ,\n}", "c.json:2:"},
		{"type", strings.Replace(good, `"hash_bits":10`, `"hash_bits":"ten"`, 1), "field hash_bits: want int"},
		{"unknown field", strings.Replace(good, `"threshold"`, `"thresh":1,"threshold"`, 1), `unknown field "thresh"`},
		{"format", strings.Replace(good, ClassifierFormat, "other/v9", 1), "field format"},
		{"hash bits", strings.Replace(good, `"hash_bits":10`, `"hash_bits":40`, 1), "field hash_bits: 40 is outside 10..24"},
		{"models", strings.Replace(good, `"models":["cheap","mid","strong"]`, `"models":["cheap","cheap","strong"]`, 1), "field models[1]"},
		{"weights model", strings.Replace(good, `"model":"mid"`, `"model":"x"`, 1), `field weights[1].model: "x", want "mid"`},
		{"trailing", good + "{}", "extra data"},
		{"dense", strings.Replace(good, `"dense_features":["bias",`, `"dense_features":[`, 1), "field dense_features"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseClassifier("c.json", []byte(tc.data))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err = LoadClassifierFile(t.TempDir() + "/missing.json")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.json: cannot read")
}

func FuzzParseClassifier(f *testing.F) {
	c, err := TrainClassifier(mustGenF(300), ClassifierOptions{HashBits: 10})
	if err != nil {
		f.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.Save(&b); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte(`{"format":"costwise.prompt-classifier/v1","models":["a"],"threshold":2,"hash_bits":10,"max_feature_bytes":4096,"dense_features":["bias","log_len","has_digit","has_code_fence","has_question_mark"],"weights":[]}`))
	f.Add([]byte(`{"weights":[{"index":[5,3]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseClassifier("f.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.json") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		m, probs := c.Route("is this a prompt? 42")
		if len(probs) != len(c.Models) || m == "" {
			t.Fatalf("route: %q %v", m, probs)
		}
	})
}

func mustGenF(n int) *Table {
	tab, _ := genPromptTable(n, 1)
	return tab
}

// widen adds extra models between mid and strong in cost; each copies
// mid's scores on a random half of the rows and strong's on the rest.
func widen(t *Table, extra int) *Table {
	w := t.Subset(seq(t.Len()))
	rng := rand.New(rand.NewPCG(uint64(extra), 5))
	for e := range extra {
		w.Models = append(w.Models, fmt.Sprintf("x%d", e))
		perf, cost := make([]float64, t.Len()), make([]float64, t.Len())
		for r := range perf {
			perf[r] = t.Perf[1+rng.IntN(2)][r]
			cost[r] = 0.005 + 0.001*float64(e)
		}
		w.Perf, w.Cost, w.Conf = append(w.Perf, perf), append(w.Cost, cost), append(w.Conf, nil)
	}
	return w
}

func BenchmarkTrainClassifier(b *testing.B) {
	for _, bc := range []struct{ rows, models int }{{1000, 3}, {10000, 3}, {10000, 11}} {
		base, _ := genPromptTable(bc.rows, 1)
		tab := widen(base, bc.models-3)
		b.Run(fmt.Sprintf("rows=%d/models=%d", bc.rows, bc.models), func(b *testing.B) {
			c, err := TrainClassifier(tab, ClassifierOptions{Seed: 1})
			if err != nil || !c.Fit.Feasible {
				b.Fatalf("train: %v feasible=%v", err, c.Fit.Feasible)
			}
			b.ResetTimer()
			for b.Loop() {
				_, _ = TrainClassifier(tab, ClassifierOptions{Seed: 1})
			}
		})
	}
}

func BenchmarkClassifierRoute(b *testing.B) {
	tab, _ := genPromptTable(2000, 1)
	c, err := TrainClassifier(tab, ClassifierOptions{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{200, 4000} {
		p := strings.Repeat("kalo mine integral? ", size/20)
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			if m, _ := c.Route(p); m != "strong" {
				b.Fatalf("route %q", m)
			}
			for b.Loop() {
				_, _ = c.Route(p)
			}
		})
	}
}

// Training a prompt router on outcomes where proofs need the strong model.
func ExampleTrainClassifier() {
	tab := &Table{Models: []string{"small", "large"}, Perf: make([][]float64, 2), Cost: make([][]float64, 2), Conf: make([][]float64, 2)}
	topics := []string{"the sum of two numbers", "a list of rivers", "the capital of a country", "a short poem", "the colour of the sky"}
	for r := range 400 {
		p, small := "tell me "+topics[r%len(topics)], 1.0
		if r%4 == 0 {
			p, small = "write a proof about "+topics[r%len(topics)], 0
		}
		tab.Prompt = append(tab.Prompt, p)
		tab.Perf[0], tab.Cost[0] = append(tab.Perf[0], small), append(tab.Cost[0], 0.001)
		tab.Perf[1], tab.Cost[1] = append(tab.Perf[1], 1), append(tab.Cost[1], 0.02)
	}
	c, err := TrainClassifier(tab, ClassifierOptions{Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range []string{"tell me a list of rivers", "write a proof about a short poem"} {
		m, probs := c.Route(p)
		fmt.Printf("%-34q -> %s (P(small suffices) %.2f)\n", p, m, probs[0])
	}
	met, _ := c.Evaluate(tab)
	fmt.Printf("quality %.2f at $%.5f per query (large alone: $0.02000)\n", met.Quality, met.CostUSD)
	// Output:
	// "tell me a list of rivers"         -> small (P(small suffices) 1.00)
	// "write a proof about a short poem" -> large (P(small suffices) 0.00)
	// quality 1.00 at $0.00575 per query (large alone: $0.02000)
}
