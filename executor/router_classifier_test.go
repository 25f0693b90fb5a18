package executor_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/planner/cascade"
)

// trainedClassifier trains a real prompt classifier on an outcome table over
// two catalog models: openai/nano is right on greetings and wrong on poems,
// anthropic/sonnet is right on both.
func trainedClassifier(t *testing.T) *cascade.Classifier {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 1200
	tab := &cascade.Table{Models: []string{"openai/nano", "anthropic/sonnet"}, Perf: [][]float64{make([]float64, n), make([]float64, n)},
		Cost: [][]float64{make([]float64, n), make([]float64, n)}, Conf: [][]float64{nil, nil}}
	for r := range n {
		poem := rng.IntN(2) == 0
		if poem {
			tab.Prompt = append(tab.Prompt, fmt.Sprintf("Write a sonnet about the sea, number %d, in iambic pentameter.", r))
		} else {
			tab.Prompt = append(tab.Prompt, fmt.Sprintf("Say hello to visitor %d.", r))
		}
		tab.Origin = append(tab.Origin, cascade.Origin{File: "gen", Row: r + 1, Line: r + 2})
		if !poem {
			tab.Perf[0][r] = 1
		}
		tab.Perf[1][r] = 1
		tab.Cost[0][r], tab.Cost[1][r] = 0.0001, 0.01
	}
	c, err := cascade.TrainClassifier(tab, cascade.ClassifierOptions{Seed: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"openai/nano", "anthropic/sonnet"}, c.Models)
	return c
}

func TestRouterRouteWithClassifier(t *testing.T) {
	e := newRTEnvOK(t)
	c := trainedClassifier(t)
	r := e.router(t, executor.RouterOptions{Routes: []executor.Route{{Name: "learned", Classifier: c}}})
	cases := []struct {
		name, prompt string
		wantFirst    string
		wantBy       string
	}{
		{"a greeting goes to the cheap model", "Say hello to visitor 99999.", "openai/nano", "classifier"},
		{"a poem goes to the model that can write one", "Write a sonnet about the sea, number 99999, in iambic pentameter.", "anthropic/sonnet", "classifier"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := r.Plan(human(tc.prompt), executor.WithRoute("learned"))
			require.NoError(t, err)
			assert.Equal(t, tc.wantFirst, plan.Ladder[0].Model)
			assert.Equal(t, tc.wantFirst, plan.Pick)
			assert.Equal(t, tc.wantBy, plan.PickedBy)
			assert.NotContains(t, ladderIDs(plan)[1:], tc.wantFirst, "the pick is not repeated")
		})
	}

	t.Run("a pick the route does not admit falls back to the cheapest", func(t *testing.T) {
		r := e.router(t, executor.RouterOptions{Routes: []executor.Route{{Name: "openai-only", Providers: []string{"openai"}, Classifier: c}}})
		plan, err := r.Plan(human("Write a sonnet about the sea, number 7, in iambic pentameter."), executor.WithRoute("openai-only"))
		require.NoError(t, err)
		assert.Equal(t, "anthropic/sonnet", plan.Pick)
		assert.Equal(t, "cost", plan.PickedBy)
		assert.Equal(t, "openai/nano", plan.Ladder[0].Model)
	})
}
