package cascade

import (
	"errors"
	"fmt"
	"sort"
)

// ModelResult is one single model's means on the training and test rows.
type ModelResult struct {
	Model string
	Train Metrics
	Test  Metrics
}

// CurvePoint is the fitted cascade's model sequence at other thresholds,
// replayed on the test rows.
type CurvePoint struct {
	Level      float64   // quantile level of the thresholds, 0..1
	Thresholds []float64 // training confidence quantiles at Level
	Test       Metrics
}

// Report compares policies fitted on training rows on held-out rows. Every
// choice in it (strongest, best single, cascade) is made on the training
// rows; every Test metric is a mean per query over the test rows.
type Report struct {
	Target            float64
	TargetDefault     bool
	TrainRows         int
	TestRows          int
	Models            []ModelResult // cheapest first on training cost
	Strongest         ModelResult   // highest training quality
	BestSingle        ModelResult   // cheapest meeting the target on training rows
	Fit               FitResult
	Cascade           Metrics // the fitted policy on the test rows
	Oracle            Metrics // per-query oracle on the test rows
	SavingVsStrongest float64 // 1 - cascade cost / strongest cost on the test rows
	Curve             []CurvePoint
	// Points are other policies replayed on the same test rows (a prompt
	// classifier, say), for WriteSVG to draw; Run leaves it empty.
	Points []PlotPoint
}

// PlotPoint is a labelled policy's held-out means, drawn by WriteSVG.
type PlotPoint struct {
	Label string // short name shown next to the point, e.g. "classifier"
	Title string // longer description shown on hover; Label when ""
	Test  Metrics
}

// CurveLevels is the number of steps of Report.Curve.
const CurveLevels = 50

// Run fits a policy on train and evaluates it, every single model and the
// oracle on test. The two tables must declare the same models.
func Run(train, test *Table, opt Options) (*Report, error) {
	if test.Len() == 0 {
		return nil, errors.New("the test table has no rows")
	}
	if err := sameModels(train, test); err != nil {
		return nil, err
	}
	fit, err := Fit(train, opt)
	if err != nil {
		return nil, err
	}
	r := &Report{Target: fit.Target, TargetDefault: fit.TargetDefault, TrainRows: train.Len(), TestRows: test.Len(), Fit: fit}
	for _, m := range train.Models {
		tr, _ := Evaluate(train, Single(m))
		te, _ := Evaluate(test, Single(m))
		mr := ModelResult{Model: m, Train: tr, Test: te}
		r.Models = append(r.Models, mr)
		if m == fit.Strongest {
			r.Strongest = mr
		}
		if m == fit.BestSingle {
			r.BestSingle = mr
		}
	}
	sort.SliceStable(r.Models, func(a, b int) bool { return r.Models[a].Train.CostUSD < r.Models[b].Train.CostUSD })
	if r.Cascade, err = Evaluate(test, fit.Policy); err != nil {
		return nil, err
	}
	r.Oracle = Oracle(test)
	if c := r.Strongest.Test.CostUSD; c > 0 {
		r.SavingVsStrongest = 1 - r.Cascade.CostUSD/c
	}
	if len(fit.Policy.Models) > 1 {
		c, _ := compile(train, fit.Policy)
		sorted := sortedByConf(train)
		for l := 0; l <= CurveLevels; l++ {
			level := float64(l) / CurveLevels
			p := Policy{Models: fit.Policy.Models, Thresholds: make([]float64, len(fit.Policy.Thresholds))}
			for k := range p.Thresholds {
				m := c.model[k]
				n := len(sorted[m])
				pos := int(float64(n-1)*level + 0.5)
				p.Thresholds[k] = train.Conf[m][sorted[m][n-1-pos]]
			}
			met, err := Evaluate(test, p)
			if err != nil {
				return nil, err
			}
			r.Curve = append(r.Curve, CurvePoint{Level: level, Thresholds: p.Thresholds, Test: met})
		}
	}
	return r, nil
}

// RunSplit splits all into training and test rows (see Split) and runs
// Run on them; the fit sees copies of the training rows only.
func RunSplit(all *Table, testFrac float64, seed uint64, opt Options) (*Report, error) {
	train, test, err := Split(all.Len(), testFrac, seed)
	if err != nil {
		return nil, err
	}
	return Run(all.Subset(train), all.Subset(test), opt)
}

// sameModels checks that two tables declare the same models with the same
// confidence columns.
func sameModels(a, b *Table) error {
	if len(a.Models) != len(b.Models) {
		return fmt.Errorf("the training rows have %d models and the test rows %d; give both the same model columns", len(a.Models), len(b.Models))
	}
	for i, m := range a.Models {
		j, ok := b.Model(m)
		if !ok {
			return fmt.Errorf("model %q is in the training rows but not in the test rows; give both the same model columns", m)
		}
		if (a.Conf[i] == nil) != (b.Conf[j] == nil) {
			return fmt.Errorf("model %q has a confidence column in one of the training and test tables only; give both the same columns", m)
		}
	}
	return nil
}
