package cascade

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/costwise/costwise/internal/suggest"
)

// Prompt classifier: a per-request router that reads only the prompt.
//
// Features of a prompt (FeatureNames lists the dense ones):
//   - hashed word unigrams and bigrams and byte 3-grams of the prompt
//     lowercased (ASCII) with whitespace runs folded to one space, over its
//     first MaxFeatureBytes bytes; FNV-1a hashes into 2^HashBits buckets,
//     the sign of each count taken from a hash bit; the hashed vector is
//     scaled to unit L2 norm;
//   - dense: a bias, log(1+bytes)/8, and 0/1 indicators for a digit, a
//     ``` code fence and a question mark anywhere in the prompt.
//
// Model: the models cheaper than the strongest one (on training means),
// sorted by training cost, each get a binary logistic regression predicting
// "this model suffices for this prompt"; they share the features and are
// trained together by Adagrad SGD with L2, seeded, for a few epochs.
// Routing picks the cheapest model whose predicted probability is >= the
// threshold; when none is, the strongest model answers.

// Defaults of ClassifierOptions.
const (
	DefaultHashBits     = 18   // 2^18 hashed buckets
	DefaultEpochs       = 5    // passes over the training rows
	DefaultLearningRate = 0.3  // Adagrad base step
	DefaultL2           = 1e-6 // L2 penalty per update
	DefaultHoldOut      = 0.2  // share of the training rows held back to tune the threshold
	DefaultLabelSlack   = 0.01 // a model suffices when its score >= the strongest's - this
	MaxFeatureBytes     = 4096 // bytes of a prompt that feed the n-gram features
	// NeverThreshold is the threshold above every probability: all queries
	// go to the strongest model.
	NeverThreshold = 2.0
	// ClassifierFormat names the JSON layout written by Save.
	ClassifierFormat = "costwise.prompt-classifier/v1"
	// maxWeights bounds the weights held in memory (buckets x models).
	maxWeights = 1 << 27
)

// FeatureNames are the dense features, in the order of the "dense" weights
// of the JSON layout.
var FeatureNames = []string{"bias", "log_len", "has_digit", "has_code_fence", "has_question_mark"}

var numDense = len(FeatureNames)

// ClassifierOptions tune TrainClassifier. Zero values mean the defaults.
// DefaultClassifierSlack is how far below the strongest model's quality on
// the held-back rows the classifier's default target lies. A classifier
// that must match the strongest exactly sends nearly every prompt to it;
// one point of slack leaves room to route.
const DefaultClassifierSlack = 0.01

type ClassifierOptions struct {
	// TargetQuality is the least mean quality the routing must reach on the
	// held-back rows when the threshold is tuned, in (0, 1]. Zero means the
	// strongest model's quality on those rows minus DefaultClassifierSlack.
	TargetQuality float64
	// LabelThreshold, when > 0, labels a model as sufficient on a row when
	// its score is >= LabelThreshold. Zero labels it sufficient when its
	// score is >= the strongest model's score on that row minus
	// DefaultLabelSlack.
	LabelThreshold float64
	Epochs         int     // SGD passes; 0 means DefaultEpochs
	LearningRate   float64 // Adagrad step; 0 means DefaultLearningRate
	L2             float64 // L2 penalty; 0 means DefaultL2, < 0 means none
	HashBits       int     // log2 of the hashed buckets, 10..24; 0 means DefaultHashBits
	HoldOut        float64 // share of the training rows that tune the threshold, in (0, 0.5]; 0 means DefaultHoldOut
	Seed           uint64  // seeds the hold-out draw and the SGD order
	// Refit trains the weights again on every training row once the
	// threshold is chosen (about twice the training time). By default the
	// classifier keeps the weights the threshold was tuned with, trained
	// without the held-back rows, so that the two match.
	Refit bool
}

