package graphclient

import (
	"context"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// batchesInFlight is how many JSON batches of one read (devices by id, serial numbers) are on
// their way to Graph at once. Graph takes 0.3 to 1 s to answer a batch of 20, so 1,000 devices
// (50 batches) one after another take 15 to 50 s; four at a time take 4 to 13 s. Concurrency
// does not change what a read costs: each of a batch's requests counts against Intune's limits
// as if sent alone, and the largest read (1,000 devices) is the same 1,000 requests either way.
// It only decides how many are in flight together: 4 batches are 80 requests, under a tenth of
// Intune's 1,000 requests per 20 s for an application in a tenant (2,000 for the tenant), so a
// burst leaves room for the tenant's other people and desks, and Graph finds at most 3 batches
// already sent when it throttles one.
const batchesInFlight = 4

// pace is what the batches of one read share: the latest Retry-After any of them heard, which
// no request of the read goes out before, and the caller's throttle notice, called one at a time.
type pace struct {
	mu     sync.Mutex
	until  time.Time
	heard  int // how many 429s with a Retry-After the read heard
	notice func(time.Duration)
	// resend is held by a batch sending its throttled requests again: after a 429, the batches
	// in flight go again one at a time, each after the Retry-After, not all at the same moment
	// into the next window of the same budget.
	resend sync.Mutex
}

// resending takes ctx's read's turn to send requests again; done gives it back. Outside such a
// read it does nothing.
func resending(ctx context.Context) (done func()) {
	p, ok := ctx.Value(paceKey{}).(*pace)
	if !ok {
		return func() {}
	}
	p.resend.Lock()
	return p.resend.Unlock
}

type paceKey struct{}

// throttled notes a Retry-After heard at now and passes it on to the caller's notice.
func (p *pace) throttled(now time.Time, wait time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := now.Add(wait); t.After(p.until) {
		p.until = t
	}
	p.heard++
	if p.notice != nil {
		p.notice(wait)
	}
}

func (p *pace) state(now time.Time) (left time.Duration, heard int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(0, p.until.Sub(now)), p.heard
}

// pauseLeft is how long the read that ctx belongs to must still wait before its next request:
// what is left of a Retry-After a call beside this one heard. 0 outside such a read.
func pauseLeft(ctx context.Context, now time.Time) time.Duration {
	p, ok := ctx.Value(paceKey{}).(*pace)
	if !ok {
		return 0
	}
	left, _ := p.state(now)
	return left
}

// waitOut sleeps wait, and then for as long as a Retry-After another batch of the same read heard
// meanwhile still runs. It reports false, having sent nothing, when that would pass the deadline
// or ctx ends.
func (c *Client) waitOut(ctx context.Context, wait time.Duration, deadline time.Time) bool {
	wait = max(wait, pauseLeft(ctx, c.cfg.Now()))
	for wait > 0 {
		if c.cfg.Now().Add(wait).After(deadline) {
			return false
		}
		if c.cfg.Sleep(ctx, wait) != nil {
			return false
		}
		wait = pauseLeft(ctx, c.cfg.Now())
	}
	return true
}

// inBatches sends the n batches of one read through send (which sends the k-th and returns its
// exchanges, and the error that stops the read: the batch failed as a whole, or Graph still
// throttles it), and returns the exchanges in the order of the batches, how many batches were
// started (always the first ones) and the error of the earliest that stopped the read.
//
// The first batch goes alone, so a refused token or a throttled tenant stops the read after one
// batch, as before. The others go up to batchesInFlight at a time, with one access token taken
// beforehand: the caller's token source is not asked from several goroutines. Once Graph
// throttles any of them, the batches in flight send nothing again before the longest Retry-After
// heard has elapsed, and then one at a time; the rest of the read goes one batch after another,
// as before, once those in flight are done and that Retry-After has elapsed. Once a batch stops
// the read, no further batch starts at all.
func (c *Client) inBatches(ctx context.Context, ts oauth2.TokenSource, n int,
	send func(ctx context.Context, ts oauth2.TokenSource, k int) ([]*Exchange, error)) ([]*Exchange, int, error) {
	if n == 0 {
		return nil, 0, nil
	}
	inFlight := batchesInFlight
	if tok, err := ts.Token(); err == nil {
		ts = oauth2.StaticTokenSource(tok)
	} else {
		inFlight = 1 // each batch then meets the failure on its own, as when sent alone
	}
	p := &pace{}
	p.notice, _ = ctx.Value(throttleNoticeKey{}).(func(time.Duration))
	ctx = context.WithValue(ctx, paceKey{}, p)
	ctx = OnThrottled(ctx, func(wait time.Duration) { p.throttled(c.cfg.Now(), wait) })

	exchanges := make([][]*Exchange, n)
	errs := make([]error, n)
	var mu sync.Mutex
	stopped := false
	slots := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	started, seen, oneByOne := 0, 0, inFlight == 1
	for k := range n {
		if k == 1 || oneByOne {
			wg.Wait() // the first goes alone
		}
		if _, heard := p.state(c.cfg.Now()); heard > seen {
			seen, oneByOne = heard, true
			wg.Wait()
			if left, _ := p.state(c.cfg.Now()); left > 0 && c.cfg.Sleep(ctx, left) != nil {
				mu.Lock()
				stopped = true
				mu.Unlock()
			}
		}
		slots <- struct{}{}
		mu.Lock()
		stop := stopped
		mu.Unlock()
		if stop {
			<-slots
			break
		}
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			exs, err := send(ctx, ts, k)
			mu.Lock()
			defer mu.Unlock()
			exchanges[k], errs[k] = exs, err
			if err != nil {
				stopped = true
			}
		}()
	}
	wg.Wait()
	var all []*Exchange
	var first error
	for k := range started {
		all = append(all, exchanges[k]...)
		if first == nil {
			first = errs[k]
		}
	}
	if first == nil && started < n {
		first = transportError(ctx, ctx.Err(), c.cfg.Version) // the wait for a Retry-After was cut short
	}
	return all, started, first
}
