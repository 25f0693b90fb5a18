package provider

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a manual clock for the bucket's refill arithmetic.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBucketRefill(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	b := newBucket(60, clk.now) // 1 token a second, capacity 60
	ctx := context.Background()
	require.NoError(t, b.take(ctx, 60))
	assert.InDelta(t, 0, b.level, 1e-9)
	clk.advance(10 * time.Second)
	require.NoError(t, b.take(ctx, 10))
	assert.InDelta(t, 0, b.level, 1e-9)
	clk.advance(time.Hour) // refill stops at capacity
	b.adjust(0)
	assert.InDelta(t, 60, b.level, 1e-9)
	b.adjust(100) // a call used more than it reserved: debt
	assert.InDelta(t, -40, b.level, 1e-9)
	b.adjust(-500) // refunds stop at capacity
	assert.InDelta(t, 60, b.level, 1e-9)
}

func TestBucketWaits(t *testing.T) {
	b := newBucket(6000, time.Now) // 100 tokens a second
	ctx := context.Background()
	require.NoError(t, b.take(ctx, 6000))
	start := time.Now()
	require.NoError(t, b.take(ctx, 10)) // needs ~100 ms of refill
	el := time.Since(start)
	assert.GreaterOrEqual(t, el, 80*time.Millisecond)
	assert.Less(t, el, time.Second)

	// More than the capacity is capped to it rather than waiting forever.
	small := newBucket(60, time.Now)
	require.NoError(t, small.take(ctx, 1e9))
}

func TestBucketHonoursContext(t *testing.T) {
	b := newBucket(1, time.Now)
	require.NoError(t, b.take(context.Background(), 1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.take(ctx, 1)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), time.Second)
}
