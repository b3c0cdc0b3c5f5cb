package jobs

import (
	"context"
	"sync/atomic"
	"time"
)

// Loop runs a background worker's rounds: one at once, then one a tick after each, or sooner
// when it is kicked or a job asked to be looked at before the tick.
type Loop struct {
	tick time.Duration
	kick chan struct{}
	due  atomic.Int64 // the soonest look a job asked for (wall clock, Unix ns); 0: none
}

// NewLoop returns a loop that runs a round every tick.
func NewLoop(tick time.Duration) *Loop {
	return &Loop{tick: tick, kick: make(chan struct{}, 1)}
}

// Kick makes the loop run a round now (or as soon as the current one ends).
func (l *Loop) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// soonest asks for a round no later than at (wall clock).
func (l *Loop) soonest(at time.Time) {
	ns := at.UnixNano()
	for {
		cur := l.due.Load()
		if cur != 0 && cur <= ns || l.due.CompareAndSwap(cur, ns) {
			return
		}
	}
}

// Run runs rounds until ctx ends or a round returns false.
func (l *Loop) Run(ctx context.Context, round func(context.Context) bool) {
	t := time.NewTimer(l.tick)
	defer t.Stop()
	for ctx.Err() == nil && round(ctx) {
		wait := l.tick
		if at := l.due.Swap(0); at != 0 {
			wait = min(wait, max(time.Until(time.Unix(0, at)), 0))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
		case <-l.kick:
		case <-t.C:
		}
	}
}
