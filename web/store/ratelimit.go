package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Allow counts one event in bucket's current fixed window (aligned to multiples of window since
// the Unix epoch, so every replica agrees) and refuses it once more than limit events fell in that
// window, saying how long until the window ends.
func (db *DB) Allow(ctx context.Context, bucket string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error) {
	if window < time.Millisecond || limit < 0 {
		return false, 0, errors.New("store: rate limit: window under a millisecond or negative limit")
	}
	now := db.now()
	size := window.Milliseconds()
	start := fromMS(ms(now) - ms(now)%size)
	end := start.Add(time.Duration(size) * time.Millisecond)
	var count int
	err = db.queryRow(ctx, `INSERT INTO rate_counters (bucket, window_start, window_end, count) VALUES (?, ?, ?, 1)
		ON CONFLICT (bucket, window_start, window_end) DO UPDATE SET count = rate_counters.count + 1 RETURNING count`,
		[]any{bucket, ms(start), ms(end)}, &count)
	if err != nil {
		return false, 0, fmt.Errorf("store: rate limit: %w", err)
	}
	if count > limit {
		return false, end.Sub(now), nil
	}
	return true, 0, nil
}
