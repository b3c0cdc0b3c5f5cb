package store

import (
	"context"
	"fmt"
	"time"
)

// RememberUploadsMissing records that a tenant's Microsoft Graph answered, at a time, that it does
// not know the uploads collection. Every desk sharing the database reads the same answer; a later
// sighting moves the time on.
func (db *DB) RememberUploadsMissing(ctx context.Context, tenantID string, at time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO tenant_uploads_missing (tenant_id, seen_at) VALUES (?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET seen_at = excluded.seen_at`, tenantID, ms(at))
	if err != nil {
		db.uploadsMissing.Delete(tenantID)
		return fmt.Errorf("store: remember uploads missing: %w", err)
	}
	db.mirrorUploadsMissing(tenantID, ms(at))
	return nil
}

// ForgetUploadsMissing records that a tenant's Microsoft Graph answered for the uploads collection
// again.
func (db *DB) ForgetUploadsMissing(ctx context.Context, tenantID string) error {
	if _, err := db.exec(ctx, `DELETE FROM tenant_uploads_missing WHERE tenant_id = ?`, tenantID); err != nil {
		db.uploadsMissing.Delete(tenantID)
		return fmt.Errorf("store: forget uploads missing: %w", err)
	}
	db.mirrorUploadsMissing(tenantID, 0)
	return nil
}

// mirrorUploadsMissing keeps a tenant's answer in memory when this process alone writes the
// database (SQLite): pages that show it then cost no query. On PostgreSQL every read asks the
// database, so replicas agree at once.
func (db *DB) mirrorUploadsMissing(tenantID string, seenAt int64) {
	if db.ownsDir {
		db.uploadsMissing.Store(tenantID, seenAt)
	}
}

// UploadsMissingSince is when a tenant's Microsoft Graph was last seen answering that it does not
// know the uploads collection; ok is false when it has not been seen (or answered since).
func (db *DB) UploadsMissingSince(ctx context.Context, tenantID string) (seen time.Time, ok bool, err error) {
	if v, mirrored := db.uploadsMissing.Load(tenantID); mirrored {
		if at := v.(int64); at != 0 {
			return fromMS(at), true, nil
		}
		return time.Time{}, false, nil
	}
	var at int64
	err = db.queryAll(ctx, `SELECT seen_at FROM tenant_uploads_missing WHERE tenant_id = ?`, []any{tenantID}, func(scan func(...any) error) error {
		ok = true
		return scan(&at)
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: read uploads missing: %w", err)
	}
	if db.ownsDir {
		db.uploadsMissing.LoadOrStore(tenantID, at) // a write meanwhile has stored what is newer
	}
	if !ok {
		return time.Time{}, false, nil
	}
	return fromMS(at), true, nil
}
