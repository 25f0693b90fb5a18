package planner_test

import (
	"context"
	"fmt"

	"github.com/costwise/costwise/planner"
)

// A three-step workflow (extract, then summarise and classify in parallel)
// with a cheap fast model and a reliable slower one per step. The plan must
// succeed with probability >= 0.9 and finish within 5 seconds.
func ExampleSolve() {
	cheap := planner.Candidate{Cost: 0.001, Latency: 1.0, Quality: 0.93}
	dear := planner.Candidate{Cost: 0.010, Latency: 2.5, Quality: 0.995}
	mid := planner.Candidate{Cost: 0.004, Latency: 3.0, Quality: 0.99}
	p := &planner.Problem{
		Cands:      [][]planner.Candidate{{cheap, dear}, {cheap, dear}, {cheap, mid}},
		Preds:      [][]int{nil, {0}, {0}},
		MaxLatency: 5,
		MinSuccess: 0.9,
	}
	sol, err := planner.Solve(context.Background(), p, planner.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sol.Status, sol.Choice)
	fmt.Printf("cost $%.3f, latency %.1f s, success %.3f\n", sol.Cost, sol.Latency, sol.Success)
	// Output:
	// optimal [0 1 1]
	// cost $0.015, latency 4.0 s, success 0.916
}

// When no plan fits, the Diagnosis says which limit is out of reach.
func ExampleSolve_infeasible() {
	p := &planner.Problem{
		Cands:      [][]planner.Candidate{{{Cost: 0.002, Latency: 3, Quality: 0.9}}},
		MaxLatency: 2,
	}
	sol, _ := planner.Solve(context.Background(), p, planner.Limits{})
	fmt.Println(sol.Status, sol.Feasible)
	fmt.Printf("fastest possible: %.0f s\n", sol.Diagnosis.MinLatency)
	// Output:
	// infeasible false
	// fastest possible: 3 s
}
