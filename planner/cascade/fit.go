package cascade

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// DefaultQuantiles is the number of quantile levels whose training
// confidences are the candidate thresholds of three-model cascades.
const DefaultQuantiles = 100

// DefaultTargetSlack is how far below the strongest single model's training
// quality the default target lies. It is 0: a policy fitted to just reach a
// lower target on the training rows lands below it on held-out rows about
// half the time (the held-out mean wanders by its standard error, and the
// cheapest threshold that meets a target is picked where training noise
// flatters it). Aiming at the strongest's own training quality keeps the
// held-out quality within a point of the strongest's far more often, for a
// few points of saving (measured on generated tables of 10,000 rows: the
// fitted cascade fell more than a point short on 17% of seeds with slack 0,
// 34% with 0.005 and 53% with 0.01; savings 68%, 71% and 73%).
const DefaultTargetSlack = 0.0

// feasTol absorbs rounding when a mean quality is compared with the target.
const feasTol = 1e-9

// Options tune Fit.
type Options struct {
	// TargetQuality is the least mean training quality the policy must
	// reach, in (0, 1]. Zero means the strongest single model's training
	// quality minus DefaultTargetSlack.
	TargetQuality float64
	// MaxLength is the longest cascade searched, 1..3; zero means 3.
	MaxLength int
	// Quantiles is the number of quantile levels for the thresholds of
	// three-model cascades; zero means DefaultQuantiles.
	Quantiles int
	// Exhaustive keeps models dominated on training cost and quality in the
	// search of three-model cascades.
	Exhaustive bool
}

// Binding constraints reported by Fit.
const (
	BindsQuality    = "quality"    // cheaper policies in the search fall short of the target
	BindsNone       = "none"       // the cheapest model already meets the target
	BindsInfeasible = "infeasible" // no searched policy meets the target
)

// FitResult is a fitted policy and how it was found. Every number in it
// comes from the training rows.
type FitResult struct {
	Policy        Policy
	Train         Metrics // the policy replayed on the training rows
	Target        float64 // the quality target used
	TargetDefault bool    // the target is the default (strongest - DefaultTargetSlack)
	Strongest     string  // the model with the highest training quality (ties: cheaper)
	BestSingle    string  // the cheapest model meeting the target; Strongest when none does
	Feasible      bool    // Train.Quality >= Target
	Binds         string  // BindsQuality, BindsNone or BindsInfeasible
	Slack         float64 // Train.Quality - Target
	Note          string  // a fallback or limitation worth telling the user; "" when none
	Sequences     int     // model sequences searched
	Candidates    int     // (sequence, thresholds) points evaluated
	Pruned        []string
}

// modelStats are one model's training means.
type modelStats struct {
	q, c float64
}

// search keeps the best candidate seen.
type search struct {
	t      *Table
	n      float64
	target float64
	// best feasible (lowest cost, then highest quality)
	bestQ, bestC float64
	best         []int
	bestThr      []float64
	found        bool
	// highest quality (then lowest cost), for an unreachable target
	topQ, topC float64
	top        []int
	topThr     []float64
	candidates int
}

// offer records the candidate with quality sum qs and cost sum cs (over all
// rows) when it improves on the best so far; thr is only copied then.
func (s *search) offer(models []int, thr []float64, qs, cs float64) {
	s.candidates++
	q, c := qs/s.n, cs/s.n
	if q >= s.target-feasTol {
		if !s.found || c < s.bestC*(1-1e-12) || c <= s.bestC*(1+1e-12) && q > s.bestQ {
			s.found, s.bestQ, s.bestC = true, q, c
			s.best, s.bestThr = append(s.best[:0], models...), append(s.bestThr[:0], thr...)
		}
	}
	if s.top == nil || q > s.topQ || q == s.topQ && c < s.topC {
		s.topQ, s.topC = q, c
		s.top, s.topThr = append(s.top[:0:0], models...), append(s.topThr[:0:0], thr...)
	}
}

