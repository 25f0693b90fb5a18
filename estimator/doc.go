// Package estimator prices a whole workflow before it runs: for every node
// and every candidate model, how many tokens go in and out, what it costs in
// USD, how long it takes and how likely it is to succeed; and for any
// assignment of models to nodes, the run's cost distribution, critical-path
// latency and success.
//
// # The trajectory model
//
// A node's first call sends its static prompt — system and prompt text, the
// inputs it references and its attachments, counted with the model's own
// tokenizer (exact for OpenAI, o200k times the provider ratio otherwise) plus
// OpenAI's chat framing (3 tokens per message, 3 to prime the reply) — and
// the outputs of the upstream nodes its template references (the upstream
// node's last output; nothing when that node did not run). An explicit
// input_tokens replaces everything but the attachments.
//
// A node runs with probability `when`, independently of other nodes. It then
// makes N calls: N = 1 + Binomial(max-1, (mean-1)/(max-1)), so that E[N] =
// repeat.mean and N <= repeat.max. Without history every call sends the same
// prompt; with history, call k also resends the k-1 previous turns, each the
// model's output plus repeat.turn_tokens.
//
// A stable cache_prefix_tokens prefix is billed at the cache-write rate on the
// node's first call and at the cache-read rate on later calls, for models
// that price cache reads; a model without a cache-write rate bills the write
// as plain input (OpenAI-style automatic caching).
//
// Output tokens per call follow a log-normal distribution fitted to the
// node's mean and p95 (sigma = z - sqrt(z^2 - 2 ln(p95/mean)), z = 1.645,
// capped at z when p95/mean > e^(z^2/2) ~ 3.87), clamped at max when one is
// given. A bare number is the mean with p95 = 1.5 x mean; without a hint the
// task kind's default applies (DefaultOutputTokens).
//
// # Cost
//
// Every price comes from catalog.Price, so estimates bill exactly as a call
// is billed: long-context tiers (every token of a call above the threshold at
// the tier's rate), cache reads and writes, per-image and per-second fees,
// per-request fees. The mean is analytic (expected calls, expected prompt and
// output tokens through the formulas above) whenever every sampled call of a
// node falls in one price tier; when sampled calls straddle a tier boundary
// the mean is the Monte Carlo mean and Cost.MeanMethod says so. Percentiles
// come from a seeded Monte Carlo over branches, loop counts and output
// lengths (2,000 samples by default), which draws the same run for every
// model so that per-node costs add up to run costs sample by sample.
//
// Latency of a call is time-to-first-token plus output tokens over output
// speed; a node's expected latency is when x E[N] x that. The run's latency
// is the longest path through the DAG. Quality is the catalog's score for the
// node's task kind, lowered to the model's vision score when the node sends
// images, video or document pages, and to its long_context score when the
// prompt exceeds LongContextTokens.
//
// # Fitted cascades
//
// Estimate.AddCascades offers fitted cascades (a cheap model first, stronger
// ones when the answer's confidence is below a threshold) as candidates of
// the nodes of their task. A cascade's cost on a node is its stages' costs
// there weighted by Reach, the share of calls that reached each stage in
// the fit's held-out rows, plus one self-check call per answer that may be
// handed on when the signal is SignalSelfCheck; its quality is the measured
// one, so no independence between stages is assumed. In the Monte Carlo a
// run reaches stage k with probability Reach[k] (one draw per node and run),
// so cost percentiles show the escalated tail. A cascade is infeasible when
// a stage is, or when a stage that may hand on cannot give the signal.
//
// # Boundary
//
// The estimator knows the workflow (graph), the catalog and token rules
// (estimator/catalog, estimator/tokens). It applies only physical
// feasibility — context window, max output, modalities, capabilities, the
// node's models filter, unknown prices — each with a ReasonCode. Policies
// (min_quality, expr rules) and the choice of models belong to the policies
// and planner packages.
package estimator