// ClassifierFit records how a classifier was trained. Every number comes
// from the training table: the tuning rows are a held-back part of it.
type ClassifierFit struct {
	TrainRows       int       `json:"train_rows"`          // rows of the training table
	HoldOutRows     int       `json:"holdout_rows"`        // of them, rows held back to tune the threshold
	Strongest       string    `json:"strongest"`           // highest training quality (ties: cheaper)
	Target          float64   `json:"target"`              // quality target on the held-back rows
	TargetDefault   bool      `json:"target_default"`      // Target is the strongest's held-back quality - DefaultClassifierSlack
	HoldOutQuality  float64   `json:"holdout_quality"`     // the tuned routing on the held-back rows
	HoldOutCostUSD  float64   `json:"holdout_cost_usd"`    // idem, mean cost per query
	Feasible        bool      `json:"feasible"`            // HoldOutQuality >= Target
	SufficientShare []float64 `json:"sufficient_share"`    // per model (Models order): share of training rows labelled sufficient
	Epochs          int       `json:"epochs"`              // SGD passes used
	Seed            uint64    `json:"seed"`                // ClassifierOptions.Seed
	Refit           bool      `json:"refit_on_all_train"`  // weights trained again on all training rows
	Note            string    `json:"note,omitempty"`      // a limitation worth telling the user
	LabelThreshold  float64   `json:"label_threshold"`     // ClassifierOptions.LabelThreshold (0: relative)
	LearningRate    float64   `json:"learning_rate"`       // Adagrad step used
	L2              float64   `json:"l2"`                  // L2 penalty used
	ThresholdGrid   int       `json:"thresholds_searched"` // candidate thresholds tried
}

// Classifier routes a prompt to the cheapest model predicted to suffice.
// It is safe for concurrent use once trained or loaded.
type Classifier struct {
	// Models are cheap -> strong on training cost; the last is the
	// strongest model, which answers when no cheaper one is predicted to
	// suffice.
	Models []string
	// Threshold is the least predicted probability at which a cheaper
	// model is trusted; NeverThreshold (or anything > 1) trusts none.
	Threshold float64
	Fit       ClassifierFit

	hashBits int
	k        int       // models with weights: len(Models)-1
	w        []float32 // weights [feature][model]; features: buckets, then dense
}

// features is a sparse feature vector per row in compressed rows.
type features struct {
	start []int32 // row r holds idx/val[start[r]:start[r+1]]
	idx   []uint32
	val   []float32
}

// featurizer turns prompts into sparse vectors; it reuses its buffers and
// is not safe for concurrent use.
type featurizer struct {
	bits uint
	keys []uint64 // bucket<<1 | negative sign, one per hashed n-gram
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func isWordByte(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '_' || b >= 0x80
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v'
}

// fnvMix folds the 8 bytes of v into the FNV-1a hash h.
func fnvMix(h, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= fnvPrime
		v >>= 8
	}
	return h
}

// add records one hashed n-gram. The final avalanche step spreads the FNV
// hash over the low bits that pick the bucket; bit 63 gives the sign.
func (f *featurizer) add(h uint64) {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	key := (h&(1<<f.bits-1))<<1 | h>>63
	f.keys = append(f.keys, key)
}