// Fit chooses the cheapest policy whose mean quality on train reaches the
// target; see the package documentation for the search. It reads nothing
// but train.
func Fit(train *Table, opt Options) (FitResult, error) {
	n := train.Len()
	if n == 0 || len(train.Models) == 0 {
		return FitResult{}, errors.New("the training table has no rows")
	}
	if opt.MaxLength == 0 {
		opt.MaxLength = 3
	}
	if opt.MaxLength < 1 || opt.MaxLength > 3 {
		return FitResult{}, fmt.Errorf("the longest cascade must be 1, 2 or 3 models, got %d", opt.MaxLength)
	}
	if opt.Quantiles == 0 {
		opt.Quantiles = DefaultQuantiles
	}
	if opt.Quantiles < 1 {
		return FitResult{}, fmt.Errorf("quantiles must be >= 1, got %d", opt.Quantiles)
	}
	if opt.TargetQuality != 0 && !(opt.TargetQuality > 0 && opt.TargetQuality <= 1) {
		return FitResult{}, fmt.Errorf("the target quality must be in (0, 1], got %v", opt.TargetQuality)
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
	res := FitResult{Target: opt.TargetQuality, Strongest: train.Models[strongest]}
	if res.Target == 0 {
		res.Target = math.Max(0, stats[strongest].q-DefaultTargetSlack)
		res.TargetDefault = true
	}
	// Models cheap -> strong on training cost; ties: better first.
	order := make([]int, M)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := stats[order[a]], stats[order[b]]
		if x.c != y.c {
			return x.c < y.c
		}
		return x.q > y.q
	})
	s := &search{t: train, n: float64(n), target: res.Target}
	for _, m := range order {
		s.offer([]int{m}, nil, stats[m].q*s.n, stats[m].c*s.n)
		res.Sequences++
	}
	res.BestSingle = res.Strongest
	if s.found {
		res.BestSingle = train.Models[s.best[0]]
	}
	sorted := sortedByConf(train)
	if opt.MaxLength >= 2 {
		for i, a := range order {
			if train.Conf[a] == nil {
				continue
			}
			for _, b := range order[i+1:] {
				s.pair(a, b, sorted[a])
				res.Sequences++
			}
		}
	}
	if opt.MaxLength >= 3 {
		pool := order
		if !opt.Exhaustive {
			pool, res.Pruned = prune(train, order, stats)
		}
		grids := make([][]float64, M)
		buckets := make([][]int32, M)
		for _, m := range pool {
			if train.Conf[m] != nil {
				grids[m] = quantileGrid(train.Conf[m], sorted[m], opt.Quantiles)
				buckets[m] = bucketize(train.Conf[m], grids[m])
			}
		}
		for i, a := range pool {
			if train.Conf[a] == nil {
				continue
			}
			for j := i + 1; j < len(pool); j++ {
				b := pool[j]
				if train.Conf[b] == nil {
					continue
				}
				for _, c := range pool[j+1:] {
					s.triple(a, b, c, sorted[a], grids[a], grids[b], buckets[b])
					res.Sequences++
				}
			}
		}
	}
	res.Candidates = s.candidates
	models, thr := s.best, s.bestThr
	res.Feasible = s.found
	if !s.found {
		models, thr = s.top, s.topThr
	}
	res.Policy = Policy{Models: make([]string, len(models)), Thresholds: append([]float64{}, thr...)}
	for k, m := range models {
		res.Policy.Models[k] = train.Models[m]
	}
	met, err := Evaluate(train, res.Policy)
	if err != nil {
		return FitResult{}, err // cannot happen: the search only builds valid policies
	}
	res.Train = met
	res.Slack = met.Quality - res.Target
	switch {
	case !res.Feasible:
		res.Binds = BindsInfeasible
		res.Note = fmt.Sprintf("no policy searched reaches quality %.4g on the training rows; the best reaches %.4g: lower the target or add stronger models", res.Target, met.Quality)
	case met.CostUSD <= stats[order[0]].c*(1+1e-12):
		res.Binds = BindsNone
	default:
		res.Binds = BindsQuality
	}
	if !train.AnyConfidence() {
		msg := "no M|confidence column in the outcomes: a cascade cannot decide when to escalate, so the policy is the cheapest single model meeting the target"
		if res.Note != "" {
			msg += "; " + res.Note
		}
		res.Note = msg
	}
	return res, nil
}

// sortedByConf returns, for every model with a confidence column, the rows
// sorted by confidence, highest first.
func sortedByConf(t *Table) [][]int {
	out := make([][]int, len(t.Models))
	for m, conf := range t.Conf {
		if conf == nil {
			continue
		}
		idx := make([]int, len(conf))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return conf[idx[a]] > conf[idx[b]] })
		out[m] = idx
	}
	return out
}

