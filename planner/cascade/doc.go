// Package cascade replays routing policies on recorded outcomes: it fits a
// model cascade (or a single model) on the training part of a per-query x
// per-model outcome table and reports what every policy would have cost and
// scored on the held-out part.
//
// # Outcome tables
//
// [ReadOutcomes] reads the wide CSV layout of public routing benchmarks
// (RouterBench and its derivatives): one row per query and, for each model
// M, the columns
//
//	M  or  M|performance   score of M's answer, 0..1 (required)
//	M|total_cost           USD paid for M's answer (required; it declares M)
//	M|confidence           M's own confidence in its answer (any finite number;
//	                       needed for M to stand anywhere but last in a cascade)
//	M|tokens_in, M|tokens_out, M|latency_ms   optional, >= 0
//
// plus optional prompt and eval_name columns. A model is declared by its
// M|total_cost column; every other column (sample_id, M|model_response,
// oracle_model_to_route_to ...) is ignored and listed in [Table.Ignored].
// Several files are joined with [Concat]: they must declare the same models
// with the same optional columns, else Concat fails and names the
// difference (drop or add the columns so that the files agree).
//
// # Policies
//
// A [Policy] is a sequence of models ordered cheap -> strong with one
// threshold per model but the last. A query goes to the first model; when
// that model's confidence is >= its threshold the answer is accepted,
// otherwise the next model is called, and so on; the last model always
// answers. The cost of a query is the sum of the costs of every model
// called; its quality is the performance of the model that answered. A
// single model is the policy of length one.
//
// # Fitting
//
// [Fit] looks only at the rows it is given (the training split). Its target
// quality is Options.TargetQuality or, by default, the strongest single
// model's training quality (DefaultTargetSlack says why not lower). It searches every sequence of
// length 1..MaxLength (default 3) from the models sorted by training cost,
// leaving out models dominated on training cost and quality (a dominated
// model is kept when it has a confidence column and the model dominating it
// has none; Options.Exhaustive keeps them all). Models without a
// confidence column stand only last. Thresholds:
//
//   - length 2: every distinct training confidence of the first model, so
//     the fit is exactly optimal among two-model cascades (any threshold
//     accepts the same rows as one of these values);
//   - length 3: the training confidence quantiles of the first two models
//     (Options.Quantiles levels, default 100), all pairs, evaluated by a
//     sweep with per-bucket sums (O(n log n + Q^2) per sequence).
//
// The fit minimises mean training cost subject to mean training quality >=
// target (ties go to higher quality) and reports which constraint binds.
// When no table column holds a confidence, no cascade can decide when to
// escalate: the fit falls back to the cheapest single model meeting the
// target and says so in [FitResult.Note]. When nothing meets the target,
// the fit returns the policy of highest training quality and
// FitResult.Feasible is false.
//
// # Reports
//
// [Run] fits on the training table and evaluates every single model, the
// strongest one (highest training quality), the cheapest single model
// meeting the target (chosen on training rows), the fitted cascade and the
// per-query oracle (the cheapest model among those with the best
// performance) on the test table. [WriteSVG] draws the held-out
// cost-quality plane. [Compare] evaluates two fixed policies on the same
// queries with a paired bootstrap confidence interval of their differences.
// [CompareArms] does the same for a prompt [Classifier] against a policy
// or another classifier ([Arm]); Report.Points adds such policies to the
// plot.
//
// # Logs of calls
//
// A log (the ledger) holds, per query, only the models actually called.
// [FromRecords] turns such records ([Record], the long layout) into a table
// of complete cases: the models that answered the same queries and the
// queries all of them answered, saying in [Coverage] what it dropped.
// [JoinCommon] joins tables on the models they share; [Table.RenameModels]
// maps table names to catalog IDs.
//
// # Cascade specs
//
// [NewSpec] turns a fitted policy and its held-out replay into an
// estimator.Cascade (quality, and the share of queries reaching each stage,
// measured on the held-out rows); [WriteSpecs] and [ParseSpecs] write and
// read them as [[cascade]] TOML tables, the file the planning commands take
// with --cascades.
//
// Boundary: this package reads recorded outcomes and does arithmetic on
// them; it calls no model and knows nothing of workflows, catalogs or the
// executor. Its only tie to the planner is the estimator.Cascade type it
// writes and reads.
package cascade
