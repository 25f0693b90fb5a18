package cascade

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Table holds recorded outcomes: for every query (row) and model, the score
// and the cost of the model's answer and, when recorded, its confidence.
// Per-model slices are indexed [model][row]; a nil inner slice means the
// column is absent for that model.
type Table struct {
	Models    []string    // model names in header order
	Perf      [][]float64 // score 0..1
	Cost      [][]float64 // USD
	Conf      [][]float64 // confidence; nil for models without M|confidence
	TokensIn  [][]float64 // optional
	TokensOut [][]float64 // optional
	LatencyMS [][]float64 // optional
	Prompt    []string    // nil without a prompt column
	EvalName  []string    // nil without an eval_name column
	Origin    []Origin    // where each row was read
	Ignored   []string    // header columns that were not used
}

// Origin is where a row of a table was read: the file and the 1-based data
// row (row 1 is the first line after the header) and file line.
type Origin struct {
	File string
	Row  int
	Line int
}

// Len returns the number of rows (queries).
func (t *Table) Len() int {
	if len(t.Perf) == 0 {
		return 0
	}
	return len(t.Perf[0])
}

// Model returns the index of the named model.
func (t *Table) Model(name string) (int, bool) {
	for i, m := range t.Models {
		if m == name {
			return i, true
		}
	}
	return -1, false
}

// HasConfidence reports whether model m has a confidence column.
func (t *Table) HasConfidence(m int) bool { return t.Conf[m] != nil }

// AnyConfidence reports whether at least one model has a confidence column.
func (t *Table) AnyConfidence() bool {
	for m := range t.Models {
		if t.Conf[m] != nil {
			return true
		}
	}
	return false
}

// Subset returns a new table holding the given rows of t, in that order.
// The data is copied: changing one table never changes the other.
func (t *Table) Subset(rows []int) *Table {
	pick := func(col []float64) []float64 {
		if col == nil {
			return nil
		}
		out := make([]float64, len(rows))
		for k, r := range rows {
			out[k] = col[r]
		}
		return out
	}
	pickAll := func(cols [][]float64) [][]float64 {
		if cols == nil {
			return nil
		}
		out := make([][]float64, len(cols))
		for m, c := range cols {
			out[m] = pick(c)
		}
		return out
	}
	pickStr := func(col []string) []string {
		if col == nil {
			return nil
		}
		out := make([]string, len(rows))
		for k, r := range rows {
			out[k] = col[r]
		}
		return out
	}
	s := &Table{
		Models: append([]string(nil), t.Models...),
		Perf:   pickAll(t.Perf), Cost: pickAll(t.Cost), Conf: pickAll(t.Conf),
		TokensIn: pickAll(t.TokensIn), TokensOut: pickAll(t.TokensOut), LatencyMS: pickAll(t.LatencyMS),
		Prompt: pickStr(t.Prompt), EvalName: pickStr(t.EvalName),
		Ignored: append([]string(nil), t.Ignored...),
	}
	if t.Origin != nil {
		s.Origin = make([]Origin, len(rows))
		for k, r := range rows {
			s.Origin[k] = t.Origin[r]
		}
	}
	return s
}

// Error is one problem in an outcome file.
type Error struct {
	File   string
	Line   int    // 1-based file line; 0 when unknown
	Col    int    // 1-based byte column; 0 when unknown
	Row    int    // 1-based data row (the header is row 0); -1 when the problem is the whole file
	Column string // header name of the column at fault; "" when none
	Msg    string // what is wrong and what to do
}

