package store

import (
	"context"
	"fmt"
	"time"
)

// UploadsMissing is a tenant's Microsoft Graph's answer that it does not know the uploads
// collection: when it was last seen, and that answer's support details as the caller keeps them.
type UploadsMissing struct {
	Seen    time.Time
	Support string
}

// RememberUploadsMissing records that a tenant's Microsoft Graph answered that it does not know
// the uploads collection. Every desk sharing the database reads the same answer; a later sighting
// moves the time on and replaces the details.
func (db *DB) RememberUploadsMissing(ctx context.Context, tenantID string, m UploadsMissing) error {
	_, err := db.exec(ctx, `INSERT INTO tenant_uploads_missing (tenant_id, seen_at, support) VALUES (?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET seen_at = excluded.seen_at, support = excluded.support`, tenantID, ms(m.Seen), m.Support)
	if err != nil {
		db.uploadsMissing.Delete(tenantID)
		return fmt.Errorf("store: remember uploads missing: %w", err)
	}
	m.Seen = fromMS(ms(m.Seen))
	db.mirrorUploadsMissing(tenantID, &m)
	return nil
}

// ForgetUploadsMissing records that a tenant's Microsoft Graph answered for the uploads collection
// again.
func (db *DB) ForgetUploadsMissing(ctx context.Context, tenantID string) error {
	if _, err := db.exec(ctx, `DELETE FROM tenant_uploads_missing WHERE tenant_id = ?`, tenantID); err != nil {
		db.uploadsMissing.Delete(tenantID)
		return fmt.Errorf("store: forget uploads missing: %w", err)
	}
	db.mirrorUploadsMissing(tenantID, nil)
	return nil
}

// mirrorUploadsMissing keeps a tenant's answer in memory when this process alone writes the
// database (SQLite): pages that show it then cost no query. On PostgreSQL every read asks the
// database, so replicas agree at once.
func (db *DB) mirrorUploadsMissing(tenantID string, m *UploadsMissing) {
	if db.ownsDir {
		db.uploadsMissing.Store(tenantID, m)
	}
}

// UploadsMissingSince is the last answer of a tenant's Microsoft Graph that it does not know the
// uploads collection; ok is false when none has been seen (or the collection answered since).
func (db *DB) UploadsMissingSince(ctx context.Context, tenantID string) (m UploadsMissing, ok bool, err error) {
	if v, mirrored := db.uploadsMissing.Load(tenantID); mirrored {
		if seen := v.(*UploadsMissing); seen != nil {
			return *seen, true, nil
		}
		return UploadsMissing{}, false, nil
	}
	var at int64
	err = db.queryAll(ctx, `SELECT seen_at, support FROM tenant_uploads_missing WHERE tenant_id = ?`, []any{tenantID}, func(scan func(...any) error) error {
		ok = true
		return scan(&at, &m.Support)
	})
	if err != nil {
		return UploadsMissing{}, false, fmt.Errorf("store: read uploads missing: %w", err)
	}
	var mirror *UploadsMissing
	if ok {
		m.Seen = fromMS(at)
		mirror = &m
	}
	if db.ownsDir {
		db.uploadsMissing.LoadOrStore(tenantID, mirror) // a write meanwhile has stored what is newer
	}
	if !ok {
		return UploadsMissing{}, false, nil
	}
	return m, true, nil
}
