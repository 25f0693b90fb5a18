package estimator

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
)

// Model ids of testdata/catalog.toml.
const (
	mCachey  = "acme/cachey"
	mTiered  = "acme/tiered"
	mNoCache = "plain/nocache"
)

// readTestdata returns a file of testdata/.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return data
}

// testCatalog loads testdata/catalog.toml, plus extra TOML entries.
func testCatalog(t testing.TB, extra string) *catalog.Catalog {
	t.Helper()
	data := append(readTestdata(t, "catalog.toml"), "\n"+extra...)
	cat, err := catalog.LoadTOML("testdata/catalog.toml", data)
	require.NoError(t, err)
	return cat
}

// parseWorkflow parses and validates a workflow given as TOML.
func parseWorkflow(t testing.TB, src string) *graph.Workflow {
	t.Helper()
	w, err := graph.Parse(t.Name()+".toml", []byte(src))
	require.NoError(t, err, "workflow:\n%s", src)
	return w
}

// estimate prices w against cat with the given options.
func estimate(t testing.TB, cat *catalog.Catalog, w *graph.Workflow, opts ...Option) *Estimate {
	t.Helper()
	e, err := New(cat, opts...)
	require.NoError(t, err)
	est, err := e.Estimate(w)
	require.NoError(t, err)
	return est
}

// candidate returns node id's candidate for the model, failing the test when
// there is none.
func candidate(t testing.TB, est *Estimate, id, model string) *Candidate {
	t.Helper()
	i, ok := est.Workflow.NodeIndex(id)
	require.True(t, ok, "node %q", id)
	c, ok := est.Candidate(i, model)
	require.True(t, ok, "node %q has no candidate %s", id, model)
	return c
}

// reasonCodes lists a candidate's reason codes in order.
func reasonCodes(c *Candidate) []ReasonCode {
	var out []ReasonCode
	for _, r := range c.Reasons {
		out = append(out, r.Code)
	}
	return out
}

// mcCost is a candidate's cost in every Monte Carlo run of the estimate,
// read from the same draws that Totals adds up.
func mcCost(est *Estimate, i int, c *Candidate) []float64 {
	buf := make([]float64, est.Samples)
	for s := range buf {
		buf[s] = costSample(c.linear, &c.static, est.draws[i], s)
	}
	return buf
}

// meanSE returns the sample mean of xs and its standard error.
func meanSE(xs []float64) (mean, se float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	ss := 0.0
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss/float64(len(xs)-1)) / math.Sqrt(float64(len(xs)))
}

// requireOrdered checks P50 <= P95 <= P99 <= Max of a distribution.
func requireOrdered(t testing.TB, what string, d Dist) {
	t.Helper()
	require.LessOrEqual(t, d.P50, d.P95, "%s: P50 > P95 (%+v)", what, d)
	require.LessOrEqual(t, d.P95, d.P99, "%s: P95 > P99 (%+v)", what, d)
	require.LessOrEqual(t, d.P99, d.Max, "%s: P99 > Max (%+v)", what, d)
}
