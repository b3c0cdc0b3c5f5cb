package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Allow counts one event in bucket's current fixed window (aligned to multiples of window since
// the Unix epoch, so every replica agrees) and refuses it once more than limit events fell in that
// window, saying how long until the window ends. On SQLite the counts live in memory: one process
// owns the database, so they are exact and an event costs no write; replicas count in PostgreSQL.
func (db *DB) Allow(ctx context.Context, bucket string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error) {
	over, retryAfter, err := db.windowCount(ctx, bucket, limit, window, true)
	return !over && err == nil, retryAfter, err
}

// Exceeded reports, without counting anything, whether bucket's current window (as Allow counts
// it) already holds more than limit events, and if so how long until the window ends.
func (db *DB) Exceeded(ctx context.Context, bucket string, limit int, window time.Duration) (over bool, retryAfter time.Duration, err error) {
	return db.windowCount(ctx, bucket, limit, window, false)
}

// windowCount reads bucket's count in its current window, counting one event first when count
// is set, and says whether it holds more than limit and how long until the window ends.
func (db *DB) windowCount(ctx context.Context, bucket string, limit int, window time.Duration, count bool) (over bool, retryAfter time.Duration, err error) {
	if window < time.Millisecond || limit < 0 {
		return false, 0, errors.New("store: rate limit: window under a millisecond or negative limit")
	}
	now := db.now()
	size := window.Milliseconds()
	start := ms(now) - ms(now)%size
	end := start + size
	var n int
	switch {
	case db.counters != nil && count:
		n = db.counters.add(counterKey{bucket, start, end})
	case db.counters != nil:
		n = db.counters.get(counterKey{bucket, start, end})
	case count:
		err = db.queryRow(ctx, `INSERT INTO rate_counters (bucket, window_start, window_end, count) VALUES (?, ?, ?, 1)
			ON CONFLICT (bucket, window_start, window_end) DO UPDATE SET count = rate_counters.count + 1 RETURNING count`,
			[]any{bucket, start, end}, &n)
	default:
		err = db.queryRow(ctx, `SELECT count FROM rate_counters WHERE bucket = ? AND window_start = ? AND window_end = ?`, []any{bucket, start, end}, &n)
		if errors.Is(err, ErrNotFound) {
			n, err = 0, nil
		}
	}
	if err != nil {
		return false, 0, fmt.Errorf("store: rate limit: %w", err)
	}
	if n > limit {
		return true, fromMS(end).Sub(now), nil
	}
	return false, 0, nil
}

// counters are the rate-limit windows of a SQLite database, in memory.
type counters struct {
	mu     sync.Mutex
	counts map[counterKey]int
}

type counterKey struct {
	bucket     string
	start, end int64 // Unix milliseconds
}

func newCounters() *counters { return &counters{counts: make(map[counterKey]int)} }

func (c *counters) add(k counterKey) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[k]++
	return c.counts[k]
}

func (c *counters) get(k counterKey) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[k]
}

// sweep forgets the windows that ended by now (Unix milliseconds).
func (c *counters) sweep(now int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.counts {
		if k.end <= now {
			delete(c.counts, k)
		}
	}
}
