package store

import (
	"context"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

// Two desks on one database agree on what a tenant's Graph answered for the uploads collection:
// one remembers, the other reads it; a later sighting moves the time on; forgetting is shared.
func TestUploadsMissingIsSharedPerTenant(t *testing.T) {
	eachEngine(t, func(t *testing.T, loc location) {
		clk := testkit.NewClock()
		a := loc.open(t, clk)
		b := a // SQLite serves one desk per data folder
		if loc.options.DatabaseURL != "" {
			b = loc.open(t, clk)
		}
		ctx := context.Background()
		if _, ok, err := b.UploadsMissingSince(ctx, "t1"); ok || err != nil {
			t.Fatalf("remembered before anything was seen: %v %v", ok, err)
		}
		first := clk.Now()
		if err := a.RememberUploadsMissing(ctx, "t1", UploadsMissing{Seen: first, Support: `{"requestId":"r1"}`}); err != nil {
			t.Fatal(err)
		}
		if m, ok, err := b.UploadsMissingSince(ctx, "t1"); !ok || err != nil || !m.Seen.Equal(first.Truncate(time.Millisecond)) || m.Support != `{"requestId":"r1"}` {
			t.Fatalf("the other desk reads %+v %v %v, want %v", m, ok, err, first)
		}
		if _, ok, _ := b.UploadsMissingSince(ctx, "t2"); ok {
			t.Fatal("another tenant is remembered too")
		}
		later := first.Add(25 * time.Hour)
		if err := b.RememberUploadsMissing(ctx, "t1", UploadsMissing{Seen: later, Support: `{"requestId":"r2"}`}); err != nil {
			t.Fatal(err)
		}
		if m, _, _ := a.UploadsMissingSince(ctx, "t1"); !m.Seen.Equal(later.Truncate(time.Millisecond)) || m.Support != `{"requestId":"r2"}` {
			t.Fatalf("a later sighting reads %+v, want %v", m, later)
		}
		if err := a.ForgetUploadsMissing(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := b.UploadsMissingSince(ctx, "t1"); ok {
			t.Fatal("still remembered after it was forgotten")
		}
	})
}
