package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/planner/cascade"
)

// evalFlags are the options of costwise eval.
type evalFlags struct {
	outcomes, train, test []string
	split                 float64
	seed                  uint64
	target                float64
	maxLength, quantiles  int
	resamples             int
	asJSON, compare       bool
	plot                  string
	classifier            bool   // also train and report a prompt classifier
	saveClassifier        string // write the trained classifier here (implies classifier)
	ledger                string // read the ledger's own history as an outcome table
	task                  string // filters --ledger rows; labels the --save-cascade spec
	saveCascade           string // write the fitted cascade as a spec for --cascades
	signal                string // the confidence signal the saved cascade escalates on
	maps                  []string
	cf                    *catalogFlags
	rename                map[string]string // parsed --map: table name -> catalog ID
	cat                   *catalog.Catalog  // loaded for --map and --save-cascade only
	ledgerInfo            *evalLedgerJSON   // what --ledger kept
}

func newEvalCmd(cf *catalogFlags) *cobra.Command {
	ef := &evalFlags{cf: cf}
	cmd := &cobra.Command{
		Use:   "eval (--outcomes FILE... | --ledger LEDGER.db | --train FILE --test FILE) [--compare A B] [flags]",
		Short: "Replay routing policies on recorded per-query outcomes: fit on training rows, report on held-out rows",
		Long: `eval reads per-query x per-model outcome tables in the wide CSV layout of public
routing benchmarks (RouterBench): one row per query; for each model M a column M or
M|performance (score 0..1), M|total_cost (USD), and optionally M|confidence,
M|tokens_in, M|tokens_out, M|latency_ms; optional prompt and eval_name columns.
Other columns (sample_id, M|model_response, ...) are ignored. Several --outcomes
files are joined; they must declare the same models and confidence columns.

It splits the rows at random (--split, --seed) or takes --train and --test files,
fits on the training rows only and reports on the held-out rows: every single
model, the strongest model, the cheapest model meeting the target (chosen on
training rows), the fitted cascade, the per-query oracle and the saving of the
cascade against the strongest model. Qualities and costs are means per query.

A cascade sends each query to its cheapest model and accepts the answer when that
model's confidence (M|confidence) is >= its threshold; otherwise it pays and
escalates; the last model always answers. The fit searches cascades of up to
--max-length models and their thresholds for the cheapest one whose training
quality reaches --target-quality (default: the strongest model's training quality
itself). Without confidence columns it falls back to the best single model.

--classifier also trains a prompt classifier on the training rows (it needs a prompt
column): hashed word and character n-grams and a few length/format features feed one
logistic regression per model cheaper than the strongest, predicting whether that model
suffices for the prompt; a query goes to the cheapest model predicted to suffice with
probability >= a threshold tuned on a held-back 20% of the training rows to reach the
target quality, else to the strongest model. It is reported on the held-out rows like
the other policies; --save-classifier FILE writes it as JSON for the per-request router.
--seed also seeds its training.

--ledger LEDGER.db reads the ledger's own history as an outcome table, alone or joined
with --outcomes: one row per node iteration of a real (not simulated) run that got an
answer, one column per model that answered it. A model scores 1 for an accepted answer
(the node's feedback score when it has one) and 0 for a rejected (invalid) one; its
cost is all its calls of that iteration. A ledger holds only the models actually
called, so the table keeps the models that answered the same queries and the queries
all of them answered (complete cases); what was dropped is printed on stderr. The
confidence a cascade recorded (schema 3) becomes M|confidence; a rejected answer with
none counts as confidence 0. --task T keeps the nodes of task T. Joined with
--outcomes, only the models both have are kept.

--map NAME=ID (repeatable) renames model NAME of the outcome tables to the catalog
model ID everywhere: in the report, the JSON, the --compare policy files and the saved
cascade. Every ID must be in the catalog (--catalog, --no-default-catalog).

--save-cascade FILE writes the fitted cascade as a [[cascade]] spec for --cascades:
its models (catalog IDs: map table names with --map), thresholds, --signal (the
signal the M|confidence data measured: logprob, validate or self_check), --task,
and the quality and share of queries reaching each stage measured on the held-out
rows. When the fit is a single model, nothing is written and eval exits 1.

--compare A B replays two fixed policies on the same held-out rows and gives 95%
paired bootstrap intervals of the differences B - A. Each is a TOML policy file
(kind = "single" with model, or kind = "cascade" with models and thresholds) or a
prompt classifier JSON file written by --save-classifier.

Exit codes: 0 ok, 1 bad input, 2 usage, 3 no policy reaches --target-quality on
the training rows (the report is still printed).`,
		Example: `  costwise eval --outcomes routerbench_0shot.csv
  costwise eval --outcomes part1.csv --outcomes part2.csv --split 0.3 --seed 7 --plot curves.svg
  costwise eval --train train.csv --test test.csv --target-quality 0.8 --json
  costwise eval --outcomes routerbench_0shot.csv --classifier --save-classifier router.json
  costwise eval --compare cheap_first.toml strong_only.toml --outcomes routerbench_0shot.csv
  costwise eval --compare strong_only.toml router.json --outcomes routerbench_0shot.csv
  costwise eval --outcomes rb.csv --map gpt-4o-mini=openai/gpt-4o-mini --map gpt-4o=openai/gpt-4o --save-cascade cascades.toml --task qa
  costwise eval --ledger ~/.local/share/costwise/ledger.db --task classification --save-cascade cascades.toml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if ef.compare {
				if len(args) != 2 {
					return usageError("--compare takes two policy files (TOML policies or classifier JSON), got %d argument(s): costwise eval --compare A.toml B.toml --outcomes FILE", len(args))
				}
				return nil
			}
			if len(args) > 0 {
				return usageError("eval takes no arguments; give outcome tables with --outcomes FILE (or compare two policies with --compare A.toml B.toml)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ef.check(cmd); err != nil {
				return err
			}
			if err := ef.loadCatalog(cmd.ErrOrStderr()); err != nil {
				return err
			}
			if ef.compare {
				return ef.runCompare(cmd, args[0], args[1])
			}
			return ef.runEval(cmd)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&ef.outcomes, "outcomes", nil, "outcome table (CSV, wide layout); repeatable, the files are joined and split at random")
	f.StringArrayVar(&ef.train, "train", nil, "training outcome table instead of a random split; repeatable")
	f.StringArrayVar(&ef.test, "test", nil, "held-out outcome table instead of a random split; repeatable")
	f.Float64Var(&ef.split, "split", 0.3, "share of the --outcomes rows held out for the report")
	f.Uint64Var(&ef.seed, "seed", 1, "seed of the random split (and of the bootstrap with --compare)")
	f.Float64Var(&ef.target, "target-quality", 0, "least mean training quality of the fitted policy, in (0, 1] (default: the strongest model's training quality)")
	f.IntVar(&ef.maxLength, "max-length", 3, "longest cascade searched (1..3)")
	f.IntVar(&ef.quantiles, "quantiles", cascade.DefaultQuantiles, "quantile levels of the training confidences tried as thresholds of 3-model cascades")
	f.IntVar(&ef.resamples, "resamples", cascade.DefaultResamples, "bootstrap resamples with --compare")
	f.BoolVar(&ef.asJSON, "json", false, `print JSON {"target_quality", "train_rows", "test_rows", "models", "strongest", "best_single", "cascade", "oracle", "saving_vs_strongest", "classifier" (with --classifier), ...}`)
	f.StringVar(&ef.plot, "plot", "", "write the held-out cost-quality plot to this SVG file")
	f.BoolVar(&ef.compare, "compare", false, "compare the two policy files given as arguments on the held-out rows")
	f.BoolVar(&ef.classifier, "classifier", false, "also train a prompt classifier on the training rows (needs a prompt column) and report it as a policy")
	f.StringVar(&ef.saveClassifier, "save-classifier", "", "write the trained prompt classifier to this JSON file (implies --classifier)")
	f.StringVar(&ef.ledger, "ledger", "", "read the ledger's history of real runs as an outcome table (alone or joined with --outcomes)")
	f.StringVar(&ef.task, "task", "", "keep the --ledger nodes of this task kind; the task of the --save-cascade spec")
	f.StringVar(&ef.saveCascade, "save-cascade", "", "write the fitted cascade, measured on the held-out rows, to this TOML file for --cascades")
	f.StringVar(&ef.signal, "signal", estimator.SignalLogprob, "the confidence signal of the saved cascade: logprob, validate or self_check (what M|confidence measured)")
	f.StringArrayVar(&ef.maps, "map", nil, "NAME=ID: rename outcome-table model NAME to catalog model ID (repeatable)")
	return cmd
}

// check validates the flags; every mistake is a usage error.
func (ef *evalFlags) check(cmd *cobra.Command) error {
	split := len(ef.outcomes) > 0 || ef.ledger != ""
	given := len(ef.train) > 0 || len(ef.test) > 0
	switch {
	case ef.ledger != "" && given:
		return usageError("--ledger is split at random like --outcomes; it does not combine with --train and --test")
	case split && given:
		return usageError("give either --outcomes (split at random) or --train and --test, not both")
	case !split && !given:
		return usageError("eval needs outcome tables: --outcomes FILE, --ledger LEDGER.db, or --train FILE --test FILE")
	case given && (len(ef.train) == 0 || len(ef.test) == 0):
		return usageError("--train and --test go together; give both, or use --outcomes with --split")
	case given && cmd.Flags().Changed("split"):
		return usageError("--split chooses a random split of --outcomes; with --train and --test the split is given")
	case given && cmd.Flags().Changed("seed") && !ef.compare && !ef.classifier && ef.saveClassifier == "":
		return usageError("--seed chooses a random split of --outcomes (and seeds --classifier); with --train and --test the split is given")
	}
	if ef.saveClassifier != "" {
		ef.classifier = true
	}
	if ef.compare && ef.classifier {
		return usageError("--classifier trains and reports a prompt classifier; --compare replays two fixed policy files: use one or the other")
	}
	if !(ef.split > 0 && ef.split < 1) {
		return usageError("--split must be in (0, 1), got %v", ef.split)
	}
	if cmd.Flags().Changed("target-quality") && !(ef.target > 0 && ef.target <= 1) {
		return usageError("--target-quality must be in (0, 1], got %v", ef.target)
	}
	if ef.maxLength < 1 || ef.maxLength > 3 {
		return usageError("--max-length must be 1, 2 or 3, got %d", ef.maxLength)
	}
	if ef.quantiles < 1 {
		return usageError("--quantiles must be >= 1, got %d", ef.quantiles)
	}
	if ef.resamples < 1 {
		return usageError("--resamples must be >= 1, got %d", ef.resamples)
	}
	if ef.compare && (ef.plot != "" || cmd.Flags().Changed("target-quality")) {
		return usageError("--plot and --target-quality fit and draw policies; --compare replays two fixed ones")
	}
	if ef.compare && ef.saveCascade != "" {
		return usageError("--save-cascade writes the fitted cascade; --compare replays two fixed policies: use one or the other")
	}
	switch ef.signal {
	case estimator.SignalLogprob, estimator.SignalValidate, estimator.SignalSelfCheck:
	default:
		return usageError("--signal must be logprob, validate or self_check, got %q", ef.signal)
	}
	if cmd.Flags().Changed("signal") && ef.saveCascade == "" {
		return usageError("--signal names the signal of the cascade --save-cascade writes; add --save-cascade FILE")
	}
	if ef.task != "" && ef.ledger == "" && ef.saveCascade == "" {
		return usageError("--task keeps the --ledger nodes of a task and labels the --save-cascade spec; add one of them")
	}
	if len(ef.maps) > 0 && len(ef.outcomes) == 0 && !given {
		return usageError("--map renames models of --outcomes, --train and --test tables; the ledger's models are catalog IDs already")
	}
	rename, err := parseMaps(ef.maps)
	if err != nil {
		return err
	}
	ef.rename = rename
	return nil
}

// load reads the tables and returns the training and held-out rows.
func (ef *evalFlags) load(stderr io.Writer) (train, test *cascade.Table, err error) {
	if len(ef.outcomes) > 0 || ef.ledger != "" {
		all, err := ef.loadAll(stderr)
		if err != nil {
			return nil, nil, err
		}
		tr, te, err := cascade.Split(all.Len(), ef.split, ef.seed)
		if err != nil {
			return nil, nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("%s: %v", strings.Join(ef.sources(), ", "), err)}
		}
		return all.Subset(tr), all.Subset(te), nil
	}
	if train, err = ef.readTables(stderr, ef.train); err != nil {
		return nil, nil, err
	}
	if test, err = ef.readTables(stderr, ef.test); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// loadAll reads the --outcomes tables and the --ledger history and joins
// them on the models they share.
func (ef *evalFlags) loadAll(stderr io.Writer) (*cascade.Table, error) {
	var csv, led *cascade.Table
	var err error
	if len(ef.outcomes) > 0 {
		if csv, err = ef.readTables(stderr, ef.outcomes); err != nil {
			return nil, err
		}
	}
	if ef.ledger != "" {
		if led, ef.ledgerInfo, err = ledgerTable(stderr, ef.ledger, ef.task); err != nil {
			return nil, err
		}
	}
	switch {
	case led == nil:
		return csv, nil
	case csv == nil:
		return led, nil
	}
	all, mg, err := cascade.JoinCommon(csv, led)
	if err != nil {
		return nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("joining %s with the ledger %s: %v", strings.Join(ef.outcomes, ", "), ef.ledger, err)}
	}
	if len(mg.DroppedModels) > 0 {
		fmt.Fprintf(stderr, "joined with the ledger on %s; dropped the models that only one side has: %s\n", strings.Join(mg.Models, ", "), strings.Join(mg.DroppedModels, ", "))
	}
	if len(mg.DroppedConfidence) > 0 {
		fmt.Fprintf(stderr, "no confidence column for %s: one side has none\n", strings.Join(mg.DroppedConfidence, ", "))
	}
	return all, nil
}

// readTables reads and joins outcome files and applies --map.
func (ef *evalFlags) readTables(stderr io.Writer, paths []string) (*cascade.Table, error) {
	t, err := cascade.ReadOutcomeFiles(paths...)
	if err != nil {
		return nil, reportEvalError(stderr, err)
	}
	if len(ef.rename) > 0 {
		if err := t.RenameModels(ef.rename); err != nil {
			return nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("--map: %s: %v", strings.Join(paths, ", "), err)}
		}
	}
	return t, nil
}

// sources names where the rows came from, for messages and the saved
// cascade's source.
func (ef *evalFlags) sources() []string {
	out := append([]string(nil), ef.outcomes...)
	if ef.ledger != "" {
		l := "ledger " + ef.ledger
		if ef.task != "" {
			l += " (task " + ef.task + ")"
		}
		out = append(out, l)
	}
	return out
}

// reportEvalError prints every problem, one per line, and returns the exit
// error for bad input.
func reportEvalError(stderr io.Writer, err error) error {
	var errs cascade.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(stderr, e.Error())
		}
		return &exitError{code: exitBadInput}
	}
	return &exitError{code: exitBadInput, msg: err.Error()}
}

func (ef *evalFlags) options(cmd *cobra.Command) cascade.Options {
	opt := cascade.Options{MaxLength: ef.maxLength, Quantiles: ef.quantiles}
	if cmd.Flags().Changed("target-quality") {
		opt.TargetQuality = ef.target
	}
	return opt
}

type evalPointJSON struct {
	Model   string  `json:"model"`
	Quality float64 `json:"quality"`
	CostUSD float64 `json:"cost_usd"`
}

type evalBestSingleJSON struct {
	evalPointJSON
	MeetsTargetOnTrain bool `json:"meets_target_on_train"`
}

type evalCascadeJSON struct {
	Kind            string    `json:"kind"`
	Models          []string  `json:"models"`
	Thresholds      []float64 `json:"thresholds"`
	Quality         float64   `json:"quality"`
	CostUSD         float64   `json:"cost_usd"`
	AnsweredByStage []float64 `json:"answered_by_stage"`
	TrainQuality    float64   `json:"train_quality"`
	TrainCostUSD    float64   `json:"train_cost_usd"`
	Feasible        bool      `json:"feasible"`
	Binds           string    `json:"binds"`
	Sequences       int       `json:"sequences_searched"`
}

type evalOracleJSON struct {
	Quality float64 `json:"quality"`
	CostUSD float64 `json:"cost_usd"`
}

type evalSplitJSON struct {
	TestFraction float64 `json:"test_fraction"`
	Seed         uint64  `json:"seed"`
}

type evalJSON struct {
	TargetQuality     float64             `json:"target_quality"`
	TargetDefault     bool                `json:"target_default"`
	TrainRows         int                 `json:"train_rows"`
	TestRows          int                 `json:"test_rows"`
	Split             *evalSplitJSON      `json:"split"`
	Models            []evalPointJSON     `json:"models"`
	Strongest         evalPointJSON       `json:"strongest"`
	BestSingle        evalBestSingleJSON  `json:"best_single"`
	Cascade           evalCascadeJSON     `json:"cascade"`
	Oracle            evalOracleJSON      `json:"oracle"`
	SavingVsStrongest float64             `json:"saving_vs_strongest"`
	QualityVsStrong   float64             `json:"quality_vs_strongest"`
	Note              string              `json:"note,omitempty"`
	IgnoredColumns    []string            `json:"ignored_columns"`
	Classifier        *evalClassifierJSON `json:"classifier,omitempty"`
	SavedCascade      *evalSavedJSON      `json:"saved_cascade,omitempty"`
	Ledger            *evalLedgerJSON     `json:"ledger,omitempty"`
}

// evalClassifierJSON is the prompt classifier (--classifier): its held-out
// means and how it was tuned on the training rows.
type evalClassifierJSON struct {
	Kind              string    `json:"kind"` // "classifier"
	Models            []string  `json:"models"`
	Threshold         float64   `json:"threshold"`
	Quality           float64   `json:"quality"`
	CostUSD           float64   `json:"cost_usd"`
	AnsweredByModel   []float64 `json:"answered_by_model"`
	SavingVsStrongest float64   `json:"saving_vs_strongest"`
	QualityVsStrong   float64   `json:"quality_vs_strongest"`
	Target            float64   `json:"holdout_target"`
	HoldOutRows       int       `json:"holdout_rows"`
	HoldOutQuality    float64   `json:"holdout_quality"`
	HoldOutCostUSD    float64   `json:"holdout_cost_usd"`
	Feasible          bool      `json:"feasible"`
	Seed              uint64    `json:"seed"`
	SavedTo           string    `json:"saved_to,omitempty"`
	Note              string    `json:"note,omitempty"`
}

// evalClassifier is a trained prompt classifier and its held-out metrics.
type evalClassifier struct {
	c    *cascade.Classifier
	test cascade.Metrics
}

// trainClassifier trains the prompt classifier on the training rows only,
// replays it on the held-out rows and saves it when asked.
func (ef *evalFlags) trainClassifier(cmd *cobra.Command, train, test *cascade.Table) (*evalClassifier, error) {
	opt := cascade.ClassifierOptions{Seed: ef.seed}
	if cmd.Flags().Changed("target-quality") {
		opt.TargetQuality = ef.target
	}
	c, err := cascade.TrainClassifier(train, opt)
	if err != nil {
		return nil, &exitError{code: exitBadInput, msg: "--classifier: " + err.Error()}
	}
	met, err := c.Evaluate(test)
	if err != nil {
		return nil, &exitError{code: exitBadInput, msg: "--classifier: " + err.Error()}
	}
	if ef.saveClassifier != "" {
		if err := c.SaveFile(ef.saveClassifier); err != nil {
			return nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("%s: cannot write the classifier: %v", ef.saveClassifier, unwrapPath(err))}
		}
	}
	return &evalClassifier{c: c, test: met}, nil
}

func (ec *evalClassifier) json(rep *cascade.Report, savedTo string) *evalClassifierJSON {
	f := ec.c.Fit
	j := &evalClassifierJSON{
		Kind: "classifier", Models: ec.c.Models, Threshold: ec.c.Threshold,
		Quality: ec.test.Quality, CostUSD: ec.test.CostUSD, AnsweredByModel: ec.test.Answered,
		QualityVsStrong: ec.test.Quality - rep.Strongest.Test.Quality,
		Target:          f.Target, HoldOutRows: f.HoldOutRows, HoldOutQuality: f.HoldOutQuality, HoldOutCostUSD: f.HoldOutCostUSD,
		Feasible: f.Feasible, Seed: f.Seed, SavedTo: savedTo, Note: f.Note,
	}
	if c := rep.Strongest.Test.CostUSD; c > 0 {
		j.SavingVsStrongest = 1 - ec.test.CostUSD/c
	}
	return j
}

func point(m cascade.ModelResult) evalPointJSON {
	return evalPointJSON{Model: m.Model, Quality: m.Test.Quality, CostUSD: m.Test.CostUSD}
}

func (ef *evalFlags) runEval(cmd *cobra.Command) error {
	train, test, err := ef.load(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	rep, err := cascade.Run(train, test, ef.options(cmd))
	if err != nil {
		return &exitError{code: exitBadInput, msg: err.Error()}
	}
	var ec *evalClassifier
	if ef.classifier {
		if ec, err = ef.trainClassifier(cmd, train, test); err != nil {
			return err
		}
		rep.Points = append(rep.Points, cascade.PlotPoint{Label: "classifier", Title: "prompt classifier: " + strings.Join(ec.c.Models, " | "), Test: ec.test})
	}
	spec, notSaved, err := ef.saveSpec(cmd.ErrOrStderr(), rep)
	if err != nil {
		return err
	}
	if ef.plot != "" {
		if err := writePlot(ef.plot, rep); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	if ef.asJSON {
		j := evalJSON{
			TargetQuality: rep.Target, TargetDefault: rep.TargetDefault, TrainRows: rep.TrainRows, TestRows: rep.TestRows,
			Strongest:  point(rep.Strongest),
			BestSingle: evalBestSingleJSON{evalPointJSON: point(rep.BestSingle), MeetsTargetOnTrain: rep.BestSingle.Train.Quality >= rep.Target-1e-9},
			Cascade: evalCascadeJSON{
				Kind: rep.Fit.Policy.Kind(), Models: rep.Fit.Policy.Models, Thresholds: rep.Fit.Policy.Thresholds,
				Quality: rep.Cascade.Quality, CostUSD: rep.Cascade.CostUSD, AnsweredByStage: rep.Cascade.Answered,
				TrainQuality: rep.Fit.Train.Quality, TrainCostUSD: rep.Fit.Train.CostUSD,
				Feasible: rep.Fit.Feasible, Binds: rep.Fit.Binds, Sequences: rep.Fit.Sequences,
			},
			Oracle:            evalOracleJSON{Quality: rep.Oracle.Quality, CostUSD: rep.Oracle.CostUSD},
			SavingVsStrongest: rep.SavingVsStrongest,
			QualityVsStrong:   rep.Cascade.Quality - rep.Strongest.Test.Quality,
			Note:              rep.Fit.Note,
			IgnoredColumns:    append([]string{}, train.Ignored...),
		}
		if len(ef.outcomes) > 0 || ef.ledger != "" {
			j.Split = &evalSplitJSON{TestFraction: ef.split, Seed: ef.seed}
		}
		if ec != nil {
			j.Classifier = ec.json(rep, ef.saveClassifier)
		}
		if spec != nil {
			j.SavedCascade = savedCascadeJSON(ef.saveCascade, spec)
		}
		j.Ledger = ef.ledgerInfo
		if j.Cascade.Thresholds == nil {
			j.Cascade.Thresholds = []float64{}
		}
		for _, m := range rep.Models {
			j.Models = append(j.Models, point(m))
		}
		if err := writeJSON(out, j); err != nil {
			return err
		}
	} else {
		ef.printReport(out, rep, ec)
		if spec != nil {
			fmt.Fprintf(out, "cascade %s written to %s (held-out quality %.4f, reach %s, %d rows)\n",
				spec.ID(), ef.saveCascade, spec.Quality, fmtShares(spec.Reach), spec.Rows)
		}
	}
	if notSaved != nil {
		return notSaved
	}
	if !rep.Fit.Feasible {
		return &exitError{code: exitInfeasible, msg: fmt.Sprintf("no policy reaches quality %.4g on the training rows (best %.4g); lower --target-quality", rep.Target, rep.Fit.Train.Quality)}
	}
	return nil
}

func writePlot(path string, rep *cascade.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return &exitError{code: exitBadInput, msg: fmt.Sprintf("%s: cannot write the plot: %v", path, unwrapPath(err))}
	}
	werr := cascade.WriteSVG(f, rep)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return &exitError{code: exitBadInput, msg: fmt.Sprintf("%s: cannot write the plot: %v", path, werr)}
	}
	return nil
}

func (ef *evalFlags) printReport(out io.Writer, rep *cascade.Report, ec *evalClassifier) {
	if len(ef.outcomes) > 0 || ef.ledger != "" {
		fmt.Fprintf(out, "%d training rows, %d held-out rows (--split %g, --seed %d), %d models\n", rep.TrainRows, rep.TestRows, ef.split, ef.seed, len(rep.Models))
	} else {
		fmt.Fprintf(out, "%d training rows (--train), %d held-out rows (--test), %d models\n", rep.TrainRows, rep.TestRows, len(rep.Models))
	}
	if rep.TargetDefault {
		fmt.Fprintf(out, "target quality %.4f (the strongest model's training quality %.4f%s)\n", rep.Target, rep.Strongest.Train.Quality, slackText())
	} else {
		fmt.Fprintf(out, "target quality %.4f (--target-quality)\n", rep.Target)
	}
	fmt.Fprintf(out, "\nheld-out means per query:\n")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tQUALITY\tCOST/QUERY\tCOST VS STRONGEST\t")
	ref := rep.Strongest.Test.CostUSD
	row := func(name string, m cascade.Metrics) {
		fmt.Fprintf(tw, "%s\t%.4f\t$%s\t%s\t\n", name, m.Quality, usd(m.CostUSD), pct(m.CostUSD, ref))
	}
	for _, m := range rep.Models {
		row("  "+m.Model, m.Test)
	}
	row("strongest: "+rep.Strongest.Model, rep.Strongest.Test)
	bs := "best single: " + rep.BestSingle.Model
	if rep.BestSingle.Train.Quality < rep.Target-1e-9 {
		bs += " (none meets the target)"
	}
	row(bs, rep.BestSingle.Test)
	row("fitted "+rep.Fit.Policy.Kind()+": "+strings.Join(rep.Fit.Policy.Models, " -> "), rep.Cascade)
	if ec != nil {
		row("classifier: "+strings.Join(ec.c.Models, " | "), ec.test)
	}
	row("oracle", rep.Oracle)
	tw.Flush()
	p := rep.Fit.Policy
	fmt.Fprintf(out, "\nfitted policy: %s\n", p)
	if len(p.Models) > 1 {
		parts := make([]string, len(rep.Cascade.Answered))
		for k, a := range rep.Cascade.Answered {
			parts[k] = fmt.Sprintf("%s %.1f%%", p.Models[k], 100*a)
		}
		fmt.Fprintf(out, "  held-out queries answered by: %s\n", strings.Join(parts, ", "))
	}
	switch rep.Fit.Binds {
	case cascade.BindsQuality:
		fmt.Fprintf(out, "  binds: quality (training quality %.4f >= target %.4f, slack %.2g); cheaper policies fall short\n", rep.Fit.Train.Quality, rep.Target, rep.Fit.Slack)
	case cascade.BindsNone:
		fmt.Fprintf(out, "  binds: nothing; the cheapest model already reaches the target on training rows (quality %.4f)\n", rep.Fit.Train.Quality)
	default:
		fmt.Fprintf(out, "  binds: infeasible; the best training quality is %.4f, below the target %.4f\n", rep.Fit.Train.Quality, rep.Target)
	}
	fmt.Fprintf(out, "  searched %d model sequences, %d threshold settings\n", rep.Fit.Sequences, rep.Fit.Candidates)
	fmt.Fprintf(out, "saving vs strongest (%s): %.1f%% of its cost per query, at held-out quality %.4f vs %.4f\n",
		rep.Strongest.Model, 100*rep.SavingVsStrongest, rep.Cascade.Quality, rep.Strongest.Test.Quality)
	if rep.Fit.Note != "" {
		fmt.Fprintf(out, "note: %s\n", rep.Fit.Note)
	}
	if ec != nil {
		ef.printClassifier(out, rep, ec)
	}
	if ef.plot != "" {
		fmt.Fprintf(out, "plot written to %s\n", ef.plot)
	}
}

// printClassifier describes the prompt classifier under the table.
func (ef *evalFlags) printClassifier(out io.Writer, rep *cascade.Report, ec *evalClassifier) {
	c, f := ec.c, ec.c.Fit
	thr := fmt.Sprintf("%.2f", c.Threshold)
	if c.Threshold > 1 {
		thr = "never (every prompt goes to " + f.Strongest + ")"
	}
	fmt.Fprintf(out, "\nprompt classifier: cheapest of %s predicted to suffice with probability >= %s, else %s\n",
		strings.Join(c.Models[:len(c.Models)-1], ", "), thr, f.Strongest)
	target := fmt.Sprintf("target %.4f", f.Target)
	if f.TargetDefault {
		target += fmt.Sprintf(": %s's quality on these rows - %g", f.Strongest, cascade.DefaultClassifierSlack)
	}
	fmt.Fprintf(out, "  threshold tuned on %d held-back training rows: quality %.4f (%s), $%s per query\n",
		f.HoldOutRows, f.HoldOutQuality, target, usd(f.HoldOutCostUSD))
	parts := make([]string, len(ec.test.Answered))
	for k, a := range ec.test.Answered {
		parts[k] = fmt.Sprintf("%s %.1f%%", c.Models[k], 100*a)
	}
	fmt.Fprintf(out, "  held-out queries routed to: %s\n", strings.Join(parts, ", "))
	if s := rep.Strongest.Test.CostUSD; s > 0 {
		fmt.Fprintf(out, "  saving vs strongest: %.1f%% of its cost per query, at held-out quality %.4f vs %.4f\n",
			100*(1-ec.test.CostUSD/s), ec.test.Quality, rep.Strongest.Test.Quality)
	}
	if f.Note != "" {
		fmt.Fprintf(out, "  note: %s\n", f.Note)
	}
	if ef.saveClassifier != "" {
		fmt.Fprintf(out, "  classifier written to %s\n", ef.saveClassifier)
	}
}

// pct formats v as a percentage of ref.
func pct(v, ref float64) string {
	if ref == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*v/ref, 'f', 1, 64) + "%"
}

type evalIntervalJSON struct {
	Estimate float64 `json:"estimate"`
	Low      float64 `json:"ci_low"`
	High     float64 `json:"ci_high"`
}

type evalPolicyJSON struct {
	File       string    `json:"file"`
	Name       string    `json:"name"`
	Kind       string    `json:"kind"` // single, cascade or classifier
	Models     []string  `json:"models"`
	Thresholds []float64 `json:"thresholds"`
	Threshold  *float64  `json:"threshold,omitempty"` // a classifier's probability threshold
	Quality    float64   `json:"quality"`
	CostUSD    float64   `json:"cost_usd"`
}

type evalCompareJSON struct {
	TestRows   int              `json:"test_rows"`
	Split      *evalSplitJSON   `json:"split"`
	A          evalPolicyJSON   `json:"a"`
	B          evalPolicyJSON   `json:"b"`
	Quality    evalIntervalJSON `json:"quality_diff"`
	CostUSD    evalIntervalJSON `json:"cost_usd_diff"`
	Resamples  int              `json:"resamples"`
	Confidence float64          `json:"confidence"`
	Seed       uint64           `json:"seed"`
}

func (ef *evalFlags) runCompare(cmd *cobra.Command, pathA, pathB string) error {
	var arms [2]cascade.Arm
	for i, path := range []string{pathA, pathB} {
		a, err := loadArm(path)
		if err != nil {
			return reportEvalError(cmd.ErrOrStderr(), err)
		}
		arms[i] = a
	}
	_, test, err := ef.load(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	for _, a := range arms {
		if err := a.Check(test); err != nil {
			return reportEvalError(cmd.ErrOrStderr(), err)
		}
	}
	cmp, err := cascade.CompareArms(test, arms[0], arms[1], ef.resamples, ef.seed)
	if err != nil {
		return &exitError{code: exitBadInput, msg: err.Error()}
	}
	out := cmd.OutOrStdout()
	if ef.asJSON {
		pj := func(file string, a cascade.Arm, m cascade.Metrics) evalPolicyJSON {
			j := evalPolicyJSON{File: file, Name: a.Name, Kind: a.Kind(), Models: a.Policy.Models, Thresholds: a.Policy.Thresholds, Quality: m.Quality, CostUSD: m.CostUSD}
			if c := a.Classifier; c != nil {
				thr := c.Threshold
				j.Models, j.Thresholds, j.Threshold = c.Models, nil, &thr
			}
			if j.Thresholds == nil {
				j.Thresholds = []float64{}
			}
			return j
		}
		j := evalCompareJSON{
			TestRows: test.Len(),
			A:        pj(pathA, cmp.ArmA, cmp.MetricsA), B: pj(pathB, cmp.ArmB, cmp.MetricsB),
			Quality:   evalIntervalJSON{cmp.Quality.Estimate, cmp.Quality.Lo, cmp.Quality.Hi},
			CostUSD:   evalIntervalJSON{cmp.CostUSD.Estimate, cmp.CostUSD.Lo, cmp.CostUSD.Hi},
			Resamples: cmp.Resamples, Confidence: cmp.Confidence, Seed: cmp.Seed,
		}
		if len(ef.outcomes) > 0 || ef.ledger != "" {
			j.Split = &evalSplitJSON{TestFraction: ef.split, Seed: ef.seed}
		}
		return writeJSON(out, j)
	}
	fmt.Fprintf(out, "%d held-out rows; paired bootstrap, %d resamples, seed %d\n\n", test.Len(), cmp.Resamples, cmp.Seed)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tQUALITY\tCOST/QUERY\t")
	fmt.Fprintf(tw, "A  %s\t%.4f\t$%s\t\n", cmp.ArmA, cmp.MetricsA.Quality, usd(cmp.MetricsA.CostUSD))
	fmt.Fprintf(tw, "B  %s\t%.4f\t$%s\t\n", cmp.ArmB, cmp.MetricsB.Quality, usd(cmp.MetricsB.CostUSD))
	tw.Flush()
	fmt.Fprintf(out, "\nB - A, %.0f%% confidence intervals:\n", 100*cmp.Confidence)
	fmt.Fprintf(out, "  quality     %+.4f  [%+.4f, %+.4f]%s\n", cmp.Quality.Estimate, cmp.Quality.Lo, cmp.Quality.Hi, verdict(cmp.Quality))
	fmt.Fprintf(out, "  cost/query  %s  [%s, %s]%s\n", signedUSD(cmp.CostUSD.Estimate), signedUSD(cmp.CostUSD.Lo), signedUSD(cmp.CostUSD.Hi), verdict(cmp.CostUSD))
	return nil
}

// loadArm reads one side of --compare: a prompt classifier saved by
// --save-classifier (a JSON object) or a TOML policy file.
func loadArm(path string) (cascade.Arm, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return cascade.Arm{}, cascade.Errors{{File: path, Row: -1, Msg: "cannot read: " + unwrapPath(err).Error()}}
	}
	if trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(trimmed) > 0 && trimmed[0] == '{' {
		c, err := cascade.ParseClassifier(path, data)
		if err != nil {
			return cascade.Arm{}, err
		}
		return cascade.ClassifierArm(path, c), nil
	}
	p, err := cascade.ParsePolicy(path, data)
	if err != nil {
		return cascade.Arm{}, err
	}
	return cascade.PolicyArm(p), nil
}

// verdict says whether an interval excludes zero.
func verdict(iv cascade.Interval) string {
	switch {
	case iv.Lo > 0:
		return "  (B higher)"
	case iv.Hi < 0:
		return "  (B lower)"
	}
	return "  (no clear difference)"
}

func signedUSD(v float64) string {
	if v < 0 {
		return "-$" + usd(-v)
	}
	return "+$" + usd(v)
}

// slackText is " - slack" when the default target lies below the strongest
// model's quality, else "".
func slackText() string {
	if cascade.DefaultTargetSlack == 0 {
		return ""
	}
	return fmt.Sprintf(" - %g", cascade.DefaultTargetSlack)
}