// extract appends the features of prompt to dst.
func (f *featurizer) extract(prompt string, dst *features) {
	f.keys = f.keys[:0]
	n := min(len(prompt), MaxFeatureBytes)
	// Byte 3-grams over the folded text, padded with a space at each end,
	// and words (unigrams, bigrams) in the same pass.
	w0, w1 := byte(0), byte(' ')
	have := 1
	prevSpace := true
	var word, prevWord uint64 = fnvOffset, 0
	wordLen, hasPrev := 0, false
	push := func(b byte) {
		if have >= 2 {
			h := uint64(fnvOffset)
			for _, c := range [4]byte{'c', w0, w1, b} {
				h ^= uint64(c)
				h *= fnvPrime
			}
			f.add(h)
		}
		w0, w1 = w1, b
		have++
	}
	endWord := func() {
		if wordLen == 0 {
			return
		}
		f.add(fnvMix(word, 'u'))
		if hasPrev {
			f.add(fnvMix(fnvMix(fnvOffset^'b', prevWord), word))
		}
		prevWord, hasPrev = word, true
		word, wordLen = fnvOffset, 0
	}
	for i := range n {
		b := lowerASCII(prompt[i])
		if isWordByte(b) {
			word ^= uint64(b)
			word *= fnvPrime
			wordLen++
		} else {
			endWord()
		}
		if isSpace(b) {
			if prevSpace {
				continue
			}
			b = ' '
			prevSpace = true
		} else {
			prevSpace = false
		}
		push(b)
	}
	endWord()
	if !prevSpace {
		push(' ')
	}
	// Merge repeated buckets (sorted keys put a bucket's two signs together).
	slices.Sort(f.keys)
	startLen := len(dst.idx)
	var norm float64
	for i := 0; i < len(f.keys); {
		bucket := f.keys[i] >> 1
		var v float32
		for ; i < len(f.keys) && f.keys[i]>>1 == bucket; i++ {
			if f.keys[i]&1 == 1 {
				v--
			} else {
				v++
			}
		}
		if v != 0 {
			dst.idx = append(dst.idx, uint32(bucket))
			dst.val = append(dst.val, v)
			norm += float64(v) * float64(v)
		}
	}
	if norm > 0 {
		s := float32(1 / math.Sqrt(norm))
		for i := startLen; i < len(dst.val); i++ {
			dst.val[i] *= s
		}
	}
	base := uint32(1) << f.bits
	dense := denseFeatures(prompt)
	for d, v := range dense {
		if v != 0 {
			dst.idx = append(dst.idx, base+uint32(d))
			dst.val = append(dst.val, v)
		}
	}
	dst.start = append(dst.start, int32(len(dst.idx)))
}

// denseFeatures returns the values of FeatureNames for prompt.
func denseFeatures(prompt string) []float32 {
	ind := func(ok bool) float32 {
		if ok {
			return 1
		}
		return 0
	}
	return []float32{
		1,
		float32(math.Log1p(float64(len(prompt))) / 8),
		ind(strings.ContainsAny(prompt, "0123456789")),
		ind(strings.Contains(prompt, "```")),
		ind(strings.Contains(prompt, "?")),
	}
}

// featurize extracts the features of every prompt.
func featurize(prompts []string, bits uint) *features {
	size := 0
	for _, p := range prompts {
		size += min(len(p), MaxFeatureBytes) + min(len(p), MaxFeatureBytes)/3 + numDense + 2
	}
	x := &features{start: make([]int32, 1, len(prompts)+1), idx: make([]uint32, 0, size), val: make([]float32, 0, size)}
	f := &featurizer{bits: bits}
	for _, p := range prompts {
		f.extract(p, x)
	}
	return x
}

func sigmoid(z float64) float64 {
	z = min(max(z, -35), 35)
	return 1 / (1 + math.Exp(-z))
}

// scores writes the k logits of row r into z.
func scores(w []float32, k int, idx []uint32, val []float32, z []float64) {
	for j := range z {
		z[j] = 0
	}
	val = val[:len(idx)]
	for p, i := range idx {
		ws := w[int(i)*k : int(i)*k+k]
		ws = ws[:len(z)]
		v := val[p]
		for j := range z {
			z[j] += float64(v * ws[j])
		}
	}
}

// sgdParams are resolved training options.
type sgdParams struct {
	epochs int
	lr, l2 float32
	seed   uint64
}

// trainLR fits k logistic regressions on rows of x with labels y[r*k+j]
// by Adagrad SGD; L2 is applied to the weights a row touches (lazily).
func trainLR(x *features, y []float32, rows []int, k, dim int, p sgdParams) []float32 {
	w := make([]float32, dim*k)
	g2 := make([]float32, dim*k)
	z := make([]float64, k)
	grad := make([]float32, k)
	order := append([]int(nil), rows...)
	rng := rand.New(rand.NewPCG(p.seed, 0xc1a5_51f1e7))
	for range p.epochs {
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, r := range order {
			lo, hi := x.start[r], x.start[r+1]
			idx, val := x.idx[lo:hi], x.val[lo:hi]
			scores(w, k, idx, val, z)
			for j := range k {
				grad[j] = float32(sigmoid(z[j])) - y[r*k+j]
			}
			val = val[:len(idx)]
			for q, i := range idx {
				v := val[q]
				ws := w[int(i)*k : int(i)*k+k]
				gs := g2[int(i)*k : int(i)*k+k]
				gs, gd := gs[:len(ws)], grad[:len(ws)]
				for j := range ws {
					gr := gd[j]*v + p.l2*ws[j]
					gs[j] += gr * gr
					ws[j] -= p.lr * gr / float32(math.Sqrt(float64(gs[j])+1e-8))
				}
			}
		}
	}
	return w
}

