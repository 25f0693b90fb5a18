package main

import (
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
)

// spendRow is what one workflow (or gateway route) spent over the window,
// and what the same answers would have cost on the baseline model.
type spendRow struct {
	Group        string  `json:"group"` // workflow name, or router:ROUTE for the gateway
	Runs         int     `json:"runs"`
	Calls        int     `json:"calls"`
	CostUSD      float64 `json:"cost_usd"`
	CostNanoUSD  int64   `json:"cost_nano_usd"`
	BaselineUSD  float64 `json:"baseline_usd"`
	SavedUSD     float64 `json:"saved_usd"`
	SavedPercent float64 `json:"saved_percent"`
	CacheRead    int64   `json:"cache_read_tokens"`
}

// spendOut is costwise spend --json.
type spendOut struct {
	Since    time.Time  `json:"since"`
	Baseline string     `json:"baseline"`
	Rows     []spendRow `json:"rows"`
	Total    spendRow   `json:"total"`
}

func newSpendCmd(cf *catalogFlags) *cobra.Command {
	var ledgerPath, baselineID string
	var since time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "spend",
		Short: "What real runs and gateway requests spent, by workflow or route, against one frontier model",
		Long: `Sum what the ledger's real (not simulated) runs spent since --since, by workflow (a gateway
route shows as router:ROUTE): runs, provider calls, cost (every paid call, escalations included),
and the baseline: what the answers that were kept would have cost on one model (--baseline, by
default the catalog's highest-quality model), pricing the same token counts at its rates. The
baseline is an estimate: another model's tokenizer counts the same text somewhat differently,
and it would not have needed the escalations. CACHE READ is prompt tokens read from a
provider's cache.`,
		Example: `  costwise spend
  costwise spend --since 168h --baseline anthropic/claude-opus-4-7 --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since <= 0 {
				return usageError("--since must be positive, e.g. 24h")
			}
			cat, err := cf.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			base, err := spendBaseline(cat, baselineID)
			if err != nil {
				return err
			}
			l, err := openLedger(ledgerPath)
			if err != nil {
				return err
			}
			defer l.Close()
			from := time.Now().Add(-since).UTC()
			obs, err := l.Observations(from)
			if err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			out := spendOut{Since: from, Baseline: base.ID, Rows: spendRows(obs, base)}
			out.Total = spendTotal(out.Rows)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			if len(out.Rows) == 0 {
				fmt.Fprintf(w, "no real runs in the ledger since %s\n", from.Format(time.RFC3339))
				return nil
			}
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "WORKFLOW\tRUNS\tCALLS\tCOST\tON %s\tSAVED\tCACHE READ\t\n", base.ID)
			for _, r := range append(out.Rows, out.Total) {
				fmt.Fprintf(tw, "%s\t%d\t%d\t$%.6f\t$%.6f\t$%.6f (%.0f%%)\t%d\t\n", r.Group, r.Runs, r.Calls, r.CostUSD, r.BaselineUSD,
					r.SavedUSD, r.SavedPercent, r.CacheRead)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "since %s; the baseline prices the kept answers' token counts at %s's rates (an estimate)\n",
				from.Format(time.RFC3339), base.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ledgerPath, "ledger", "", "ledger database (default $XDG_DATA_HOME/costwise/ledger.db)")
	f.DurationVar(&since, "since", 24*time.Hour, "how far back to look")
	f.StringVar(&baselineID, "baseline", "", "the model to compare with (default: the catalog's highest-quality model with text prices)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// spendBaseline is the model named, or the catalog's model of highest
// default quality whose input and output prices are known.
func spendBaseline(cat *catalog.Catalog, id string) (*catalog.Model, error) {
	if id != "" {
		m, ok := cat.Lookup(id)
		if !ok {
			return nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("--baseline %s is not in the catalog (costwise models lists it)", id)}
		}
		return m, nil
	}
	var best *catalog.Model
	bestQ := -1.0
	for _, m := range cat.Models() {
		q, ok := m.QualityFor("default")
		if !ok || m.Deprecated || !m.InputPerMTok.Known || !m.OutputPerMTok.Known {
			continue
		}
		if q > bestQ || (q == bestQ && m.ID < best.ID) {
			best, bestQ = m, q
		}
	}
	if best == nil {
		return nil, &exitError{code: exitBadInput, msg: "the catalog has no priced model with a quality score; pass --baseline"}
	}
	return best, nil
}

// spendRows groups the calls by workflow, the costliest first.
func spendRows(obs []ledger.ObservationRow, base *catalog.Model) []spendRow {
	by := map[string]*spendRow{}
	runs := map[string]map[string]bool{}
	for _, o := range obs {
		r := by[o.WorkflowName]
		if r == nil {
			r = &spendRow{Group: o.WorkflowName}
			by[o.WorkflowName], runs[o.WorkflowName] = r, map[string]bool{}
		}
		runs[o.WorkflowName][o.RunID] = true
		r.Calls++
		r.CostNanoUSD += o.CostNano
		r.CacheRead += o.Usage.CacheReadTokens
		if o.Answer {
			r.BaselineUSD += catalog.Price(base, executor.UsageOf(o.Usage)).TotalUSD
		}
	}
	out := make([]spendRow, 0, len(by))
	for g, r := range by {
		r.Runs = len(runs[g])
		finishSpend(r)
		out = append(out, *r)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].CostNanoUSD != out[b].CostNanoUSD {
			return out[a].CostNanoUSD > out[b].CostNanoUSD
		}
		return out[a].Group < out[b].Group
	})
	return out
}

// spendTotal adds the rows up.
func spendTotal(rows []spendRow) spendRow {
	t := spendRow{Group: "total"}
	for _, r := range rows {
		t.Runs, t.Calls, t.CostNanoUSD, t.BaselineUSD, t.CacheRead = t.Runs+r.Runs, t.Calls+r.Calls, t.CostNanoUSD+r.CostNanoUSD,
			t.BaselineUSD+r.BaselineUSD, t.CacheRead+r.CacheRead
	}
	finishSpend(&t)
	return t
}

// finishSpend derives a row's USD figures from its nano-USD cost.
func finishSpend(r *spendRow) {
	r.CostUSD = float64(r.CostNanoUSD) / 1e9
	r.SavedUSD = r.BaselineUSD - r.CostUSD
	if r.BaselineUSD > 0 {
		r.SavedPercent = 100 * r.SavedUSD / r.BaselineUSD
	}
}
