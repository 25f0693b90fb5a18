// Command gen writes the learning-loop example's synthetic outcome table:
// go run ./examples/learning-loop/gen > examples/learning-loop/outcomes.csv
//
// SYNTHETIC DATA, for the example only. Each row is a support ticket of
// hidden difficulty d ~ U(0,1). A model answers right when d is below its
// skill, give or take noise (gpt-5-nano 0.62, gpt-5-mini 0.80, gpt-5.4
// 0.94); the two cheaper models report a confidence that falls with d, as
// exp(mean token log-probability) does on real label answers. Costs are
// each model's catalog price of the ticket's tokens (about 1,500 in, 3 out).
package main

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
)

type model struct {
	id          string
	skill       float64
	inPM, outPM float64 // USD per million tokens (the embedded catalog's)
	conf        bool
}

func main() {
	models := []model{
		{"openai/gpt-5-nano", 0.62, 0.05, 0.40, true},
		{"openai/gpt-5-mini", 0.80, 0.25, 2.00, true},
		{"openai/gpt-5.4", 0.94, 2.50, 15.00, false},
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	w := csv.NewWriter(os.Stdout)
	head := []string{"sample_id", "eval_name", "prompt"}
	for _, m := range models {
		head = append(head, m.id+"|performance", m.id+"|total_cost")
		if m.conf {
			head = append(head, m.id+"|confidence")
		}
	}
	must(w.Write(head))
	labels := []string{"billing", "bug", "account", "feature_request", "abuse"}
	for r := range 2000 {
		d := rng.Float64()
		in := 1200 + rng.IntN(600)
		row := []string{fmt.Sprintf("t%04d", r+1), "ticket-labels", fmt.Sprintf("Label ticket %d (%s-like, %d tokens).", r+1, labels[rng.IntN(len(labels))], in)}
		for _, m := range models {
			right := d+0.06*rng.NormFloat64() < m.skill
			perf := 0.0
			if right {
				perf = 1
			}
			cost := (float64(in)*m.inPM + 3*m.outPM) / 1e6
			row = append(row, fmt.Sprint(perf), fmt.Sprintf("%.8f", cost))
			if m.conf {
				c := 1 / (1 + math.Exp(-(m.skill-d)*9+0.4*rng.NormFloat64()))
				row = append(row, fmt.Sprintf("%.4f", c))
			}
		}
		must(w.Write(row))
	}
	w.Flush()
	must(w.Error())
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