// TrainClassifier trains a prompt classifier on train, which must have a
// prompt column. It reads nothing but train: the threshold is tuned on a
// seeded held-back share of its rows (opts.HoldOut) to reach the target
// quality at the least cost there. The same table and options always give
// the same classifier.
func TrainClassifier(train *Table, opts ClassifierOptions) (*Classifier, error) {
	n := train.Len()
	if n == 0 || len(train.Models) == 0 {
		return nil, errors.New("the training table has no rows")
	}
	if train.Prompt == nil {
		return nil, &Error{File: fileOf(train), Line: 1, Row: 0, Column: "prompt",
			Msg: "the outcome table has no prompt column; the classifier learns from the prompt text: add a column named prompt holding each query's prompt"}
	}
	if err := resolveClassifierOptions(&opts); err != nil {
		return nil, err
	}
	hold := int(math.Round(opts.HoldOut * float64(n)))
	if hold < 5 || n-hold < 5 {
		return nil, fmt.Errorf("%d training rows are too few to train a classifier and tune its threshold on %d held-back rows; give at least %d rows (a useful classifier needs thousands)", n, hold, int(math.Ceil(5/opts.HoldOut)))
	}
	M := len(train.Models)
	stats := make([]modelStats, M)
	for m := range M {
		for r := range n {
			stats[m].q += train.Perf[m][r]
			stats[m].c += train.Cost[m][r]
		}
		stats[m].q /= float64(n)
		stats[m].c /= float64(n)
	}
	strongest := 0
	for m := 1; m < M; m++ {
		if stats[m].q > stats[strongest].q || stats[m].q == stats[strongest].q && stats[m].c < stats[strongest].c {
			strongest = m
		}
	}
	// Candidates: models cheaper than the strongest, cheap -> strong.
	var order []int
	for m := range M {
		if m != strongest && stats[m].c < stats[strongest].c {
			order = append(order, m)
		}
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := stats[order[a]], stats[order[b]]
		if x.c != y.c {
			return x.c < y.c
		}
		return x.q > y.q
	})
	order = append(order, strongest)
	k := len(order) - 1
	if (1<<opts.HashBits+numDense)*k > maxWeights {
		return nil, fmt.Errorf("%d models x 2^%d hashed buckets is too many weights; lower the hash bits", k, opts.HashBits)
	}
	c := &Classifier{hashBits: opts.HashBits, k: k, Threshold: NeverThreshold}
	for _, m := range order {
		c.Models = append(c.Models, train.Models[m])
	}
	fit := &c.Fit
	*fit = ClassifierFit{TrainRows: n, HoldOutRows: hold, Strongest: train.Models[strongest], Epochs: opts.Epochs,
		Seed: opts.Seed, Refit: opts.Refit, LabelThreshold: opts.LabelThreshold, LearningRate: opts.LearningRate, L2: math.Max(opts.L2, 0)}

	// Labels: does model order[j] suffice on row r?
	y := make([]float32, n*k)
	fit.SufficientShare = make([]float64, len(order))
	for r := range n {
		for j, m := range order[:k] {
			ok := train.Perf[m][r] >= train.Perf[strongest][r]-DefaultLabelSlack
			if opts.LabelThreshold > 0 {
				ok = train.Perf[m][r] >= opts.LabelThreshold
			}
			if ok {
				y[r*k+j] = 1
				fit.SufficientShare[j]++
			}
		}
	}
	fit.SufficientShare[k] = 1
	for j := range k {
		fit.SufficientShare[j] /= float64(n)
	}

	perm := rand.New(rand.NewPCG(opts.Seed, 0x401d_0b7c)).Perm(n)
	holdRows := append([]int(nil), perm[:hold]...)
	fitRows := append([]int(nil), perm[hold:]...)
	sort.Ints(holdRows)
	sort.Ints(fitRows)

	// Target on the held-back rows.
	var strongQ float64
	for _, r := range holdRows {
		strongQ += train.Perf[strongest][r]
	}
	strongQ /= float64(hold)
	fit.Target = opts.TargetQuality
	if fit.Target == 0 {
		fit.Target, fit.TargetDefault = math.Max(0, strongQ-DefaultClassifierSlack), true
	}
	if k == 0 {
		fit.Note = fmt.Sprintf("no model is cheaper than the strongest (%s) on the training rows: every prompt goes to it", fit.Strongest)
		fit.HoldOutQuality, fit.Feasible = strongQ, strongQ >= fit.Target-feasTol
		for _, r := range holdRows {
			fit.HoldOutCostUSD += train.Cost[strongest][r]
		}
		fit.HoldOutCostUSD /= float64(hold)
		return c, nil
	}

	x := featurize(train.Prompt, uint(opts.HashBits))
	dim := 1<<opts.HashBits + numDense
	sp := sgdParams{epochs: opts.Epochs, lr: float32(opts.LearningRate), l2: float32(math.Max(opts.L2, 0)), seed: opts.Seed}
	c.w = trainLR(x, y, fitRows, k, dim, sp)

	// Tune the threshold on the held-back rows.
	probs := make([][]float64, hold) // [row][candidate]
	z := make([]float64, k)
	for i, r := range holdRows {
		lo, hi := x.start[r], x.start[r+1]
		scores(c.w, k, x.idx[lo:hi], x.val[lo:hi], z)
		probs[i] = make([]float64, k)
		for j := range k {
			probs[i][j] = sigmoid(z[j])
		}
	}
	grid := make([]float64, 0, 102)
	for t := 0; t <= 100; t++ {
		grid = append(grid, float64(t)/100)
	}
	grid = append(grid, NeverThreshold)
	fit.ThresholdGrid = len(grid)
	found := false
	var bestQ, bestC, topQ, topC, topT float64
	topT = NeverThreshold
	for gi, t := range grid {
		var qs, cs float64
		for i, r := range holdRows {
			m := strongest
			for j := range k {
				if probs[i][j] >= t {
					m = order[j]
					break
				}
			}
			qs += train.Perf[m][r]
			cs += train.Cost[m][r]
		}
		q, cc := qs/float64(hold), cs/float64(hold)
		if q >= fit.Target-feasTol && (!found || cc < bestC*(1-1e-12) || cc <= bestC*(1+1e-12) && q > bestQ) {
			found, bestQ, bestC, c.Threshold = true, q, cc, t
		}
		if gi == 0 || q > topQ || q == topQ && cc < topC {
			topQ, topC, topT = q, cc, t
		}
	}
	fit.Feasible = found
	if found {
		fit.HoldOutQuality, fit.HoldOutCostUSD = bestQ, bestC
	} else {
		c.Threshold, fit.HoldOutQuality, fit.HoldOutCostUSD = topT, topQ, topC
		fit.Note = fmt.Sprintf("no threshold reaches quality %.4g on the %d held-back training rows; the best reaches %.4g: lower the target", fit.Target, hold, topQ)
	}
	if opts.Refit {
		all := make([]int, n)
		for r := range all {
			all[r] = r
		}
		c.w = trainLR(x, y, all, k, dim, sp)
	}
	return c, nil
}

