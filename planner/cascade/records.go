package cascade

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/costwise/costwise/internal/suggest"
)

// Record is one model's recorded outcome on one query: the long layout of
// an outcome table, as a log of calls holds it (one record per query and
// model actually called), where the wide CSV layout has one row per query.
type Record struct {
	Query     string  // identifies the query; records of one query share it
	Model     string  // the model that answered
	Perf      float64 // score of the answer, 0..1
	CostUSD   float64 // what the model's answer cost, >= 0
	LatencyMS float64 // >= 0
	TokensIn  float64 // >= 0
	TokensOut float64 // >= 0
	// Conf is the model's confidence in its answer when HasConf.
	Conf    float64
	HasConf bool
	// Group is the query's eval_name (a task kind, say); "" for none.
	Group string
}

// Coverage says how FromRecords turned records into a complete table.
type Coverage struct {
	Queries       int      // distinct queries in the records
	Rows          int      // queries kept: every kept model has a record on them
	Models        []string // the kept models, by decreasing number of queries, then name
	DroppedModels []string // models left out, each with the share of queries it had
	// NoConfidence are kept models that lack a confidence on some kept
	// row, so the table has no confidence column for them.
	NoConfidence []string
}

// FromRecords builds an outcome table from records in the long layout.
// A table needs every model's outcome on every row, and a log holds only
// the models actually called, so FromRecords keeps the complete cases: it
// chooses the models and the queries on which all of them have a record.
// Starting from every model it drops, one at a time, the model whose
// removal completes the most queries (ties: the one with fewer records),
// and keeps the set of at least two models with the most outcome cells
// (rows x models); a single model only when no two models share a query.
// A model has a confidence column when every kept row gives it one. Rows
// keep the order in which their queries first appear; name is the table's
// origin in errors. Invalid numbers and repeated (query, model) records
// are errors naming the record (1-based).
func FromRecords(name string, recs []Record) (*Table, Coverage, error) {
	var cov Coverage
	if len(recs) == 0 {
		return nil, cov, errors.New(name + ": no outcomes recorded")
	}
	queries := map[string]int{} // query -> row index in first-appearance order
	var qorder []string
	models := map[string]int{}
	var mnames []string
	cells := map[[2]int]int{} // (query, model) -> record index
	for i, r := range recs {
		if msg := checkRecord(r); msg != "" {
			return nil, cov, fmt.Errorf("%s: record %d (query %q, model %q): %s", name, i+1, r.Query, r.Model, msg)
		}
		q, ok := queries[r.Query]
		if !ok {
			q = len(qorder)
			queries[r.Query] = q
			qorder = append(qorder, r.Query)
		}
		m, ok := models[r.Model]
		if !ok {
			m = len(mnames)
			models[r.Model] = m
			mnames = append(mnames, r.Model)
		}
		if j, dup := cells[[2]int{q, m}]; dup {
			return nil, cov, fmt.Errorf("%s: record %d repeats query %q on model %q (first at record %d); keep one outcome per query and model", name, i+1, r.Query, r.Model, j+1)
		}
		cells[[2]int{q, m}] = i
	}
	cov.Queries = len(qorder)
	nq, nm := len(qorder), len(mnames)
	words := (nm + 63) / 64
	// Each query's models as a bitset; queries with the same set are
	// counted together, so trying a model set costs one pass over the
	// distinct sets.
	qmask := make([][]uint64, nq)
	for q := range qmask {
		qmask[q] = make([]uint64, words)
	}
	count := make([]int, nm)
	for k := range cells {
		qmask[k[0]][k[1]/64] |= 1 << (k[1] % 64)
		count[k[1]]++
	}
	type group struct {
		mask []uint64
		n    int
	}
	var groups []group
	byKey := map[string]int{}
	for _, m := range qmask {
		key := fmt.Sprint(m)
		g, ok := byKey[key]
		if !ok {
			g = len(groups)
			byKey[key] = g
			groups = append(groups, group{mask: m})
		}
		groups[g].n++
	}
	maskOf := func(set []int) []uint64 {
		w := make([]uint64, words)
		for _, m := range set {
			w[m/64] |= 1 << (m % 64)
		}
		return w
	}
	covers := func(have, want []uint64) bool {
		for i := range want {
			if have[i]&want[i] != want[i] {
				return false
			}
		}
		return true
	}
	complete := func(set []int) int {
		want, n := maskOf(set), 0
		for _, g := range groups {
			if covers(g.mask, want) {
				n += g.n
			}
		}
		return n
	}
	set := make([]int, nm)
	for m := range set {
		set[m] = m
	}
	best, bestRows, bestCells := []int(nil), 0, -1
	consider := func(s []int, rows int) {
		if rows == 0 {
			return
		}
		// Two or more models beat one whenever they share a query.
		cellsN := rows * len(s)
		better := bestCells < 0 ||
			len(s) >= 2 && len(best) < 2 ||
			(len(s) >= 2) == (len(best) >= 2) && cellsN > bestCells
		if better {
			best, bestRows, bestCells = append([]int(nil), s...), rows, cellsN
		}
	}
	consider(set, complete(set))
	for len(set) > 1 {
		drop, dropRows := 0, -1
		for i := range set {
			rest := append(append([]int(nil), set[:i]...), set[i+1:]...)
			rows := complete(rest)
			fewer := count[set[i]] < count[set[drop]] || count[set[i]] == count[set[drop]] && mnames[set[i]] > mnames[set[drop]]
			if rows > dropRows || rows == dropRows && fewer {
				drop, dropRows = i, rows
			}
		}
		set = append(set[:drop], set[drop+1:]...)
		consider(set, dropRows)
	}
	if best == nil {
		return nil, cov, errors.New(name + ": no query has an outcome") // unreachable: every model has a query
	}
	sort.SliceStable(best, func(a, b int) bool {
		if count[best[a]] != count[best[b]] {
			return count[best[a]] > count[best[b]]
		}
		return mnames[best[a]] < mnames[best[b]]
	})
	kept := map[int]bool{}
	for _, m := range best {
		kept[m] = true
		cov.Models = append(cov.Models, mnames[m])
	}
	for m, nmName := range mnames {
		if !kept[m] {
			cov.DroppedModels = append(cov.DroppedModels, fmt.Sprintf("%s (%d of %d queries)", nmName, count[m], nq))
		}
	}
	var rows []int
	want := maskOf(best)
	for q := range nq {
		if covers(qmask[q], want) {
			rows = append(rows, q)
		}
	}
	cov.Rows = bestRows
	M, n := len(best), len(rows)
	t := &Table{Models: cov.Models}
	alloc := func() [][]float64 {
		cols := make([][]float64, M)
		for i := range cols {
			cols[i] = make([]float64, n)
		}
		return cols
	}
	t.Perf, t.Cost, t.LatencyMS, t.TokensIn, t.TokensOut, t.Conf = alloc(), alloc(), alloc(), alloc(), alloc(), alloc()
	t.EvalName = make([]string, n)
	t.Origin = make([]Origin, n)
	anyGroup := false
	for r, q := range rows {
		t.Origin[r] = Origin{File: name, Row: r + 1}
		for i, m := range best {
			rec := recs[cells[[2]int{q, m}]]
			t.Perf[i][r], t.Cost[i][r], t.LatencyMS[i][r] = rec.Perf, rec.CostUSD, rec.LatencyMS
			t.TokensIn[i][r], t.TokensOut[i][r] = rec.TokensIn, rec.TokensOut
			if rec.HasConf && t.Conf[i] != nil {
				t.Conf[i][r] = rec.Conf
			} else {
				t.Conf[i] = nil
			}
			if i == 0 {
				t.EvalName[r] = rec.Group
				anyGroup = anyGroup || rec.Group != ""
			}
		}
	}
	for i := range best {
		if t.Conf[i] == nil {
			cov.NoConfidence = append(cov.NoConfidence, cov.Models[i])
		}
	}
	if !anyGroup {
		t.EvalName = nil
	}
	return t, cov, nil
}

