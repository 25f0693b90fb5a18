package executor

import (
	"fmt"
	"sync"
)

// Budget enforces a run's max_cost_usd before money is spent: every call
// reserves its p95 estimate first and settles its actual cost after, so
// concurrent nodes cannot together overspend. Amounts are nano-USD.
type Budget struct {
	mu       sync.Mutex
	limit    int64 // 0 = no limit
	spent    int64
	reserved int64
}

// NewBudget returns a budget of limit nano-USD (0 = unlimited) with spent
// already spent (a resumed run).
func NewBudget(limit, spent int64) *Budget { return &Budget{limit: limit, spent: spent} }

// ErrBudgetExhausted is returned by Reserve when the next call does not fit.
type ErrBudgetExhausted struct {
	Need, Spent, Reserved, Limit int64
}

func (e *ErrBudgetExhausted) Error() string {
	return fmt.Sprintf("budget exhausted: the next call needs up to $%.6f; spent $%.6f of $%.6f, $%.6f reserved by calls in flight, $%.6f remaining",
		nanoToUSD(e.Need), nanoToUSD(e.Spent), nanoToUSD(e.Limit), nanoToUSD(e.Reserved), nanoToUSD(e.Limit-e.Spent-e.Reserved))
}

// Reservation is money held for one call until it settles.
type Reservation struct {
	b      *Budget
	amount int64
	done   bool
}

// Reserve holds amount nano-USD, or fails when spent + reserved + amount
// would exceed the limit.
func (b *Budget) Reserve(amount int64) (*Reservation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit > 0 && b.spent+b.reserved+amount > b.limit {
		return nil, &ErrBudgetExhausted{Need: amount, Spent: b.spent, Reserved: b.reserved, Limit: b.limit}
	}
	b.reserved += amount
	return &Reservation{b: b, amount: amount}, nil
}

// Settle releases the reservation and records the call's actual cost.
// Settling twice has no effect.
func (r *Reservation) Settle(actual int64) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	r.b.reserved -= r.amount
	r.b.spent += actual
}

// Spent returns the nano-USD settled so far.
func (b *Budget) Spent() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent
}

// Remaining returns the unreserved nano-USD left (0 limit: -1, unlimited).
func (b *Budget) Remaining() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit == 0 {
		return -1
	}
	return b.limit - b.spent - b.reserved
}

func nanoToUSD(n int64) float64 { return float64(n) / 1e9 }