func resolveClassifierOptions(o *ClassifierOptions) error {
	if o.TargetQuality != 0 && !(o.TargetQuality > 0 && o.TargetQuality <= 1) {
		return fmt.Errorf("the classifier's target quality must be in (0, 1], got %v", o.TargetQuality)
	}
	if o.LabelThreshold < 0 || o.LabelThreshold > 1 || math.IsNaN(o.LabelThreshold) {
		return fmt.Errorf("the label threshold must be in [0, 1] (0: relative to the strongest model), got %v", o.LabelThreshold)
	}
	if o.Epochs == 0 {
		o.Epochs = DefaultEpochs
	}
	if o.LearningRate == 0 {
		o.LearningRate = DefaultLearningRate
	}
	if o.L2 == 0 {
		o.L2 = DefaultL2
	}
	if o.HashBits == 0 {
		o.HashBits = DefaultHashBits
	}
	if o.HoldOut == 0 {
		o.HoldOut = DefaultHoldOut
	}
	switch {
	case o.Epochs < 1 || o.Epochs > 1000:
		return fmt.Errorf("epochs must be in 1..1000, got %d", o.Epochs)
	case !(o.LearningRate > 0) || math.IsInf(o.LearningRate, 0):
		return fmt.Errorf("the learning rate must be a positive number, got %v", o.LearningRate)
	case math.IsNaN(o.L2) || math.IsInf(o.L2, 0):
		return fmt.Errorf("the L2 penalty must be a finite number, got %v", o.L2)
	case o.HashBits < 10 || o.HashBits > 24:
		return fmt.Errorf("hash bits must be in 10..24, got %d", o.HashBits)
	case !(o.HoldOut > 0 && o.HoldOut <= 0.5):
		return fmt.Errorf("the held-back share must be in (0, 0.5], got %v", o.HoldOut)
	}
	return nil
}

