package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// fullServer refuses a connection for want of a slot until it has refused `refusals` of them,
// then opens them; err, when set, is every attempt's answer instead.
type fullServer struct {
	refusals, tries atomic.Int32
	err             error
}

type openedConn struct{ driver.Conn }

func (s *fullServer) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	if s.tries.Add(1) <= s.refusals.Load() {
		return nil, &pgconn.PgError{Severity: "FATAL", Code: "53300", Message: "sorry, too many clients already"}
	}
	return openedConn{}, nil
}

func (*fullServer) Driver() driver.Driver { return nil }

// A new connection on a server whose slots are all taken waits for one within the wait, and one
// that finds none says so and is counted.
func TestNewConnectionWaitsForAFreeSlot(t *testing.T) {
	db := &DB{}
	server := &fullServer{}
	waiter := slotWaiter{Connector: server, wait: 400 * time.Millisecond, refused: &db.slotRefused}

	server.refusals.Store(3)
	if _, err := waiter.Connect(t.Context()); err != nil {
		t.Fatalf("a slot freed after three refusals: %v", err)
	}
	if n, latest, _ := db.SlotRefusals(); n != 0 || latest != nil {
		t.Errorf("a connection that opened in the end counted as refused: %d %v", n, latest)
	}

	server.tries.Store(0)
	server.refusals.Store(1 << 30)
	start := time.Now()
	_, err := waiter.Connect(t.Context())
	took := time.Since(start)
	if !errors.Is(err, ErrNoConnectionSlot) || !IsUnavailable(classify(err)) || !strings.Contains(err.Error(), "no free PostgreSQL connection slot within") {
		t.Fatalf("no slot free for the whole wait: %v", err)
	}
	if took < 400*time.Millisecond || took > 2*time.Second {
		t.Errorf("gave up after %s, want the wait of 400ms", took)
	}
	if n := server.tries.Load(); n < 3 || n > 40 {
		t.Errorf("%d attempts in 400ms: no backoff, or no retry", n)
	}
	var ce *CheckError
	n, latest, at := db.SlotRefusals()
	if n != 1 || !errors.As(latest, &ce) || !strings.Contains(ce.Cause, "connection slot") || !errors.Is(latest, ErrNoConnectionSlot) ||
		time.Since(at) > time.Second {
		t.Errorf("the refusal counted: %d %v at %s", n, latest, at)
	}

	// The caller's context bounds the wait.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := waiter.Connect(ctx); !errors.Is(err, ErrNoConnectionSlot) || time.Since(start) > 300*time.Millisecond {
		t.Errorf("within a context of 50ms: %v after %s", err, time.Since(start))
	}

	if n, _, _ := db.SlotRefusals(); n != 2 {
		t.Errorf("%d refusals counted, want 2", n)
	}
	server.refusals.Store(0)
	if _, err := waiter.Connect(t.Context()); err != nil {
		t.Errorf("once a slot is free: %v", err)
	}

	// Any other failure is answered at once.
	server.err = errors.New("connection refused")
	start = time.Now()
	if _, err := waiter.Connect(t.Context()); err != server.err || time.Since(start) > 100*time.Millisecond {
		t.Errorf("another failure: %v after %s", err, time.Since(start))
	}
}
