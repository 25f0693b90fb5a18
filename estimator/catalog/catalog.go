package catalog

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
)

// Catalog is an ordered set of models indexed by id. A Catalog is not
// modified after it is built; it is safe for concurrent use.
type Catalog struct {
	models  []*Model
	byID    map[string]*Model
	reports []ImportReport
}

// ImportReport says what a LiteLLM import kept and left out.
type ImportReport struct {
	File     string
	Entries  int            // model entries in the file (sample_spec excluded)
	Loaded   int            // entries that became catalog models
	Skipped  map[string]int // reason -> entries, e.g. "mode embedding"
	Problems Errors         // entries that could not be read (also counted in Skipped)
}

func (c *Catalog) add(m *Model) {
	c.models = append(c.models, m)
	c.byID[m.ID] = m
}

// Len returns the number of models.
func (c *Catalog) Len() int { return len(c.models) }

// Lookup returns the model with the id.
func (c *Catalog) Lookup(id string) (*Model, bool) {
	m, ok := c.byID[id]
	return m, ok
}

// Models returns every model in catalog order (file order; merged catalogs
// keep the base's order and append new ids).
func (c *Catalog) Models() []*Model { return append([]*Model(nil), c.models...) }

// Reports returns the import reports of the LiteLLM files in the catalog,
// in load order; TOML files have none.
func (c *Catalog) Reports() []ImportReport { return append([]ImportReport(nil), c.reports...) }

// Filter returns the models for which keep is true, in catalog order.
func (c *Catalog) Filter(keep func(*Model) bool) []*Model {
	var out []*Model
	for _, m := range c.models {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// ByProvider returns the models of the provider.
func (c *Catalog) ByProvider(provider string) []*Model {
	return c.Filter(func(m *Model) bool { return m.Provider == provider })
}

// ByTask returns the models with an explicit quality score for the task
// kind (not only a "default" score).
func (c *Catalog) ByTask(kind string) []*Model {
	return c.Filter(func(m *Model) bool { _, ok := m.Quality[kind]; return ok })
}

// Match returns the models whose id matches the path.Match glob, e.g.
// "openai/*" or "anthropic/claude-*-4-5". A malformed pattern is an error.
func (c *Catalog) Match(pattern string) ([]*Model, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("catalog: bad model pattern %q: %w", pattern, err)
	}
	return c.Filter(func(m *Model) bool { ok, _ := path.Match(pattern, m.ID); return ok }), nil
}

// Merge overlays over on base and returns a new catalog; neither input is
// modified. A model of over whose id is in base overrides base's model field
// by field: only the keys over's file wrote replace base's values (rates one
// by one; service tiers per tier and rate; quality and quality_source per
// task kind; tiers and modality lists as a whole). Models with new ids are
// appended in over's order. Either argument may be nil.
func Merge(base, over *Catalog) *Catalog {
	out := &Catalog{byID: map[string]*Model{}}
	if base != nil {
		for _, m := range base.models {
			out.add(m.Clone())
		}
		out.reports = append(out.reports, base.reports...)
	}
	if over == nil {
		return out
	}
	for _, m := range over.models {
		if cur, ok := out.byID[m.ID]; ok {
			overlay(cur, m)
			continue
		}
		out.add(m.Clone())
	}
	out.reports = append(out.reports, over.reports...)
	return out
}

//go:embed data/default.toml
var defaultTOML []byte

var defaultOnce = sync.OnceValues(func() (*Catalog, error) {
	return loadTOML("estimator/catalog/data/default.toml", defaultTOML, true)
})

// Default returns the catalog embedded in the binary. It is parsed once;
// callers share the result and must not modify its models.
func Default() (*Catalog, error) { return defaultOnce() }

// Load parses a catalog file of either format: LiteLLM's JSON (content
// starting with "{") or the project's TOML.
func Load(name string, data []byte) (*Catalog, error) {
	if isJSON(data) {
		return LoadLiteLLM(name, data)
	}
	return LoadTOML(name, data)
}

func isJSON(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '{'
}

// LoadFiles builds the catalog the CLI uses: the embedded default (unless
// withDefault is false, for --no-default-catalog) overlaid by each file in
// order (repeatable --catalog). Problems in every file are reported
// together.
func LoadFiles(paths []string, withDefault bool) (*Catalog, error) {
	var cat *Catalog
	var errs Errors
	if withDefault {
		d, err := Default()
		if err != nil {
			return nil, err
		}
		cat = d
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			msg := err.Error()
			var pe *fs.PathError
			if errors.As(err, &pe) {
				msg = pe.Err.Error()
			}
			errs = append(errs, &Error{File: p, Msg: "cannot read catalog: " + msg})
			continue
		}
		c, err := Load(p, data)
		if err != nil {
			var es Errors
			if errors.As(err, &es) {
				errs = append(errs, es...)
			} else {
				errs = append(errs, &Error{File: p, Msg: err.Error()})
			}
			continue
		}
		cat = Merge(cat, c)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if cat == nil {
		cat = &Catalog{byID: map[string]*Model{}}
	}
	return cat, nil
}
