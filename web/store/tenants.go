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
		return fmt.Errorf("store: remember uploads missing: %w", err)
	}
	return nil
}

// ForgetUploadsMissing records that a tenant's Microsoft Graph answered for the uploads collection
// again.
func (db *DB) ForgetUploadsMissing(ctx context.Context, tenantID string) error {
	if _, err := db.exec(ctx, `DELETE FROM tenant_uploads_missing WHERE tenant_id = ?`, tenantID); err != nil {
		return fmt.Errorf("store: forget uploads missing: %w", err)
	}
	return nil
}

// UploadsMissingSince is when a tenant's Microsoft Graph was last seen answering that it does not
// know the uploads collection; ok is false when it has not been seen (or answered since).
func (db *DB) UploadsMissingSince(ctx context.Context, tenantID string) (seen time.Time, ok bool, err error) {
	var at int64
	err = db.queryAll(ctx, `SELECT seen_at FROM tenant_uploads_missing WHERE tenant_id = ?`, []any{tenantID}, func(scan func(...any) error) error {
		ok = true
		return scan(&at)
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: read uploads missing: %w", err)
	}
	if !ok {
		return time.Time{}, false, nil
	}
	return fromMS(at), true, nil
}