// Error formats e as `file:line:col: row N, column "C": message`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	switch {
	case e.Row == 0:
		b.WriteString("header")
		if e.Column != "" {
			fmt.Fprintf(&b, ", column %q", e.Column)
		}
		b.WriteString(": ")
	case e.Row > 0:
		fmt.Fprintf(&b, "row %d", e.Row)
		if e.Column != "" {
			fmt.Fprintf(&b, ", column %q", e.Column)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one outcome file (at most MaxErrors), in
// file order. ReadOutcomes and Concat return it.
type Errors []*Error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// MaxErrors is how many problems ReadOutcomes reports before it stops.
const MaxErrors = 20

// Per-model fields of the wide layout.
const (
	fieldPerformance = "performance"
	fieldCost        = "total_cost"
	fieldConfidence  = "confidence"
	fieldTokensIn    = "tokens_in"
	fieldTokensOut   = "tokens_out"
	fieldLatency     = "latency_ms"
)

// column is what one header cell feeds.
type column struct {
	name  string
	model int    // -1 for prompt, eval_name and ignored columns
	field string // one of the field constants, "prompt", "eval_name" or "" (ignored)
}

// ReadOutcomes reads one outcome table in the wide CSV layout described in
// the package documentation; name is used in errors. Every problem is an
// *Error naming the file, line:col, the data row and the column; up to
// MaxErrors are returned together as Errors.
func ReadOutcomes(name string, r io.Reader) (*Table, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: name, Row: -1, Msg: "the file is empty; want a header line naming the columns (M, M|total_cost, ...) and one row per query"}}
		}
		return nil, Errors{csvError(name, err)}
	}
	header = append([]string(nil), header...)
	cols, t, errs := parseHeader(name, header, cr)
	if len(errs) > 0 {
		return nil, errs
	}
	add := func(e *Error) bool {
		errs = append(errs, e)
		return len(errs) < MaxErrors
	}
	row := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		row++
		if err != nil {
			e := csvError(name, err)
			e.Row = row
			if !add(e) {
				break
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				continue // the reader goes on after a short or long row
			}
			break
		}
		line, _ := cr.FieldPos(0)
		t.Origin = append(t.Origin, Origin{File: name, Row: row, Line: line})
		ok := true
		for i, c := range cols {
			cell := rec[i]
			switch c.field {
			case "":
				continue
			case "prompt":
				t.Prompt = append(t.Prompt, strings.Clone(cell)) // do not pin the whole record
				continue
			case "eval_name":
				t.EvalName = append(t.EvalName, strings.Clone(cell))
				continue
			}
			v, msg := parseCell(c.field, cell)
			if msg != "" {
				l, col := cr.FieldPos(i)
				if ok = add(&Error{File: name, Line: l, Col: col, Row: row, Column: c.name, Msg: msg}); !ok {
					break
				}
			}
			dst := t.slot(c)
			*dst = append(*dst, v)
		}
		if !ok {
			break
		}
	}
	if len(errs) >= MaxErrors {
		errs = append(errs, &Error{File: name, Row: -1, Msg: fmt.Sprintf("stopped after %d problems; fix these and read again", MaxErrors)})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if row == 0 {
		return nil, Errors{{File: name, Row: -1, Msg: "the file has a header but no data rows; add one row per query"}}
	}
	return t, nil
}

// slot returns the per-model slice a column appends to.
func (t *Table) slot(c column) *[]float64 {
	switch c.field {
	case fieldPerformance:
		return &t.Perf[c.model]
	case fieldCost:
		return &t.Cost[c.model]
	case fieldConfidence:
		return &t.Conf[c.model]
	case fieldTokensIn:
		return &t.TokensIn[c.model]
	case fieldTokensOut:
		return &t.TokensOut[c.model]
	}
	return &t.LatencyMS[c.model]
}

// parseCell parses one number and checks its range; msg says what is wrong.
func parseCell(field, cell string) (float64, string) {
	s := strings.TrimSpace(cell)
	if s == "" {
		return 0, "the cell is empty; every model needs a value on every row (drop the row, or the model's columns, when it was not run)"
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Sprintf("%q is not a finite number; %s", clip(cell), fieldHint(field))
	}
	switch field {
	case fieldPerformance:
		if v < 0 || v > 1 {
			return 0, fmt.Sprintf("performance %s is outside [0, 1]; %s", s, fieldHint(field))
		}
	case fieldConfidence:
	default:
		if v < 0 {
			return 0, fmt.Sprintf("%s is negative; %s", s, fieldHint(field))
		}
	}
	return v, ""
}

func fieldHint(field string) string {
	switch field {
	case fieldPerformance:
		return "write the score of the answer as a number from 0 (wrong) to 1 (right)"
	case fieldCost:
		return "write the cost of the answer in USD, e.g. 0.00042"
	case fieldConfidence:
		return "write the model's confidence as a number, e.g. 0.87"
	case fieldLatency:
		return "write the latency in milliseconds, >= 0"
	}
	return "write a token count >= 0"
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

func csvError(name string, err error) *Error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			msg = "wrong number of fields; every row needs one value per header column"
		} else if errors.Is(pe.Err, csv.ErrBareQuote) || errors.Is(pe.Err, csv.ErrQuote) {
			msg += `; quote the whole cell and double quotes inside it ("say ""hi""")`
		}
		return &Error{File: name, Line: pe.Line, Col: pe.Column, Row: -1, Msg: msg}
	}
	return &Error{File: name, Row: -1, Msg: "cannot read: " + err.Error()}
}

