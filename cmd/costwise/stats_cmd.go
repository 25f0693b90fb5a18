package main

import (
	"fmt"
	"math"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/costwise/costwise/estimator/learn"
	"github.com/costwise/costwise/executor/ledger"
)

type statsFlags struct {
	task, model string
	asJSON      bool
	ledgerPath  string
	halfLife    time.Duration
	window      time.Duration
}

func newStatsCmd(cf *catalogFlags) *cobra.Command {
	var sf statsFlags
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the observed cost-performance of each model on each task, and drift alerts",
		Long: `Read every finished provider call of real (not simulated) runs from the ledger and show,
per task kind and model: calls, success rate, output tokens p50/p95, latency p50/p95,
USD per successful call and re-route rate. Recent calls weigh more (--half-life).

SUCCESS is the posterior mean of the success rate, with the catalog's quality score
worth 10 calls as the prior, and its 90% credible interval; CATALOG is that prior.
A call counts as a success when it ended ok and passed validation, or by the score
given with 'costwise feedback' to the answer it produced. Calls stopped by the
budget, by rate limits or by missing credentials say nothing about the model and
are left out.

Drift alerts compare the last --window of calls with the window before it: success
(two-proportion z-test), median latency, median output tokens and median cost per
call (relative change, also tested for significance); each window needs 20 calls.`,
		Example: `  costwise stats
  costwise stats --task code --model 'anthropic/*'
  costwise stats --half-life 72h --window 6h --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runStats(cmd, cf, &sf) },
	}
	f := cmd.Flags()
	f.StringVar(&sf.task, "task", "", "only this task kind (e.g. code, extraction)")
	f.StringVar(&sf.model, "model", "", "only models matching this id or glob (e.g. 'openai/*')")
	f.BoolVar(&sf.asJSON, "json", false, "print JSON")
	f.StringVar(&sf.ledgerPath, "ledger", "", "ledger database (default $XDG_DATA_HOME/costwise/ledger.db)")
	f.DurationVar(&sf.halfLife, "half-life", learn.DefaultHalfLife, "age at which a call weighs half as much as a new one")
	f.DurationVar(&sf.window, "window", 24*time.Hour, "drift window: the last WINDOW of calls is compared with the WINDOW before")
	return cmd
}

func runStats(cmd *cobra.Command, cf *catalogFlags, sf *statsFlags) error {
	if sf.halfLife <= 0 {
		return usageError("--half-life must be positive, got %v", sf.halfLife)
	}
	if sf.window <= 0 {
		return usageError("--window must be positive, got %v", sf.window)
	}
	if sf.model != "" {
		if _, err := path.Match(sf.model, ""); err != nil {
			return usageError("--model %q is not a valid glob: %v", sf.model, err)
		}
	}
	cat, err := cf.load(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	l, err := openLedger(sf.ledgerPath)
	if err != nil {
		return err
	}
	defer l.Close()

	now := time.Now().UTC()
	// Calls older than 20 half-lives weigh under one millionth; the drift
	// windows may reach further back.
	since := now.Add(-max(20*sf.halfLife, 2*sf.window))
	rows, err := l.Observations(since)
	if err != nil {
		return &exitError{code: exitBadInput, msg: err.Error()}
	}
	obs := observationsFromRows(rows, sf.task, sf.model)
	model := learn.Fit(obs, now, learn.Options{HalfLife: sf.halfLife, Catalog: cat})
	alerts := learn.Drift(obs, sf.window, learn.Thresholds{End: now})

	if sf.asJSON {
		return writeJSON(cmd.OutOrStdout(), learnedJSON(now, sf, len(obs), model.Stats(), alerts))
	}
	out := cmd.OutOrStdout()
	if len(obs) == 0 {
		fmt.Fprintf(out, "no calls recorded in %s since %s%s (simulated runs are not counted)\n",
			l.Path(), since.Format(time.RFC3339), filterNote(sf))
		return nil
	}
	fmt.Fprintf(out, "%d calls%s, half-life %v (recent calls weigh more)\n", len(obs), filterNote(sf), sf.halfLife)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tMODEL\tCALLS\tSUCCESS (90% CI)\tCATALOG\tTOKENS P50/P95\tLATENCY P50/P95\tUSD/SUCCESS\tREROUTE")
	for _, s := range model.Stats() {
		prior := "-"
		if s.PriorKnown {
			prior = fmt.Sprintf("%.2f", s.Prior)
		}
		perSuccess := "-"
		if !math.IsInf(s.CostPerSuccessUSD, 0) {
			perSuccess = "$" + usd(s.CostPerSuccessUSD)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f (%.2f-%.2f)\t%s\t%.0f/%.0f\t%s/%s\t%s\t%.0f%%\n",
			taskLabel(s.Task), s.Model, s.Calls, s.Success, s.SuccessLow, s.SuccessHigh, prior,
			s.OutputTokensP50, s.OutputTokensP95, shortDuration(s.LatencyP50), shortDuration(s.LatencyP95),
			perSuccess, 100*s.RerouteRate)
	}
	tw.Flush()
	if len(alerts) == 0 {
		fmt.Fprintf(out, "no drift: the last %v matches the %v before (where both have 20+ calls)\n", sf.window, sf.window)
		return nil
	}
	fmt.Fprintf(out, "drift (last %v vs the %v before):\n", sf.window, sf.window)
	for _, a := range alerts {
		fmt.Fprintf(out, "  %s\n", a.Message)
	}
	return nil
}

// observationsFromRows turns ledger rows into learn observations, keeping
// those of the task (if given) and of models matching the glob (if given).
// Calls stopped by the budget, a rate limit or bad credentials say nothing
// about the model's answer and are dropped; a node's feedback judges only
// its answer call.
func observationsFromRows(rows []ledger.ObservationRow, task, modelGlob string) []learn.Observation {
	out := make([]learn.Observation, 0, len(rows))
	for _, r := range rows {
		switch r.Outcome {
		case ledger.OutcomeBudget, ledger.OutcomeRateLimited, ledger.OutcomeAuth, ledger.OutcomeInterrupted:
			continue
		}
		if task != "" && r.Task != task {
			continue
		}
		if modelGlob != "" {
			if ok, _ := path.Match(modelGlob, r.Model); !ok {
				continue
			}
		}
		u := r.Usage
		o := learn.Observation{
			Task: r.Task, Model: r.Model, Time: r.EndedAt,
			OK:           r.Outcome == ledger.OutcomeOK,
			Escalated:    r.Escalated,
			InputTokens:  u.InputTokens + u.CacheReadTokens + u.CacheWrite5mTokens + u.CacheWrite1hTokens,
			OutputTokens: u.OutputTokens,
			Latency:      time.Duration(r.LatencyMS) * time.Millisecond,
			CostNano:     r.CostNano,
			// A cascade that set the answer aside did not show it wrong.
			Unjudged: r.Outcome == ledger.OutcomeInvalid && r.Confidence != nil,
		}
		if r.Answer && r.Feedback != nil {
			v := *r.Feedback
			o.Feedback = &v
		}
		out = append(out, o)
	}
	return out
}

func filterNote(sf *statsFlags) string {
	var parts []string
	if sf.task != "" {
		parts = append(parts, "task "+sf.task)
	}
	if sf.model != "" {
		parts = append(parts, "model "+sf.model)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func taskLabel(t string) string {
	if t == "" {
		return "(none)"
	}
	return t
}

func shortDuration(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// JSON contract of `costwise stats --json`.
type learnedOut struct {
	Now          time.Time      `json:"now"`
	HalfLifeS    float64        `json:"half_life_s"`
	WindowS      float64        `json:"window_s"`
	Task         string         `json:"task,omitempty"`
	Model        string         `json:"model,omitempty"`
	Observations int            `json:"observations"`
	Stats        []learnedRow   `json:"stats"`
	Drift        []learnedAlert `json:"drift"`
}

type learnedRow struct {
	Task            string    `json:"task"`
	Model           string    `json:"model"`
	Calls           int       `json:"calls"`
	Weight          float64   `json:"weight"`
	Success         float64   `json:"success"`
	SuccessLow      float64   `json:"success_low"`
	SuccessHigh     float64   `json:"success_high"`
	ObservedSuccess float64   `json:"observed_success"`
	PriorQuality    *float64  `json:"prior_quality"`
	PriorWeight     float64   `json:"prior_weight"`
	FeedbackCalls   int       `json:"feedback_calls"`
	Answered        int       `json:"answered"`
	OutputTokensP50 float64   `json:"output_tokens_p50"`
	OutputTokensP95 float64   `json:"output_tokens_p95"`
	LatencyP50S     float64   `json:"latency_p50_s"`
	LatencyP95S     float64   `json:"latency_p95_s"`
	CostPerCallUSD  float64   `json:"cost_per_call_usd"`
	USDPerSuccess   *float64  `json:"usd_per_success"`
	RerouteRate     float64   `json:"reroute_rate"`
	First           time.Time `json:"first"`
	Last            time.Time `json:"last"`
}

type learnedAlert struct {
	Task          string   `json:"task"`
	Model         string   `json:"model"`
	Metric        string   `json:"metric"`
	Previous      float64  `json:"previous"`
	Current       float64  `json:"current"`
	Change        float64  `json:"change"`
	Z             *float64 `json:"z"`
	PreviousCalls int      `json:"previous_calls"`
	CurrentCalls  int      `json:"current_calls"`
	Message       string   `json:"message"`
}

// finite is v, or nil (JSON null) when v is infinite or NaN.
func finite(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

func learnedJSON(now time.Time, sf *statsFlags, n int, stats []learn.Stats, alerts []learn.Alert) learnedOut {
	out := learnedOut{Now: now, HalfLifeS: sf.halfLife.Seconds(), WindowS: sf.window.Seconds(), Task: sf.task, Model: sf.model,
		Observations: n, Stats: []learnedRow{}, Drift: []learnedAlert{}}
	for _, s := range stats {
		r := learnedRow{Task: s.Task, Model: s.Model, Calls: s.Calls, Weight: s.Weight, Success: s.Success,
			SuccessLow: s.SuccessLow, SuccessHigh: s.SuccessHigh, ObservedSuccess: s.Observed, PriorWeight: s.PriorWeight,
			FeedbackCalls: s.FeedbackCalls, Answered: s.Answered, OutputTokensP50: s.OutputTokensP50, OutputTokensP95: s.OutputTokensP95,
			LatencyP50S: s.LatencyP50.Seconds(), LatencyP95S: s.LatencyP95.Seconds(), CostPerCallUSD: s.CostPerCallUSD,
			USDPerSuccess: finite(s.CostPerSuccessUSD), RerouteRate: s.RerouteRate, First: s.First, Last: s.Last}
		if s.PriorKnown {
			r.PriorQuality = finite(s.Prior)
		}
		out.Stats = append(out.Stats, r)
	}
	for _, a := range alerts {
		out.Drift = append(out.Drift, learnedAlert{Task: a.Task, Model: a.Model, Metric: string(a.Metric), Previous: a.Previous,
			Current: a.Current, Change: a.Change, Z: finite(a.Z), PreviousCalls: a.PreviousCalls, CurrentCalls: a.CurrentCalls,
			Message: a.Message})
	}
	return out
}

// newFeedbackCmd takes the catalog flags like the other commands; scoring
// an output needs no catalog.
func newFeedbackCmd(_ *catalogFlags) *cobra.Command {
	var ledgerPath, note string
	var score float64
	var good, bad bool
	cmd := &cobra.Command{
		Use:   "feedback RUN_ID NODE (--score 0..1 | --ok | --bad)",
		Short: "Score a node's output; 'costwise stats' and learning count it as a fractional success",
		Long: `Record how good the output of one node of a recorded run was: --score from 0 (useless)
to 1 (fully right), --ok for 1 or --bad for 0. The latest score of a node replaces the
validated outcome of the call that produced its output when costwise learns each
model's success rate per task.`,
		Example: `  costwise feedback r_20261127T041200Z_ab12cd classify --bad
  costwise feedback r_20261127T041200Z_ab12cd answer --score 0.7 --note "missed the refund policy"`,
		Args: exactArgs(2, "a run id and a node id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			given := 0
			for _, name := range []string{"score", "ok", "bad"} {
				if cmd.Flags().Changed(name) {
					given++
				}
			}
			if given != 1 {
				return usageError("give exactly one of --score 0..1, --ok or --bad")
			}
			switch {
			case cmd.Flags().Changed("ok"):
				if !good {
					return usageError("--ok=false means nothing; use --bad or --score")
				}
				score = 1
			case cmd.Flags().Changed("bad"):
				if !bad {
					return usageError("--bad=false means nothing; use --ok or --score")
				}
				score = 0
			}
			if math.IsNaN(score) || score < 0 || score > 1 {
				return usageError("--score must be from 0 (bad) to 1 (good), got %v", score)
			}
			l, err := openLedger(ledgerPath)
			if err != nil {
				return err
			}
			defer l.Close()
			id, err := l.AddFeedbackNote(args[0], args[1], score, note)
			if err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recorded score %g for node %s of run %s (feedback #%d)\n", score, args[1], args[0], id)
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&score, "score", 0, "how good the output was, from 0 (useless) to 1 (fully right)")
	f.BoolVar(&good, "ok", false, "the output was right (score 1)")
	f.BoolVar(&bad, "bad", false, "the output was wrong (score 0)")
	f.StringVar(&note, "note", "", "why, in a few words")
	f.StringVar(&ledgerPath, "ledger", "", "ledger database (default $XDG_DATA_HOME/costwise/ledger.db)")
	return cmd
}
