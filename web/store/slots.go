package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoConnectionSlot means PostgreSQL refused the desk a new connection because every
// connection slot it has (max_connections, or a role's or database's connection limit) was
// taken for as long as the desk waited for one.
var ErrNoConnectionSlot = errors.New("store: PostgreSQL had no free connection slot")

// DefaultSlotWait is how long a request that needs a new PostgreSQL connection waits for a
// connection slot to free before it fails.
const DefaultSlotWait = 3 * time.Second

// noSlot says whether PostgreSQL refused a connection for want of a free slot.
func noSlot(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53300" // too_many_connections
}

// slotWaiter opens the pool's PostgreSQL connections. The pool never opens more than its size,
// but the server's slots are shared with the other replicas and every other client; a server
// whose slots are all taken refuses a new connection at once. The connection is tried again with
// backoff until a slot frees, within the caller's context and wait, so a brief shortage delays
// a request instead of failing it.
type slotWaiter struct {
	driver.Connector
	wait    time.Duration
	refused *slotRefusals
}

// slotRefusals counts the connections the desk gave up on for want of a slot, and keeps the
// latest.
type slotRefusals struct {
	count  atomic.Uint64
	latest atomic.Pointer[slotRefusal]
}

type slotRefusal struct {
	err error
	at  time.Time
}

// slotRefusedError is the refusal after the desk waited: it names the wait, and is
// ErrNoConnectionSlot.
type slotRefusedError struct {
	waited time.Duration
	err    error
}

func (e *slotRefusedError) Error() string {
	return fmt.Sprintf("no free PostgreSQL connection slot within %s: %v", e.waited.Round(time.Millisecond), e.err)
}
func (e *slotRefusedError) Unwrap() error        { return e.err }
func (e *slotRefusedError) Is(target error) bool { return target == ErrNoConnectionSlot }

func (c slotWaiter) Connect(ctx context.Context) (driver.Conn, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// over: an attempt cut short by the deadline may end before ctx says it is done.
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	delay := 10 * time.Millisecond
	var refusal error
	for {
		conn, err := c.Connector.Connect(ctx)
		if err == nil {
			return conn, nil
		}
		if noSlot(err) {
			refusal = err
		} else if refusal == nil || !over() {
			return nil, err
		} // else: the wait ended during an attempt; the refusal says why
		if !over() {
			// Half the delay or more, at random: desks waiting at once do not retry together.
			t := time.NewTimer(delay/2 + rand.N(delay/2+1))
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			delay = min(delay*2, 250*time.Millisecond)
		}
		if over() {
			failed := &slotRefusedError{waited: time.Since(start), err: refusal}
			c.refused.latest.Store(&slotRefusal{err: failed, at: time.Now()})
			c.refused.count.Add(1)
			return nil, failed
		}
	}
}

// SlotRefusals counts the new PostgreSQL connections the desk gave up on, since it opened, because
// no connection slot freed within the wait; latest is the last of them, as a *CheckError naming
// the shortage and what ends it, and at when it was given up. Zero and nil on SQLite.
func (db *DB) SlotRefusals() (count uint64, latest error, at time.Time) {
	count = db.slotRefused.count.Load()
	r := db.slotRefused.latest.Load()
	if r == nil {
		return count, nil, time.Time{}
	}
	return count, postgresFailure(r.err), r.at
}
