// Package policies decides which candidates and which plans are acceptable.
//
// A policy is a small plugin in the style of the Kubernetes scheduler
// framework: a [Plugin] has a name, and implements [NodeFilter] to remove
// node x model candidates, [PlanFilter] to accept or reject a complete plan,
// or both. Each returns a [*Status] whose [Code] separates a rejection
// (Rejected) from a failure to decide (Error); a nil Status means success.
//
// [Compile] builds the [Set] of a workflow: the estimator's physical
// feasibility (context window, modalities, ... as reason codes), every node's
// min_quality, and every [[policy]] rule of the file, compiled once with
// expr-lang against a typed environment ([NodeEnv] or [PlanEnv]) and
// AsBool. A rule that does not compile fails at load with the file, the
// rule's name, line:col and a caret snippet. Go code adds its own plugins
// with [Set.Register].
//
// Node rules see `node`, `model` and `est`:
//
//	model.provider in ["openai", "anthropic"]
//	est.cost_usd < 0.01 && model.context_window >= 128000
//	glob(model.id, "anthropic/claude-*-4*") || has_modality(model, "audio")
//
// Plan rules see `plan`:
//
//	plan.cost_usd / plan.success <= 1.0
//	plan.providers["xai"] == 0 && plan.models["review"] != plan.models["draft"]
//
// Helpers: glob(s, pattern) (path.Match), provider_of(id), has_modality(model, m),
// supports(model, "tools"|"json"|"reasoning"). Unknown prices are NaN, so any
// comparison with them is false.
//
// Hostile rules are contained: the AST is limited to MaxRuleNodes nodes at
// compile time and each evaluation to MemoryBudget units of the expr VM; a
// rule that exceeds them, or fails at run time, rejects the candidate or plan
// with code Error and says why.
//
// Boundary: policies reads the workflow (graph), the catalog and the
// estimator's numbers; it never chooses models (the planner does) and never
// calls a provider.
package policies