// Route returns the model for prompt and the predicted probability that
// each of c.Models suffices (the last, the fallback, is always 1).
func (c *Classifier) Route(prompt string) (model string, probs []float64) {
	probs = make([]float64, len(c.Models))
	probs[len(probs)-1] = 1
	if c.k > 0 {
		f := featurizer{bits: uint(c.hashBits), keys: make([]uint64, 0, 2*min(len(prompt), MaxFeatureBytes)+8)}
		var x features
		f.extract(prompt, &x)
		scores(c.w, c.k, x.idx, x.val, probs[:c.k])
		for j := range c.k {
			probs[j] = sigmoid(probs[j])
		}
	}
	return c.Models[c.choose(probs)], probs
}

// choose returns the index of the cheapest model trusted at c.Threshold.
func (c *Classifier) choose(probs []float64) int {
	for j := range c.k {
		if probs[j] >= c.Threshold {
			return j
		}
	}
	return c.k
}

// Routes returns, for every row of t, the index in t.Models of the model
// the classifier routes its prompt to.
func (c *Classifier) Routes(t *Table) ([]int, error) {
	if t.Prompt == nil {
		return nil, &Error{File: fileOf(t), Line: 1, Row: 0, Column: "prompt",
			Msg: "the outcome table has no prompt column; a prompt classifier routes by the prompt text: add a column named prompt"}
	}
	cols := make([]int, len(c.Models))
	for j, name := range c.Models {
		m, ok := t.Model(name)
		if !ok {
			msg := fmt.Sprintf("the classifier routes to model %q, which is not in the outcome table", name)
			if s := suggest.Closest(name, t.Models); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return nil, errors.New(msg + "; evaluate it on outcomes of the models it was trained on")
		}
		cols[j] = m
	}
	out := make([]int, t.Len())
	f := &featurizer{bits: uint(c.hashBits)}
	var x features
	probs := make([]float64, len(c.Models))
	z := probs[:c.k]
	for r, p := range t.Prompt {
		x.start, x.idx, x.val = x.start[:0], x.idx[:0], x.val[:0]
		f.extract(p, &x)
		if c.k > 0 {
			scores(c.w, c.k, x.idx, x.val, z)
			for j := range z {
				z[j] = sigmoid(z[j])
			}
		}
		out[r] = cols[c.choose(probs)]
	}
	return out, nil
}

// Evaluate replays the classifier on every row of t: each query is sent to
// the model Route picks and pays that model's cost only. Metrics.Answered
// is the share of queries routed to each of c.Models.
func (c *Classifier) Evaluate(t *Table) (Metrics, error) {
	routes, err := c.Routes(t)
	if err != nil {
		return Metrics{}, err
	}
	n := t.Len()
	met := Metrics{Rows: n, Answered: make([]float64, len(c.Models))}
	slot := map[int]int{}
	hasLat := t.LatencyMS != nil
	for j, name := range c.Models {
		m, _ := t.Model(name)
		slot[m] = j
		hasLat = hasLat && t.LatencyMS[m] != nil
	}
	var q, cost, lat float64
	for r, m := range routes {
		q += t.Perf[m][r]
		cost += t.Cost[m][r]
		if hasLat {
			lat += t.LatencyMS[m][r]
		}
		met.Answered[slot[m]]++
	}
	if n > 0 {
		met.Quality, met.CostUSD, met.LatencyMS = q/float64(n), cost/float64(n), lat/float64(n)
		for j := range met.Answered {
			met.Answered[j] /= float64(n)
		}
	}
	met.HasLatency = hasLat
	return met, nil
}

