package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/internal/suggest"
	"github.com/costwise/costwise/planner/cascade"
)

// parseMaps reads repeated --map NAME=ID flags into a renaming.
func parseMaps(maps []string) (map[string]string, error) {
	if len(maps) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(maps))
	target := map[string]string{}
	for _, m := range maps {
		name, id, ok := strings.Cut(m, "=")
		name, id = strings.TrimSpace(name), strings.TrimSpace(id)
		switch {
		case !ok || name == "" || id == "":
			return nil, usageError("--map %q: write --map NAME=ID, NAME a model of the outcome table and ID a catalog model (e.g. --map gpt-4o=openai/gpt-4o)", m)
		case out[name] != "" && out[name] != id:
			return nil, usageError("--map maps %q twice, to %q and to %q; keep one", name, out[name], id)
		case target[id] != "" && target[id] != name:
			return nil, usageError("--map maps both %q and %q to %q; each catalog model may stand for one table model", target[id], name, id)
		}
		out[name], target[id] = id, name
	}
	return out, nil
}

// loadCatalog loads the catalog when --map or --save-cascade need it and
// checks every --map target against it.
func (ef *evalFlags) loadCatalog(stderr io.Writer) error {
	if len(ef.rename) == 0 && ef.saveCascade == "" {
		return nil
	}
	cat, err := ef.cf.load(stderr)
	if err != nil {
		return err
	}
	ef.cat = cat
	names := make([]string, 0, len(ef.rename))
	for name := range ef.rename {
		names = append(names, name)
	}
	sort.Strings(names)
	var bad []string
	for _, name := range names {
		if err := ef.checkCatalogID(ef.rename[name]); err != "" {
			bad = append(bad, fmt.Sprintf("--map %s=%s: %s", name, ef.rename[name], err))
		}
	}
	if len(bad) > 0 {
		return &exitError{code: exitBadInput, msg: strings.Join(bad, "\ncostwise: ")}
	}
	return nil
}

// checkCatalogID says why id is not a model of the loaded catalog, with a
// suggestion; "" when it is one.
func (ef *evalFlags) checkCatalogID(id string) string {
	if _, ok := ef.cat.Lookup(id); ok {
		return ""
	}
	ids := make([]string, 0, ef.cat.Len())
	for _, m := range ef.cat.Models() {
		ids = append(ids, m.ID)
	}
	msg := fmt.Sprintf("%q is not a model of the catalog", id)
	if s := suggest.Closest(id, ids); s != "" {
		return msg + fmt.Sprintf("; did you mean %q?", s)
	}
	var near []string
	for _, c := range ids {
		if strings.HasSuffix(c, "/"+id) || strings.Contains(c, id) {
			near = append(near, c)
		}
	}
	if len(near) > 0 {
		if len(near) > 5 {
			near = near[:5]
		}
		return msg + "; did you mean " + strings.Join(near, ", ") + "?"
	}
	return msg + "; list catalog models with 'costwise models' (or add --catalog FILE)"
}

// saveSpec writes the fitted cascade with --save-cascade. spec is what was
// written (nil when nothing was); notSaved, when not nil, is the exit
// error for a fit that is not a cascade, returned once the report is
// printed; err stops the command at once.
func (ef *evalFlags) saveSpec(stderr io.Writer, rep *cascade.Report) (spec *estimator.Cascade, notSaved, err error) {
	if ef.saveCascade == "" {
		return nil, nil, nil
	}
	p := rep.Fit.Policy
	if !rep.Fit.Feasible {
		fmt.Fprintf(stderr, "costwise: --save-cascade: no policy reaches the target quality on the training rows; nothing written to %s\n", ef.saveCascade)
		return nil, nil, nil
	}
	if len(p.Models) < 2 {
		why := ""
		if rep.Fit.Note != "" {
			why = " (" + rep.Fit.Note + ")"
		}
		return nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("--save-cascade: the fit is the single model %s, not a cascade%s; nothing written to %s",
			p.Models[0], why, ef.saveCascade)}, nil
	}
	var bad []string
	for _, m := range p.Models {
		if why := ef.checkCatalogID(m); why != "" {
			bad = append(bad, fmt.Sprintf("model %s of the fitted cascade: %s; the planner needs catalog IDs: add --map %s=PROVIDER/MODEL", m, why, m))
		}
	}
	if len(bad) > 0 {
		return nil, nil, &exitError{code: exitBadInput, msg: "--save-cascade: " + strings.Join(bad, "\ncostwise: --save-cascade: ")}
	}
	c, err := cascade.NewSpec(p, rep.Cascade, cascade.SpecOptions{Task: ef.task, Signal: ef.signal, Source: ef.specSource(rep)})
	if err != nil {
		return nil, nil, &exitError{code: exitBadInput, msg: "--save-cascade: " + err.Error()}
	}
	for k, id := range c.Models[:len(c.Models)-1] {
		m, _ := ef.cat.Lookup(id)
		if c.Signal == estimator.SignalLogprob && (m.Provider == "anthropic" || m.Provider == "gemini") {
			fmt.Fprintf(stderr, "costwise: warning: stage %d (%s) cannot give the logprob signal: %s calls return no log-probabilities, so the planner will not use this cascade; fit on validate or self_check confidences instead\n", k+1, id, m.Provider)
		}
	}
	if err := cascade.WriteSpecsFile(ef.saveCascade, []estimator.Cascade{c}); err != nil {
		return nil, nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("%s: cannot write the cascade: %v", ef.saveCascade, unwrapPath(err))}
	}
	return &c, nil, nil
}

// specSource says where the saved cascade was fitted and measured.
func (ef *evalFlags) specSource(rep *cascade.Report) string {
	if len(ef.train) > 0 {
		return fmt.Sprintf("trained on %s, measured on %s (%d rows)", strings.Join(ef.train, ", "), strings.Join(ef.test, ", "), rep.TestRows)
	}
	return fmt.Sprintf("%s, held-out split %g (seed %d), %d of %d rows",
		strings.Join(ef.sources(), ", "), ef.split, ef.seed, rep.TestRows, rep.TrainRows+rep.TestRows)
}

// evalSavedJSON is the cascade --save-cascade wrote.
type evalSavedJSON struct {
	File       string    `json:"file"`
	ID         string    `json:"id"`
	Task       string    `json:"task"`
	Models     []string  `json:"models"`
	Thresholds []float64 `json:"thresholds"`
	Signal     string    `json:"signal"`
	Quality    float64   `json:"quality"`
	Reach      []float64 `json:"reach"`
	Rows       int       `json:"rows"`
	Source     string    `json:"source"`
}

func savedCascadeJSON(file string, c *estimator.Cascade) *evalSavedJSON {
	return &evalSavedJSON{File: file, ID: c.ID(), Task: c.Task, Models: c.Models, Thresholds: c.Thresholds, Signal: c.Signal,
		Quality: c.Quality, Reach: c.Reach, Rows: c.Rows, Source: c.Source}
}

// fmtShares formats shares as percentages: "[100%, 34.2%]".
func fmtShares(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(100*x, 'f', 1, 64) + "%"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
