package executor

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// 20 concurrent calls whose budget allows 10: never more than the budget is
// spent, and exactly the calls that reserved are paid.
func TestBudgetRace(t *testing.T) {
	for _, c := range []struct {
		name            string
		reserve, actual int64
	}{
		{"actual equals reservation", 100, 100},
		{"actual below reservation", 100, 60},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewBudget(1000, 0)
			var wg sync.WaitGroup
			var paid, refused atomic.Int64
			start := make(chan struct{})
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r, err := b.Reserve(c.reserve)
					if err != nil {
						var be *ErrBudgetExhausted
						require.True(t, errors.As(err, &be))
						refused.Add(1)
						return
					}
					r.Settle(c.actual)
					r.Settle(c.actual) // settling twice has no effect
					paid.Add(1)
				}()
			}
			close(start)
			wg.Wait()
			assert.LessOrEqual(t, b.Spent(), int64(1000))
			assert.Equal(t, paid.Load()*c.actual, b.Spent())
			assert.Equal(t, int64(20), paid.Load()+refused.Load())
			assert.GreaterOrEqual(t, paid.Load(), int64(10))
		})
	}
}

func TestBudgetMessages(t *testing.T) {
	b := NewBudget(1_000_000, 400_000)
	_, err := b.Reserve(700_000)
	require.Error(t, err)
	assert.Equal(t, "budget exhausted: the next call needs up to $0.000700; spent $0.000400 of $0.001000, $0.000000 reserved by calls in flight, $0.000600 remaining", err.Error())
	assert.Equal(t, int64(600_000), b.Remaining())
	assert.Equal(t, int64(-1), NewBudget(0, 0).Remaining())
}

func TestOutputRules(t *testing.T) {
	cases := []struct {
		rule, output string
		want         bool
	}{
		{`trim(output) in ["billing", "bug"]`, " bug\n", true},
		{`trim(output) in ["billing", "bug"]`, "other", false},
		{`json_valid(output)`, `{"a": 1}`, true},
		{`json_valid(output)`, `{"a": `, false},
		{`output matches "^[0-9]+$"`, "123", true},
		{`len(output) < 5 && output contains "ok"`, "ok!", true},
		{`iteration >= 2`, "x", false},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			r, err := CompileOutputRule(c.rule)
			require.NoError(t, err)
			got, err := r.Check(c.output, 1)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
	_, err := CompileOutputRule(`output inn ["a"]`)
	assert.Error(t, err)
	_, err = CompileOutputRule(`output matches "("`)
	assert.ErrorContains(t, err, "missing closing )")
}

func TestRender(t *testing.T) {
	got := render("Hi {{input.name}}, {{ node.a.output }} / {{node.b.output}} {{other}}", map[string]string{"name": "Ann"}, map[string]string{"a": "A"})
	assert.Equal(t, "Hi Ann, A /  {{other}}", got)
}
