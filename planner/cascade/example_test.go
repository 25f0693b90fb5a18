package cascade_test

import (
	"fmt"
	"strings"

	"github.com/costwise/costwise/planner/cascade"
)

// A cheap model that is right exactly when its confidence is above 0.5, and
// a strong model that is always right but costs ten times as much.
func ExampleFit() {
	csv := `cheap,cheap|total_cost,cheap|confidence,strong,strong|total_cost
1,0.001,0.95,1,0.01
1,0.001,0.80,1,0.01
0,0.001,0.45,1,0.01
1,0.001,0.70,1,0.01
0,0.001,0.20,1,0.01
1,0.001,0.60,1,0.01
0,0.001,0.50,1,0.01
1,0.001,0.90,1,0.01
`
	tab, err := cascade.ReadOutcomes("outcomes.csv", strings.NewReader(csv))
	if err != nil {
		fmt.Println(err)
		return
	}
	fit, err := cascade.Fit(tab, cascade.Options{TargetQuality: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fit.Policy)
	fmt.Printf("quality %.2f, $%.5f per query (strong alone: $0.01000), binds: %s\n", fit.Train.Quality, fit.Train.CostUSD, fit.Binds)
	fmt.Printf("answered by stage: %v\n", fit.Train.Answered)
	// Output:
	// cheap (conf >= 0.6) -> strong
	// quality 1.00, $0.00475 per query (strong alone: $0.01000), binds: quality
	// answered by stage: [0.625 0.375]
}

// Replaying a fixed policy on recorded outcomes.
func ExampleEvaluate() {
	csv := `a,a|total_cost,a|confidence,b,b|total_cost
1,0.002,0.9,1,0.02
0,0.002,0.3,1,0.02
`
	tab, _ := cascade.ReadOutcomes("outcomes.csv", strings.NewReader(csv))
	m, err := cascade.Evaluate(tab, cascade.Policy{Models: []string{"a", "b"}, Thresholds: []float64{0.5}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("quality %.2f, $%.3f per query\n", m.Quality, m.CostUSD)
	// Output: quality 1.00, $0.012 per query
}
