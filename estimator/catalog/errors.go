package catalog

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found in a catalog file.
type Error struct {
	File  string // file name as given to the loader
	Line  int    // 1-based; 0 when unknown
	Col   int    // 1-based; 0 when unknown
	Model string // model id, `#N` (1-based) when the entry has no id, "" for file-level problems
	Field string // key path inside the entry, e.g. "tier[1].input_per_mtok"; may be ""
	Msg   string // what is wrong and what to do
}

// Error formats e as `file:line:col: model "id": field: message`, leaving
// out the parts that are not known.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteString(":" + strconv.Itoa(e.Col))
		}
	}
	b.WriteString(": ")
	if e.Model != "" {
		if strings.HasPrefix(e.Model, "#") {
			b.WriteString("model " + e.Model + ": ")
		} else {
			b.WriteString("model " + strconv.Quote(e.Model) + ": ")
		}
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors lists every problem found in one load, in file and position order.
type Errors []*Error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the single problems to errors.Is / errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}

// errOrNil returns es as an error, or nil when empty.
func (es Errors) errOrNil() error {
	if len(es) == 0 {
		return nil
	}
	es.sort()
	return es
}
