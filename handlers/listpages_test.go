package handlers

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"autopilotdesk/graphclient"
)

// The list's pages are kept for a bounded number of sign-ins, the oldest dropped first, and only
// for the sign-in, tenant and search that read them.
func TestListPagesAreBoundedAndKeptApart(t *testing.T) {
	var p ListPages
	start := time.Now()
	page := []readPage{{AutopilotDevicePage: graphclient.AutopilotDevicePage{NextLink: "next"}}}
	for i := range listPagesKept + 5 {
		p.keep(fmt.Sprint("sign-in ", i), "tenant", "", start.Add(time.Duration(i)*time.Second), page, start.Add(time.Duration(i)*time.Second))
	}
	if len(p.bySignIn) != listPagesKept {
		t.Errorf("%d sign-ins' pages kept, want at most %d", len(p.bySignIn), listPagesKept)
	}
	now := start.Add(time.Minute)
	if got, _ := p.take("sign-in 0", "tenant", "", now); got != nil {
		t.Error("the oldest sign-in's pages were kept over the bound")
	}
	last := fmt.Sprint("sign-in ", listPagesKept+4)
	for _, other := range [][2]string{{"other tenant", ""}, {"tenant", "CZC"}} {
		if got, _ := p.take(last, other[0], other[1], now); got != nil {
			t.Errorf("pages read for another tenant or search were given to %v", other)
		}
	}
	if got, _ := p.take(last, "tenant", "", now); len(got) != 1 {
		t.Error("the pages just read are not kept")
	}
	p.ForgetTenant("tenant")
	if len(p.bySignIn) != 0 {
		t.Errorf("%d sign-ins' pages left after their tenant's devices changed", len(p.bySignIn))
	}
}

// Dozens of looks at once, by the same sign-in and others, keep the pages whole (run with -race).
func TestListPagesTakeConcurrentLooks(t *testing.T) {
	var p ListPages
	now := time.Now()
	var wg sync.WaitGroup
	for i := range 48 {
		wg.Go(func() {
			signIn := fmt.Sprint("sign-in ", i%4)
			pages, readAt := p.take(signIn, "tenant", "", now)
			pages = append(pages, readPage{AutopilotDevicePage: graphclient.AutopilotDevicePage{Devices: []graphclient.AutopilotDevice{{ID: fmt.Sprint(i)}}}})
			p.keep(signIn, "tenant", "", readAt, pages, now)
			if i%7 == 0 {
				p.ForgetTenant("tenant")
			}
			if i%5 == 0 {
				p.forget(signIn)
			}
		})
	}
	wg.Wait()
	for k, r := range p.bySignIn {
		for _, pg := range r.pages {
			if len(pg.Devices) != 1 {
				t.Errorf("%s kept a page of %d devices", k, len(pg.Devices))
			}
		}
	}
}
