package graphclient

import (
	"sync"
	"time"
)

// Graph pages a collection with @odata.nextLink, and Intune has been seen to hand out the same
// link again (for windowsAutopilotDeviceIdentities), so that a client following it reads the
// same devices over and over. The client remembers, for each link it handed out, the links and
// ids of the pages before it: a link it was already given in the same walk through a collection
// ends the walk (the page carries no further link), and an object already returned in the walk
// is not returned again. A caller that reads the pages one call at a time (each with the link
// of the last) is covered as one that reads them in a loop.

const (
	maxWalks      = 512              // walks remembered at once; the oldest is forgotten first
	maxWalkIDs    = 200_000          // ids remembered in one walk; past it, no more are added
	maxIDs        = 300_000          // ids remembered in all walks (some 30 MB); the oldest walks make room
	walkForgotten = 30 * time.Minute // a walk not continued for this long is forgotten
)

// walk is what the pages read so far through a collection returned.
type walk struct {
	links map[string]bool
	ids   map[string]bool
	at    time.Time
}

// walks remembers the walks in progress, by the next link handed out.
type walks struct {
	mu    sync.Mutex
	byAt  map[string]*walk
	total int // ids remembered in all of byAt's walks
}

// page keeps what a page read from the link from ("" for a first page) adds to its walk: the
// values not already returned, and its next link, or "" when that link was already followed.
func page[T any](c *Client, from string, values []T, next string, id func(T) string) ([]T, string) {
	w := &c.walks
	now := c.cfg.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byAt == nil {
		w.byAt = map[string]*walk{}
	}
	cur := w.byAt[from]
	w.forget(from)
	if from == "" || cur == nil || now.Sub(cur.at) > walkForgotten {
		cur = &walk{links: map[string]bool{}, ids: map[string]bool{}}
	}
	// The other walks make room for this page's ids, oldest first, within maxIDs in all.
	for w.total+len(cur.ids)+len(values) > maxIDs && len(w.byAt) > 0 {
		w.forgetOldest()
	}
	if from != "" {
		cur.links[from] = true
	}
	kept := values[:0:0]
	for _, v := range values {
		k := id(v)
		if k != "" && cur.ids[k] {
			continue
		}
		if k != "" && len(cur.ids) < min(maxWalkIDs, maxIDs) {
			cur.ids[k] = true
		}
		kept = append(kept, v)
	}
	if next == "" || cur.links[next] {
		return kept, ""
	}
	cur.at = now
	if len(w.byAt) >= maxWalks {
		w.forgetOldest()
	}
	w.byAt[next] = cur
	w.total += len(cur.ids)
	return kept, next
}

// forget drops the walk handed out with link, if any.
func (w *walks) forget(link string) {
	if cur, ok := w.byAt[link]; ok {
		w.total -= len(cur.ids)
		delete(w.byAt, link)
	}
}

func (w *walks) forgetOldest() {
	var oldest string
	var at time.Time
	for k, v := range w.byAt {
		if oldest == "" || v.at.Before(at) {
			oldest, at = k, v.at
		}
	}
	w.forget(oldest)
}