// checkRecord says what is wrong with r, "" when nothing is.
func checkRecord(r Record) string {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case r.Query == "":
		return "the query is empty"
	case r.Model == "":
		return "the model is empty"
	case !finite(r.Perf) || r.Perf < 0 || r.Perf > 1:
		return fmt.Sprintf("performance %v is outside 0..1", r.Perf)
	case !finite(r.CostUSD) || r.CostUSD < 0:
		return fmt.Sprintf("cost %v is not a number >= 0", r.CostUSD)
	case !finite(r.LatencyMS) || r.LatencyMS < 0:
		return fmt.Sprintf("latency %v is not a number >= 0", r.LatencyMS)
	case !finite(r.TokensIn) || r.TokensIn < 0 || !finite(r.TokensOut) || r.TokensOut < 0:
		return "token counts must be numbers >= 0"
	case r.HasConf && !finite(r.Conf):
		return "the confidence is not a finite number"
	}
	return ""
}

// RenameModels renames the table's models: names maps a model of the table
// to its new name. A name that is not a model of the table is an error
// with a suggestion, and so is a renaming that gives two models one name.
func (t *Table) RenameModels(names map[string]string) error {
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if _, ok := t.Model(k); !ok {
			msg := fmt.Sprintf("model %q is not in the outcome table", k)
			if s := suggest.Closest(k, t.Models); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; its models are " + strings.Join(t.Models, ", ")
			}
			errs = append(errs, errors.New(msg))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	renamed := make([]string, len(t.Models))
	seen := map[string]string{}
	for i, m := range t.Models {
		to := m
		if n, ok := names[m]; ok {
			to = n
		}
		if to == "" {
			return fmt.Errorf("model %q would be renamed to an empty name", m)
		}
		if prev, dup := seen[to]; dup {
			return fmt.Errorf("models %q and %q would both be named %q; map each model to a different name", prev, m, to)
		}
		seen[to] = m
		renamed[i] = to
	}
	t.Models = renamed
	return nil
}