// PerQuery returns the quality and the cost of every row of t when the
// classifier routes it, for paired comparisons with other policies.
func (c *Classifier) PerQuery(t *Table) (quality, cost []float64, err error) {
	routes, err := c.Routes(t)
	if err != nil {
		return nil, nil, err
	}
	quality, cost = make([]float64, len(routes)), make([]float64, len(routes))
	for r, m := range routes {
		quality[r], cost[r] = t.Perf[m][r], t.Cost[m][r]
	}
	return quality, cost, nil
}

// classifierJSON is the saved layout of a classifier.
type classifierJSON struct {
	Format        string             `json:"format"`
	Models        []string           `json:"models"`
	Threshold     float64            `json:"threshold"`
	HashBits      int                `json:"hash_bits"`
	MaxBytes      int                `json:"max_feature_bytes"`
	DenseFeatures []string           `json:"dense_features"`
	Weights       []modelWeightsJSON `json:"weights"`
	Fit           ClassifierFit      `json:"fit"`
}

// modelWeightsJSON holds one model's weights: dense ones in FeatureNames
// order, hashed ones as ascending bucket indices with their weights (zero
// weights left out).
type modelWeightsJSON struct {
	Model  string    `json:"model"`
	Dense  []float32 `json:"dense"`
	Index  []uint32  `json:"index"`
	Weight []float32 `json:"weight"`
}

// Save writes c as JSON (ClassifierFormat): the models, the threshold, the
// feature settings and the non-zero weights of every model but the last.
func (c *Classifier) Save(w io.Writer) error {
	j := classifierJSON{Format: ClassifierFormat, Models: c.Models, Threshold: c.Threshold, HashBits: c.hashBits,
		MaxBytes: MaxFeatureBytes, DenseFeatures: FeatureNames, Fit: c.Fit, Weights: []modelWeightsJSON{}}
	buckets := 1 << c.hashBits
	for m := range c.k {
		mw := modelWeightsJSON{Model: c.Models[m], Dense: make([]float32, numDense), Index: []uint32{}, Weight: []float32{}}
		for i := range buckets {
			if v := c.w[i*c.k+m]; v != 0 {
				mw.Index = append(mw.Index, uint32(i))
				mw.Weight = append(mw.Weight, v)
			}
		}
		for d := range numDense {
			mw.Dense[d] = c.w[(buckets+d)*c.k+m]
		}
		j.Weights = append(j.Weights, mw)
	}
	enc := json.NewEncoder(w)
	return enc.Encode(j)
}

// SaveFile writes c to path (see Save).
func (c *Classifier) SaveFile(path string) error {
	var b bytes.Buffer
	if err := c.Save(&b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// LoadClassifierFile reads a classifier written by SaveFile.
func LoadClassifierFile(path string) (*Classifier, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Row: -1, Msg: "cannot read: " + unwrapPath(err).Error()}}
	}
	return ParseClassifier(path, data)
}

