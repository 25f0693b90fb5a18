package tomlpos

import (
	"errors"
	"fmt"
	"sort"
)

// Problems collects what is wrong in a decoded TOML file, each problem
// placed at its key, and reports them all in file order.
type Problems struct {
	name string
	ix   *Index
	list []problem
}

type problem struct {
	pos Pos
	msg string
}

// NewProblems starts a collection for the file name indexed by ix.
func NewProblems(name string, ix *Index) *Problems { return &Problems{name: name, ix: ix} }

// At records msg at the key path ("providers.openai.timeout_s") as
// "name:line:col: path: msg".
func (p *Problems) At(path, msg string) { p.AtPos(p.ix.Key(path), path, msg) }

// AtPos records msg at an explicit position (an undecoded key, say).
func (p *Problems) AtPos(pos Pos, path, msg string) {
	p.list = append(p.list, problem{pos, fmt.Sprintf("%s:%s: %s: %s", p.name, pos, path, msg)})
}

// Err returns every problem, in file order, joined; nil when there is none.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool {
		a, b := p.list[i].pos, p.list[j].pos
		return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
	})
	errs := make([]error, len(p.list))
	for i, x := range p.list {
		errs[i] = errors.New(x.msg)
	}
	return errors.Join(errs...)
}
