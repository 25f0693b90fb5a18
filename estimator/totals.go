package estimator

import "fmt"

// Totals are a whole run's numbers under one assignment of models to nodes.
type Totals struct {
	Cost     Cost    // the run's cost: Mean = sum of the nodes' means; percentiles from the joint draws
	LatencyS Dist    // Mean = longest path through the DAG of the nodes' expected latencies
	Success  float64 // product of the nodes' qualities
	Critical []int   // node indices on the critical path, source to sink
}

// Totals computes the run's numbers when node i runs on choice[i], a
// candidate of est.Nodes[i]. The percentiles add the nodes' costs in each
// Monte Carlo run, so branches, loops and upstream outputs stay correlated.
func (est *Estimate) Totals(choice []*Candidate) (Totals, error) {
	w := est.Workflow
	if len(choice) != len(w.Nodes) {
		return Totals{}, fmt.Errorf("estimator: %d choices for %d nodes", len(choice), len(w.Nodes))
	}
	var t Totals
	t.Cost.MeanMethod = "analytic"
	buf := make([]float64, est.Samples)
	lat := make([]float64, len(w.Nodes))
	t.Success = 1
	for i, c := range choice {
		if c == nil {
			return Totals{}, fmt.Errorf("estimator: node %q has no model", w.Nodes[i].ID)
		}
		t.Cost.Mean += c.Cost.Mean
		if c.Cost.MeanMethod == "monte_carlo" {
			t.Cost.MeanMethod = "monte_carlo"
		}
		d := est.draws[i]
		for s := range buf {
			buf[s] += est.runCost(c, i, d, s)
		}
		lat[i] = c.LatencyS.Mean
		t.Success *= c.Quality
	}
	q := quantiles(buf)
	t.Cost.P50, t.Cost.P95, t.Cost.P99, t.Cost.Max = q.P50, q.P95, q.P99, q.Max
	t.LatencyS.Mean, t.Critical = w.LongestPath(lat)
	return t, nil
}
