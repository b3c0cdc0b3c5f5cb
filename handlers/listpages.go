package handlers

import (
	"slices"
	"sync"
	"time"

	"autopilotdesk/graphclient"
)

// listPagesFor is how long the pages of the registered-device list read by one sign-in are kept
// to be continued from: about as long as Intune takes to show a change in the list anyway.
const listPagesFor = 5 * time.Minute

// listPagesKept bounds the sign-ins whose pages are kept at once (each at most maxListPages
// pages); the oldest go first.
const listPagesKept = 32

// ListPages keeps, for a few minutes, the pages of the registered-device list each sign-in has
// read, so that "Load the next page" reads only the next page from Graph (from the
// @odata.nextLink Graph gave with the last one, which never leaves the desk), and the filters
// and the export of the pages loaded read nothing again. The first page is always read afresh.
// Pages are kept per sign-in, not shared: what Graph lists depends on the person's Intune role.
// A nil ListPages keeps nothing.
type ListPages struct {
	mu       sync.Mutex
	bySignIn map[string]*readPages
}

// readPages are the pages of one list (one serial search, or none) read in a row by one sign-in.
type readPages struct {
	tenantID, serial string
	readAt           time.Time // when the first page was read
	pages            []readPage
}

type readPage struct {
	graphclient.AutopilotDevicePage
	exchange *graphclient.Exchange
}

// take is the pages of the list this sign-in read less than listPagesFor ago, first to last;
// nil when there are none.
func (p *ListPages) take(signIn, tenantID, serial string, now time.Time) ([]readPage, time.Time) {
	if p == nil || signIn == "" {
		return nil, now
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.bySignIn[signIn]
	if r == nil || r.tenantID != tenantID || r.serial != serial || now.Sub(r.readAt) >= listPagesFor || now.Before(r.readAt) {
		return nil, now
	}
	return slices.Clone(r.pages), r.readAt
}

// keep replaces this sign-in's pages with the ones just read in a row from readAt.
func (p *ListPages) keep(signIn, tenantID, serial string, readAt time.Time, pages []readPage, now time.Time) {
	if p == nil || signIn == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bySignIn == nil {
		p.bySignIn = map[string]*readPages{}
	}
	p.bySignIn[signIn] = &readPages{tenantID: tenantID, serial: serial, readAt: readAt, pages: pages}
	for k, r := range p.bySignIn {
		if now.Sub(r.readAt) >= listPagesFor {
			delete(p.bySignIn, k)
		}
	}
	for len(p.bySignIn) > listPagesKept {
		oldest := ""
		for k, r := range p.bySignIn {
			if oldest == "" || r.readAt.Before(p.bySignIn[oldest].readAt) {
				oldest = k
			}
		}
		delete(p.bySignIn, oldest)
	}
}

// forget drops this sign-in's pages: the next look reads from the first page.
func (p *ListPages) forget(signIn string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.bySignIn, signIn)
}

// ForgetTenant drops the pages every sign-in of a tenant has read, once the desk has changed one
// of its devices.
func (p *ListPages) ForgetTenant(tenantID string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, r := range p.bySignIn {
		if r.tenantID == tenantID {
			delete(p.bySignIn, k)
		}
	}
}
