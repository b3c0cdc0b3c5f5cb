package bulk

import (
	"context"
	"sync"
	"testing"
	"time"
)

// gates is a state database's write holds, counting its reads.
type gates struct {
	mu    sync.Mutex
	until map[string]time.Time
	reads int
}

func (g *gates) TakeWriteSlots(context.Context, string, int, int, time.Duration) (int, time.Time, time.Time, bool, error) {
	return 0, time.Time{}, time.Time{}, false, nil
}
func (g *gates) WriteSlotsAnswered(context.Context, string, time.Time, int, time.Time) error {
	return nil
}
func (g *gates) HoldWrites(_ context.Context, bucket string, until time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until.After(g.until[bucket]) {
		g.until[bucket] = until
	}
	return nil
}
func (g *gates) WriteHold(_ context.Context, bucket string) (time.Time, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reads++
	return g.until[bucket], nil
}

// A hold this desk sets shows at once; one another desk set (in the shared database) within a
// second; and the database is read at most once a second per tenant however many writes ask.
func TestHeldUntilSeesEveryDesksHolds(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	g := &gates{until: map[string]time.Time{}}
	b, other := &Budget{Store: g}, &Budget{Store: g}
	for range 50 {
		if until, err := b.HeldUntil(ctx, "t1", now); err != nil || !until.IsZero() {
			t.Fatalf("held until %v (%v) with no hold", until, err)
		}
	}
	if g.reads != 1 {
		t.Errorf("%d reads of the database within a second, want 1", g.reads)
	}
	if err := b.Hold(ctx, "t1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if until, _ := b.HeldUntil(ctx, "t1", now); !until.Equal(now.Add(time.Minute)) {
		t.Errorf("this desk's own hold: %v", until)
	}
	if until, _ := b.HeldUntil(ctx, "t2", now); !until.IsZero() {
		t.Errorf("another tenant is held until %v", until)
	}
	if err := other.Hold(ctx, "t2", now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if until, _ := b.HeldUntil(ctx, "t2", now.Add(holdFresh)); !until.Equal(now.Add(2 * time.Minute)) {
		t.Errorf("another desk's hold a second later: %v", until)
	}
}
