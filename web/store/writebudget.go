package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// TakeWriteSlots takes up to want of a bucket's write slots: at most limit are taken in any span
// of window, counted from when each was taken (or answered: WriteSlotsAnswered). It returns how
// many it took and when it took them (the slots' stamp), and when it took none, when to ask
// again: the time enough of the oldest slots free to take one below limit, or the end of a wait Graph asked for (HoldWrites; held
// then says so: the budget itself may have room). Every
// desk sharing the database shares the budget; the slots are taken one transaction at a time per
// bucket (on PostgreSQL under an advisory lock), so two desks never both take the last one.
func (db *DB) TakeWriteSlots(ctx context.Context, bucket string, want, limit int, window time.Duration) (taken int, stamp, retryAt time.Time, held bool, err error) {
	if want < 1 || limit < 1 || window <= 0 {
		return 0, time.Time{}, time.Time{}, false, errors.New("store: write slots: want, limit and window must be positive")
	}
	err = db.tx(ctx, db.stmtTimeout, func(t *txn) error {
		if db.driver == driverPostgres {
			if _, err := t.exec(`SELECT pg_advisory_xact_lock(?)`, budgetLockKey(bucket)); err != nil {
				return err
			}
		}
		now := db.now()
		var gate int64
		if err := t.queryAll(`SELECT not_before FROM write_gates WHERE bucket = ?`, []any{bucket}, func(scan func(...any) error) error {
			return scan(&gate)
		}); err != nil {
			return err
		}
		if gate > ms(now) {
			retryAt, held = fromMS(gate), true
			return nil
		}
		if _, err := t.exec(`DELETE FROM write_slots WHERE bucket = ? AND at <= ?`, bucket, ms(now.Add(-window))); err != nil {
			return err
		}
		used := 0
		type slots struct { // taken together, at one time
			at int64
			n  int
		}
		var inWindow []slots
		if err := t.queryAll(`SELECT at, n FROM write_slots WHERE bucket = ? ORDER BY at`, []any{bucket}, func(scan func(...any) error) error {
			var s slots
			if err := scan(&s.at, &s.n); err != nil {
				return err
			}
			used += s.n
			inWindow = append(inWindow, s)
			return nil
		}); err != nil {
			return err
		}
		if used >= limit {
			// The first moment one is free below this limit: when enough of the oldest have left
			// the window (a caller with a lower limit, a bulk change, waits for more of them).
			freed := 0
			for _, s := range inWindow {
				if freed += s.n; used-freed < limit {
					retryAt = fromMS(s.at).Add(window)
					break
				}
			}
			return nil
		}
		taken = min(want, limit-used)
		stamp = fromMS(ms(now))
		_, err := t.exec(`INSERT INTO write_slots (bucket, at, n) VALUES (?, ?, ?)`, bucket, ms(now), taken)
		return err
	})
	if err != nil {
		return 0, time.Time{}, time.Time{}, false, fmt.Errorf("store: take write slots: %w", err)
	}
	return taken, stamp, retryAt, held, nil
}

// WriteSlotsAnswered counts the n slots taken at stamp from answered, when Graph answered the
// writes they were taken for. A write reaches Graph some time after its slot is taken, and Graph
// counts it when it arrives; counted from the answer, which comes after the arrival, a slot frees
// only once the write has left Graph's window too, however slow the way there was. (Slots taken
// by another desk in the same millisecond, as many, may be counted from this answer too: later,
// never earlier, than their own.)
func (db *DB) WriteSlotsAnswered(ctx context.Context, bucket string, stamp time.Time, n int, answered time.Time) error {
	_, err := db.exec(ctx, `UPDATE write_slots SET at = ? WHERE bucket = ? AND at = ? AND n = ? AND at < ?`, ms(answered), bucket, ms(stamp), n, ms(answered))
	if err != nil {
		return fmt.Errorf("store: write slots answered: %w", err)
	}
	return nil
}

// HoldWrites stops every desk taking a bucket's write slots until a time (Graph's Retry-After);
// a later hold wins over an earlier one.
func (db *DB) HoldWrites(ctx context.Context, bucket string, until time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO write_gates (bucket, not_before) VALUES (?, ?)
		ON CONFLICT (bucket) DO UPDATE SET not_before = CASE WHEN excluded.not_before > write_gates.not_before THEN excluded.not_before ELSE write_gates.not_before END`,
		bucket, ms(until))
	if err != nil {
		return fmt.Errorf("store: hold writes: %w", err)
	}
	return nil
}

// WriteHold is the time until which a bucket's writes are held (HoldWrites); the zero time when
// none is.
func (db *DB) WriteHold(ctx context.Context, bucket string) (time.Time, error) {
	var until int64
	if err := db.queryAll(ctx, writeHoldQuery, []any{bucket}, func(scan func(...any) error) error {
		return scan(&until)
	}); err != nil {
		return time.Time{}, fmt.Errorf("store: read write hold: %w", err)
	}
	if until == 0 {
		return time.Time{}, nil
	}
	return fromMS(until), nil
}

const writeHoldQuery = `SELECT not_before FROM write_gates WHERE bucket = ?`

// budgetLockKey is the advisory lock of a bucket, apart from the migration lock's key.
func budgetLockKey(bucket string) int64 {
	h := fnv.New64a()
	h.Write([]byte("write-budget\x00" + bucket))
	return int64(h.Sum64() &^ (1 << 63))
}
