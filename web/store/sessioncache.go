package store

import (
	"hash/fnv"
	"sync"
	"sync/atomic"
)

// sessionCache keeps the decoded sessions of a SQLite database in memory, so a request reads its
// session without a query or a decode. Open holds the SQLite data folder's lock, so every change
// to a session row passes through this process and the cache stays exact. PostgreSQL, shared by
// replicas, gets no cache: a sign-out on one replica must end the session on all of them at once.
//
// Every change of a row and its cached copy happens under the row's stripe lock; readers of the
// cache take no stripe lock. Deletes of many rows at once (sweep, sign-out everywhere) bump a
// generation, so a copy read from the database before such a delete is never cached after it.
// A nil *sessionCache caches nothing.
type sessionCache struct {
	max     int
	gen     atomic.Uint64
	stripes [64]sync.Mutex

	mu   sync.RWMutex
	rows map[string]sessionRow // by id hash
}

// sessionRow is a session as its row holds it, with the values decoded.
type sessionRow struct {
	values            map[any]any // the cache's own map: handed out only as copies
	userKey           string
	lastSeen, expires int64 // Unix milliseconds
}

func (r sessionRow) valuesCopy() map[any]any {
	values := make(map[any]any, len(r.values)+2)
	for k, v := range r.values {
		values[k] = v
	}
	return values
}

func (r sessionRow) withValuesCopy() sessionRow {
	r.values = r.valuesCopy()
	return r
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{max: max, rows: make(map[string]sessionRow)}
}

// lock takes the stripe lock of one session row and returns its unlock.
func (c *sessionCache) lock(idHash string) (unlock func()) {
	if c == nil {
		return func() {}
	}
	h := fnv.New32a()
	h.Write([]byte(idHash))
	m := &c.stripes[h.Sum32()%uint32(len(c.stripes))]
	m.Lock()
	return m.Unlock
}

func (c *sessionCache) get(idHash string) (sessionRow, bool) {
	if c == nil {
		return sessionRow{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	row, ok := c.rows[idHash]
	return row, ok
}

func (c *sessionCache) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// put caches row unless a bulk delete ran since gen was read. At capacity an arbitrary row
// makes room; it is read from the database again when next used.
func (c *sessionCache) put(idHash string, row sessionRow, gen uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if _, ok := c.rows[idHash]; !ok && len(c.rows) >= c.max {
		for k := range c.rows {
			delete(c.rows, k)
			break
		}
	}
	c.rows[idHash] = row
}

func (c *sessionCache) touched(idHash string, lastSeen int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if row, ok := c.rows[idHash]; ok {
		row.lastSeen = lastSeen
		c.rows[idHash] = row
	}
}

func (c *sessionCache) remove(idHash string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rows, idHash)
}

// removeWhere drops the rows a bulk delete in the database removed; call it after that delete.
func (c *sessionCache) removeWhere(match func(sessionRow) bool) {
	if c == nil {
		return
	}
	c.gen.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, row := range c.rows {
		if match(row) {
			delete(c.rows, k)
		}
	}
}