// parseHeader maps the header cells to models and fields.
func parseHeader(name string, header []string, cr *csv.Reader) ([]column, *Table, Errors) {
	var errs Errors
	at := func(i int, msg string) {
		l, c := cr.FieldPos(i)
		errs = append(errs, &Error{File: name, Line: l, Col: c, Row: 0, Column: header[i], Msg: msg})
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	seen := map[string]int{}
	dup := make([]bool, len(header))
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if j, ok := seen[h]; ok {
			at(i, fmt.Sprintf("the column name repeats column %d; rename or drop one", j+1))
			dup[i] = true
			continue
		}
		seen[h] = i
	}
	// Models are declared by their M|total_cost column.
	t := &Table{}
	models := map[string]int{}
	for _, h := range header {
		if m, f, ok := strings.Cut(h, "|"); ok && f == fieldCost && m != "" {
			if _, dup := models[m]; !dup {
				models[m] = len(t.Models)
				t.Models = append(t.Models, m)
			}
		}
	}
	if len(t.Models) == 0 && len(errs) == 0 {
		errs = append(errs, &Error{File: name, Line: 1, Row: 0, Msg: "no model columns: declare each model M with a column M|total_cost (USD) and its score in M or M|performance (0..1)"})
		return nil, nil, errs
	}
	n := len(t.Models)
	t.Perf, t.Cost, t.Conf = make([][]float64, n), make([][]float64, n), make([][]float64, n)
	var tokIn, tokOut, lat [][]float64 = make([][]float64, n), make([][]float64, n), make([][]float64, n)
	cols := make([]column, len(header))
	has := map[[2]string]int{} // (model, field) -> header index
	for i, h := range header {
		cols[i] = column{name: h, model: -1}
		if dup[i] {
			continue
		}
		switch h {
		case "prompt", "eval_name":
			cols[i].field = h
			continue
		}
		m, f, piped := strings.Cut(h, "|")
		if !piped {
			if mi, ok := models[h]; ok {
				m, f = h, fieldPerformance
				cols[i].model = mi
			} else {
				t.Ignored = append(t.Ignored, h)
				continue
			}
		}
		mi, ok := models[m]
		if !ok {
			switch f {
			case fieldPerformance, fieldConfidence, fieldTokensIn, fieldTokensOut, fieldLatency:
				at(i, fmt.Sprintf("model %q has no %s|total_cost column; add it (USD per answer) or drop this column", m, m))
			default:
				t.Ignored = append(t.Ignored, h)
			}
			continue
		}
		switch f {
		case fieldPerformance, fieldCost, fieldConfidence, fieldTokensIn, fieldTokensOut, fieldLatency:
		default:
			t.Ignored = append(t.Ignored, h) // M|model_response and the like
			continue
		}
		key := [2]string{m, f}
		if j, dup := has[key]; dup {
			at(i, fmt.Sprintf("model %q already has its %s in column %q; keep one of them", m, f, header[j]))
			continue
		}
		has[key] = i
		cols[i].model, cols[i].field = mi, f
		switch f {
		case fieldConfidence:
			t.Conf[mi] = []float64{}
		case fieldTokensIn:
			tokIn[mi] = []float64{}
		case fieldTokensOut:
			tokOut[mi] = []float64{}
		case fieldLatency:
			lat[mi] = []float64{}
		}
	}
	for _, m := range t.Models {
		if _, ok := has[[2]string{m, fieldPerformance}]; !ok {
			i := has[[2]string{m, fieldCost}]
			at(i, fmt.Sprintf("model %q has a cost but no score; add a column %q or \"%s|performance\" (0..1)", m, m, m))
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(a, b int) bool { return errs[a].Col < errs[b].Col })
		return nil, nil, errs
	}
	if anyCol(tokIn) {
		t.TokensIn = tokIn
	}
	if anyCol(tokOut) {
		t.TokensOut = tokOut
	}
	if anyCol(lat) {
		t.LatencyMS = lat
	}
	for i := range t.Models {
		t.Perf[i], t.Cost[i] = []float64{}, []float64{}
	}
	return cols, t, nil
}

func anyCol(cols [][]float64) bool {
	for _, c := range cols {
		if c != nil {
			return true
		}
	}
	return false
}