// Merged is what JoinCommon kept and left out.
type Merged struct {
	Models        []string // kept: in every table
	DroppedModels []string // in some tables only
	// DroppedConfidence are kept models whose confidence column some
	// tables lack: the joined table has none for them.
	DroppedConfidence []string
}

// JoinCommon appends the rows of tables that may declare different
// models: it keeps the models of the first table that every table has,
// drops the confidence columns that not every table has for a kept model,
// and joins the rest with Concat. At least one model must be common.
func JoinCommon(tables ...*Table) (*Table, Merged, error) {
	var mg Merged
	if len(tables) == 0 {
		return nil, mg, errors.New("no tables to join")
	}
	var keep []string
	for i, m := range tables[0].Models {
		inAll, confAll := true, tables[0].Conf[i] != nil
		for _, t := range tables[1:] {
			j, ok := t.Model(m)
			if !ok {
				inAll = false
				break
			}
			confAll = confAll && t.Conf[j] != nil
		}
		if !inAll {
			continue
		}
		keep = append(keep, m)
		if !confAll && anyConf(tables, m) {
			mg.DroppedConfidence = append(mg.DroppedConfidence, m)
		}
	}
	kept := map[string]bool{}
	for _, m := range keep {
		kept[m] = true
	}
	seen := map[string]bool{}
	for _, t := range tables {
		for _, m := range t.Models {
			if !kept[m] && !seen[m] {
				seen[m] = true
				mg.DroppedModels = append(mg.DroppedModels, m)
			}
		}
	}
	mg.Models = keep
	if len(keep) == 0 {
		var names []string
		for _, t := range tables {
			names = append(names, fileOf(t)+": "+strings.Join(t.Models, ", "))
		}
		return nil, mg, fmt.Errorf("the tables have no model in common (%s); map their model names to the same IDs", strings.Join(names, "; "))
	}
	noConf := map[string]bool{}
	for _, m := range mg.DroppedConfidence {
		noConf[m] = true
	}
	projected := make([]*Table, len(tables))
	for k, t := range tables {
		projected[k] = t.project(keep, noConf)
	}
	out, err := Concat(projected...)
	return out, mg, err
}

func anyConf(tables []*Table, m string) bool {
	for _, t := range tables {
		if j, ok := t.Model(m); ok && t.Conf[j] != nil {
			return true
		}
	}
	return false
}

// project returns a table with the given models only (in that order), all
// rows, without the confidence of the models in noConf. Columns are shared
// with t, not copied.
func (t *Table) project(models []string, noConf map[string]bool) *Table {
	idx := make([]int, len(models))
	for i, m := range models {
		idx[i], _ = t.Model(m)
	}
	pick := func(cols [][]float64) [][]float64 {
		if cols == nil {
			return nil
		}
		out := make([][]float64, len(idx))
		for i, j := range idx {
			out[i] = cols[j]
		}
		return out
	}
	p := &Table{
		Models: append([]string(nil), models...),
		Perf:   pick(t.Perf), Cost: pick(t.Cost), Conf: pick(t.Conf),
		TokensIn: pick(t.TokensIn), TokensOut: pick(t.TokensOut), LatencyMS: pick(t.LatencyMS),
		Prompt: t.Prompt, EvalName: t.EvalName, Origin: t.Origin, Ignored: t.Ignored,
	}
	if p.Conf == nil {
		p.Conf = make([][]float64, len(models))
	}
	for i, m := range models {
		if noConf[m] {
			p.Conf[i] = nil
		}
	}
	return p
}
