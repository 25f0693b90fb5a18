package provider

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket: capacity tokens, refilled at rate per second.
// Takers wait (context-aware) until enough tokens are available. The level
// may go negative when a call used more than it reserved (see adjust).
type bucket struct {
	mu    sync.Mutex
	rate  float64 // tokens per second
	cap   float64
	level float64
	last  time.Time
	now   func() time.Time
}

// newBucket returns a full bucket allowing perMinute tokens a minute.
func newBucket(perMinute int, now func() time.Time) *bucket {
	return &bucket{rate: float64(perMinute) / 60, cap: float64(perMinute), level: float64(perMinute), last: now(), now: now}
}

func (b *bucket) refill() {
	t := b.now()
	if d := t.Sub(b.last).Seconds(); d > 0 {
		b.level = min(b.cap, b.level+d*b.rate)
	}
	b.last = t
}

// take waits until n tokens are available and removes them. n larger than
// the capacity is capped to it (the call would otherwise never run).
func (b *bucket) take(ctx context.Context, n float64) error {
	n = min(n, b.cap)
	for {
		b.mu.Lock()
		b.refill()
		if b.level >= n {
			b.level -= n
			b.mu.Unlock()
			return nil
		}
		wait := time.Duration((n - b.level) / b.rate * float64(time.Second))
		b.mu.Unlock()
		wait = max(wait, time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// adjust returns (delta < 0) or charges (delta > 0) tokens after the fact.
func (b *bucket) adjust(delta float64) {
	b.mu.Lock()
	b.refill()
	b.level = min(b.cap, b.level-delta)
	b.mu.Unlock()
}