// ReadOutcomeFiles reads and concatenates outcome files (see Concat).
func ReadOutcomeFiles(paths ...string) (*Table, error) {
	if len(paths) == 0 {
		return nil, errors.New("no outcome files given")
	}
	tables := make([]*Table, 0, len(paths))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, Errors{{File: p, Row: -1, Msg: "cannot open: " + unwrapPath(err).Error()}}
		}
		t, err := ReadOutcomes(p, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	return Concat(tables...)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Concat appends the rows of several tables. The tables must declare the
// same models (in any column order) and the same confidence columns; the
// result uses the first table's model order. Optional columns (tokens,
// latency, prompt, eval_name) are kept only when every table has them.
// When the models differ Concat fails, naming the models missing from or
// extra in each file: give files with the same models, or drop the extra
// models' columns.
func Concat(tables ...*Table) (*Table, error) {
	if len(tables) == 0 {
		return nil, errors.New("no tables to join")
	}
	if len(tables) == 1 {
		return tables[0], nil
	}
	first := tables[0]
	var errs Errors
	perms := make([][]int, len(tables)) // result model -> model index in table k
	for k, t := range tables {
		perm := make([]int, len(first.Models))
		var missing, extra, conf []string
		for i, m := range first.Models {
			j, ok := t.Model(m)
			perm[i] = j
			if !ok {
				missing = append(missing, m)
			} else if (first.Conf[i] == nil) != (t.Conf[j] == nil) {
				conf = append(conf, m)
			}
		}
		for _, m := range t.Models {
			if _, ok := first.Model(m); !ok {
				extra = append(extra, m)
			}
		}
		perms[k] = perm
		f := fileOf(t)
		if len(missing) > 0 || len(extra) > 0 {
			msg := "models differ from " + fileOf(first) + ":"
			if len(missing) > 0 {
				msg += " missing " + strings.Join(missing, ", ") + ";"
			}
			if len(extra) > 0 {
				msg += " extra " + strings.Join(extra, ", ") + ";"
			}
			errs = append(errs, &Error{File: f, Line: 1, Row: -1, Msg: msg + " all --outcomes files must declare the same models; drop the extra models' columns or add the missing ones"})
		}
		if len(conf) > 0 {
			errs = append(errs, &Error{File: f, Line: 1, Row: -1, Msg: fmt.Sprintf("confidence columns differ from %s for %s; give every file the same M|confidence columns", fileOf(first), strings.Join(conf, ", "))})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	n := len(first.Models)
	out := &Table{Models: append([]string(nil), first.Models...)}
	join := func(get func(*Table) [][]float64) [][]float64 {
		res := make([][]float64, n)
		for i := range n {
			all := true
			for k, t := range tables {
				if cols := get(t); cols == nil || cols[perms[k][i]] == nil {
					all = false
					break
				}
			}
			if !all {
				continue
			}
			for k, t := range tables {
				res[i] = append(res[i], get(t)[perms[k][i]]...)
			}
		}
		if !anyCol(res) {
			return nil
		}
		return res
	}
	out.Perf = join(func(t *Table) [][]float64 { return t.Perf })
	out.Cost = join(func(t *Table) [][]float64 { return t.Cost })
	out.Conf = join(func(t *Table) [][]float64 { return t.Conf })
	if out.Conf == nil {
		out.Conf = make([][]float64, n)
	}
	out.TokensIn = join(func(t *Table) [][]float64 { return t.TokensIn })
	out.TokensOut = join(func(t *Table) [][]float64 { return t.TokensOut })
	out.LatencyMS = join(func(t *Table) [][]float64 { return t.LatencyMS })
	joinStr := func(get func(*Table) []string) []string {
		var res []string
		for _, t := range tables {
			if get(t) == nil {
				return nil
			}
			res = append(res, get(t)...)
		}
		return res
	}
	out.Prompt = joinStr(func(t *Table) []string { return t.Prompt })
	out.EvalName = joinStr(func(t *Table) []string { return t.EvalName })
	seenIgn := map[string]bool{}
	for _, t := range tables {
		out.Origin = append(out.Origin, t.Origin...)
		for _, h := range t.Ignored {
			if !seenIgn[h] {
				seenIgn[h] = true
				out.Ignored = append(out.Ignored, h)
			}
		}
	}
	return out, nil
}

func fileOf(t *Table) string {
	if len(t.Origin) > 0 {
		return t.Origin[0].File
	}
	return "table"
}