// ParseClassifier decodes a classifier saved by Save; name is used in
// errors, which are Errors naming the file, line:col when known, and the
// field at fault.
func ParseClassifier(name string, data []byte) (*Classifier, error) {
	fail := func(off int64, msg string) error {
		e := &Error{File: name, Row: -1, Msg: msg}
		if off >= 0 {
			e.Line, e.Col = lineCol(data, off)
		}
		return Errors{e}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j classifierJSON
	if err := dec.Decode(&j); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fail(se.Offset, "JSON syntax: "+se.Error()+"; the file must be a classifier saved by costwise eval --save-classifier")
		case errors.As(err, &te):
			return nil, fail(te.Offset, fmt.Sprintf("field %s: want %s, got JSON %s", te.Field, te.Type, te.Value))
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fail(-1, "the file is empty or cut short; save the classifier again")
		}
		return nil, fail(-1, err.Error()+"; the file must be a classifier saved by costwise eval --save-classifier")
	}
	if dec.More() {
		return nil, fail(dec.InputOffset(), "extra data after the classifier object; keep one JSON object per file")
	}
	field := func(f, msg string) error { return fail(-1, "field "+f+": "+msg) }
	if j.Format != ClassifierFormat {
		return nil, field("format", fmt.Sprintf("%q is not %q; this file was not written by this version of costwise", j.Format, ClassifierFormat))
	}
	if len(j.Models) == 0 {
		return nil, field("models", "empty; a classifier routes to at least one model")
	}
	seen := map[string]bool{}
	for i, m := range j.Models {
		if m == "" || seen[m] {
			return nil, field(fmt.Sprintf("models[%d]", i), fmt.Sprintf("%q is empty or repeated; model names must be unique", m))
		}
		seen[m] = true
	}
	if math.IsNaN(j.Threshold) || j.Threshold < 0 {
		return nil, field("threshold", fmt.Sprintf("%v is not a probability threshold >= 0", j.Threshold))
	}
	if j.HashBits < 10 || j.HashBits > 24 {
		return nil, field("hash_bits", fmt.Sprintf("%d is outside 10..24", j.HashBits))
	}
	if j.MaxBytes != MaxFeatureBytes {
		return nil, field("max_feature_bytes", fmt.Sprintf("%d differs from this build's %d; train the classifier again", j.MaxBytes, MaxFeatureBytes))
	}
	if !slices.Equal(j.DenseFeatures, FeatureNames) {
		return nil, field("dense_features", fmt.Sprintf("%v differ from this build's %v; train the classifier again", j.DenseFeatures, FeatureNames))
	}
	k := len(j.Models) - 1
	if len(j.Weights) != k {
		return nil, field("weights", fmt.Sprintf("%d models need %d weight sets (one per model but the last), got %d", len(j.Models), k, len(j.Weights)))
	}
	buckets := 1 << j.HashBits
	if (buckets+numDense)*k > maxWeights {
		return nil, field("hash_bits", fmt.Sprintf("%d models x 2^%d buckets is too many weights to load", k, j.HashBits))
	}
	c := &Classifier{Models: j.Models, Threshold: j.Threshold, Fit: j.Fit, hashBits: j.HashBits, k: k}
	if k > 0 {
		c.w = make([]float32, (buckets+numDense)*k)
	}
	for m, mw := range j.Weights {
		at := fmt.Sprintf("weights[%d]", m)
		if mw.Model != j.Models[m] {
			return nil, field(at+".model", fmt.Sprintf("%q, want %q (weights follow the models' order)", mw.Model, j.Models[m]))
		}
		if len(mw.Dense) != numDense {
			return nil, field(at+".dense", fmt.Sprintf("%d values, want %d (%s)", len(mw.Dense), numDense, strings.Join(FeatureNames, ", ")))
		}
		if len(mw.Index) != len(mw.Weight) {
			return nil, field(at, fmt.Sprintf("%d indices but %d weights; they go in pairs", len(mw.Index), len(mw.Weight)))
		}
		for i, b := range mw.Index {
			if int(b) >= buckets || i > 0 && b <= mw.Index[i-1] {
				return nil, field(fmt.Sprintf("%s.index[%d]", at, i), fmt.Sprintf("%d is out of order or outside 0..%d", b, buckets-1))
			}
			v := mw.Weight[i]
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, field(fmt.Sprintf("%s.weight[%d]", at, i), "not a finite number")
			}
			c.w[int(b)*k+m] = v
		}
		for d, v := range mw.Dense {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, field(fmt.Sprintf("%s.dense[%d]", at, d), "not a finite number")
			}
			c.w[(buckets+d)*k+m] = v
		}
	}
	return c, nil
}

// lineCol converts a byte offset of data to a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}