// pair tries every distinct confidence of a as the threshold of a -> b.
// desc holds the rows sorted by a's confidence, highest first; the rows
// accepted at threshold v are a prefix of it.
func (s *search) pair(a, b int, desc []int) {
	t := s.t
	pa, ca, pb, cb := t.Perf[a], t.Cost[a], t.Perf[b], t.Cost[b]
	conf := t.Conf[a]
	var totPB, totCA, totCB float64
	for r := range pa {
		totPB += pb[r]
		totCA += ca[r]
		totCB += cb[r]
	}
	var accPA, accPB, accCB float64
	models := []int{a, b}
	thr := []float64{0}
	for i := 0; i < len(desc); {
		v := conf[desc[i]]
		for ; i < len(desc) && conf[desc[i]] == v; i++ {
			r := desc[i]
			accPA += pa[r]
			accPB += pb[r]
			accCB += cb[r]
		}
		thr[0] = v
		s.offer(models, thr, accPA+totPB-accPB, totCA+totCB-accCB)
	}
}

// triple tries every pair of grid thresholds for a -> b -> c. Sweeping a's
// threshold upwards moves rows into the set a passes on; b's decision on
// each such row depends only on its bucket (how many grid values of b lie
// at or below its confidence), so per-bucket sums give every threshold of
// b in one pass.
func (s *search) triple(a, b, c int, desc []int, gridA, gridB []float64, bucketB []int32) {
	t := s.t
	pa, ca, pb, cb, pc, cc := t.Perf[a], t.Cost[a], t.Perf[b], t.Cost[b], t.Perf[c], t.Cost[c]
	confA := t.Conf[a]
	K := len(gridB)
	var totPA, totCA float64
	for r := range pa {
		totPA += pa[r]
		totCA += ca[r]
	}
	// Per bucket sums over the rows a passes on.
	bPB := make([]float64, K+1)
	bPC := make([]float64, K+1)
	bCC := make([]float64, K+1)
	var remPA, remCB, remPB float64
	models := []int{a, b, c}
	thr := []float64{0, 0}
	p := len(desc) - 1 // walk desc from the lowest confidence up
	for _, t1 := range gridA {
		for ; p >= 0 && confA[desc[p]] < t1; p-- {
			r := desc[p]
			j := bucketB[r]
			bPB[j] += pb[r]
			bPC[j] += pc[r]
			bCC[j] += cc[r]
			remPA += pa[r]
			remCB += cb[r]
			remPB += pb[r]
		}
		thr[0] = t1
		base := totPA - remPA
		costBase := totCA + remCB
		// Threshold gridB[i]: b accepts rows in buckets j > i.
		var lePB, lePC, leCC float64
		for i := range K {
			lePB += bPB[i]
			lePC += bPC[i]
			leCC += bCC[i]
			thr[1] = gridB[i]
			s.offer(models, thr, base+(remPB-lePB)+lePC, costBase+leCC)
		}
	}
}

// quantileGrid returns the distinct confidences at levels 0, 1/q, ..., 1 of
// the sorted values (desc holds the rows highest first), ascending.
func quantileGrid(conf []float64, desc []int, q int) []float64 {
	n := len(desc)
	grid := make([]float64, 0, q+1)
	for k := 0; k <= q; k++ {
		pos := int(math.Round(float64(k) * float64(n-1) / float64(q)))
		v := conf[desc[n-1-pos]] // ascending position pos
		if len(grid) == 0 || v != grid[len(grid)-1] {
			grid = append(grid, v)
		}
	}
	return grid
}

// bucketize returns, for every row, the number of grid values <= its
// confidence.
func bucketize(conf, grid []float64) []int32 {
	out := make([]int32, len(conf))
	for r, v := range conf {
		out[r] = int32(sort.Search(len(grid), func(i int) bool { return grid[i] > v }))
	}
	return out
}

// prune leaves out models dominated on training cost and quality: some
// other model is no dearer and no worse (and strictly better in one, or
// earlier in order when equal), and has a confidence column whenever the
// dominated one has. It is a heuristic for three-model cascades only.
func prune(t *Table, order []int, stats []modelStats) (pool []int, pruned []string) {
	pos := make([]int, len(t.Models))
	for i, m := range order {
		pos[m] = i
	}
	for _, x := range order {
		dominated := false
		for _, y := range order {
			if y == x || t.Conf[x] != nil && t.Conf[y] == nil {
				continue
			}
			sx, sy := stats[x], stats[y]
			if sy.c <= sx.c && sy.q >= sx.q && (sy.c < sx.c || sy.q > sx.q || pos[y] < pos[x]) {
				dominated = true
				break
			}
		}
		if dominated {
			pruned = append(pruned, t.Models[x])
		} else {
			pool = append(pool, x)
		}
	}
	return pool, pruned
}
