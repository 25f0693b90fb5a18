package provider

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tmc/langchaingo/llms"
)

// keySlot is one configured key: the environment variable naming it, its
// state (resting after a 429, retired after a 401/403) and the langchaingo
// model built with it. The key value itself is read from the environment
// on every call; only its hash is kept, to notice when it changes.
type keySlot struct {
	env string // "" for a keyless provider (ollama)

	mu        sync.Mutex
	restUntil time.Time
	retired   bool
	sum       [sha256.Size]byte // hash of the key the model was built with
	model     llms.Model
	closer    func() error
}

// state reports whether the slot is usable at now, and for how long it
// still rests when it is not (0 when retired).
func (s *keySlot) state(now time.Time) (usable bool, rest time.Duration, retired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return false, 0, true
	}
	if now.Before(s.restUntil) {
		return false, s.restUntil.Sub(now), false
	}
	return true, 0, false
}

func (s *keySlot) rest(until time.Time) {
	s.mu.Lock()
	if until.After(s.restUntil) {
		s.restUntil = until
	}
	s.mu.Unlock()
}

func (s *keySlot) retire() {
	s.mu.Lock()
	s.retired = true
	s.mu.Unlock()
}

// modelFor returns the slot's model for key, building (or rebuilding, when
// the environment variable changed) it with build.
func (s *keySlot) modelFor(key string, build func(key string) (llms.Model, func() error, error)) (llms.Model, error) {
	sum := sha256.Sum256([]byte(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.model != nil && s.sum == sum {
		return s.model, nil
	}
	m, closer, err := build(key)
	if err != nil {
		return nil, err
	}
	if s.closer != nil {
		_ = s.closer()
	}
	s.model, s.closer, s.sum = m, closer, sum
	return m, nil
}

func (s *keySlot) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closer != nil {
		err := s.closer()
		s.closer, s.model = nil, nil
		return err
	}
	return nil
}

// keyRing hands out slots round-robin, skipping resting and retired ones.
type keyRing struct {
	slots []*keySlot
	next  atomic.Uint64
}

// pick returns the next usable slot. When none is usable it returns nil,
// the shortest remaining rest (0 when every slot is retired) and whether
// every slot is retired.
func (r *keyRing) pick(now time.Time) (slot *keySlot, shortest time.Duration, allRetired bool) {
	n := len(r.slots)
	start := r.next.Add(1) - 1
	allRetired = true
	for i := range n {
		s := r.slots[(start+uint64(i))%uint64(n)]
		usable, rest, retired := s.state(now)
		if usable {
			return s, 0, false
		}
		if !retired {
			allRetired = false
			if shortest == 0 || rest < shortest {
				shortest = rest
			}
		}
	}
	return nil, shortest, allRetired
}

// shortestRest returns the shortest remaining rest of the resting slots,
// or 0 when a slot is usable or none rests.
func (r *keyRing) shortestRest(now time.Time) time.Duration {
	var shortest time.Duration
	for _, s := range r.slots {
		usable, rest, retired := s.state(now)
		if usable {
			return 0
		}
		if !retired && (shortest == 0 || rest < shortest) {
			shortest = rest
		}
	}
	return shortest
}
