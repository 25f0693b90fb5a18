// Package learn turns what runs really did into numbers the estimator can
// use: it fits per (task, model) statistics from observed provider calls,
// blends them into a catalog, and watches for drift.
//
// Its input is a slice of [Observation], one per finished provider call,
// which the caller reads from wherever calls are recorded (the CLI reads
// the executor's ledger). [Fit] weighs recent calls more than old ones
// (exponential decay with a half-life, 7 days by default) and computes,
// per (task, model): calls, a Beta posterior of the success rate whose
// prior is the catalog's quality score counted as pseudo-calls, the output
// token and latency distributions (weighted p50 and p95), USD per
// successful call and the re-route rate. [Model.Blend] writes the
// posterior success rates and an observed latency profile (time to first
// token, output tokens per second) into a copy of a catalog, and returns a
// [Source] for every number it touched, so that an estimate can say which
// numbers came from observations (how many, with what weight) and which
// from the catalog. [Drift] compares the latest window of calls with the
// one before and raises an [Alert] when the success rate, median latency,
// median output length or median cost per call moved.
//
// # Statistics
//
// Success: an observation counts as 1 (validated success) or 0, unless it
// carries explicit feedback in [0, 1], which replaces the outcome as a
// fractional success. With decay weights w and per-call successes s, the
// posterior is Beta(k*q + sum(w*s), k*(1-q) + sum(w*(1-s))), where q is the
// catalog quality for the task (falling back to its "default" score) and
// k is Options.PriorStrength (10 pseudo-calls by default); its mean
// (k*q + sum(w*s)) / (k + sum(w)) is the catalog value and the observed
// rate blended in proportion to their weights. A model without a catalog
// score gets the uniform prior Beta(1, 1).
//
// Latency: each answered call is a point (output tokens, latency). Per
// model (all tasks pooled, since the catalog's latency profile is per
// model) a weighted least-squares line latency = ttft + tokens/speed is
// fitted through the points and through pseudo-points on the catalog's
// line (weight k split between 0 tokens and the observed median), so that
// the catalog dominates until there is enough evidence, and a stream of
// calls of one length moves only the speed, not the intercept.
//
// Drift: the success rate uses a two-proportion z-test (pooled variance)
// and must also move by at least a minimum absolute amount; latency p50,
// output tokens p50 and cost per call p50 alert on a relative change above
// a threshold. Both windows need a minimum number of calls. See
// [Thresholds].
//
// Boundary: learn sits in the estimator layer and imports only the
// catalog; it knows nothing of the executor or its ledger, so observations
// are plain values and the conversion from ledger rows lives with the
// caller. It never modifies the catalog it is given.
package learn
