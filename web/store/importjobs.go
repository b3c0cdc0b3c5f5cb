package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ImportJob is a device import from CSV. Progress is re-read from Graph, so a job keeps only
// what identifies its devices.
type ImportJob struct {
	ID                           string // GUID, assigned when empty
	TenantID, ObjectID, ActorUPN string
	CreatedAt, UpdatedAt         time.Time
	State                        string // submitting, polling, done, failed
	Batches                      int
	Payload                      []byte // opaque JSON owned by the caller, who clears the hashes when done
	NextPollAt                   time.Time
}

const importJobColumns = `id, tenant_id, object_id, actor_upn, created_at, updated_at, state, batches, payload, next_poll_at`

// CreateImportJob stores a new job, assigning its ID and CreatedAt when empty.
func (db *DB) CreateImportJob(ctx context.Context, j *ImportJob) error {
	if j.TenantID == "" || j.State == "" {
		return errors.New("store: create import job: empty tenant or state")
	}
	if j.ID == "" {
		j.ID = newID()
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = db.now()
	}
	j.CreatedAt = fromMS(ms(j.CreatedAt))
	j.UpdatedAt = j.CreatedAt
	_, err := db.exec(ctx, `INSERT INTO import_jobs (`+importJobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.TenantID, j.ObjectID, j.ActorUPN, ms(j.CreatedAt), ms(j.UpdatedAt), j.State, j.Batches, j.Payload, nullableMS(j.NextPollAt))
	if err != nil {
		return fmt.Errorf("store: create import job: %w", err)
	}
	return nil
}

// UpdateImportJob writes a job's state, batches, payload and next poll time, and sets UpdatedAt.
func (db *DB) UpdateImportJob(ctx context.Context, j *ImportJob) error {
	now := fromMS(ms(db.now()))
	n, err := db.execCount(ctx, `UPDATE import_jobs SET updated_at = ?, state = ?, batches = ?, payload = ?, next_poll_at = ? WHERE tenant_id = ? AND id = ?`,
		ms(now), j.State, j.Batches, j.Payload, nullableMS(j.NextPollAt), j.TenantID, j.ID)
	if err != nil {
		return fmt.Errorf("store: update import job: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	j.UpdatedAt = now
	return nil
}

func scanImportJob(scan func(...any) error) (ImportJob, error) {
	var j ImportJob
	var created, updated int64
	var nextPoll sql.NullInt64
	err := scan(&j.ID, &j.TenantID, &j.ObjectID, &j.ActorUPN, &created, &updated, &j.State, &j.Batches, &j.Payload, &nextPoll)
	j.CreatedAt, j.UpdatedAt, j.NextPollAt = fromMS(created), fromMS(updated), fromNullableMS(nextPoll)
	return j, err
}

// GetImportJob reads one job of a tenant; another tenant's job is ErrNotFound.
func (db *DB) GetImportJob(ctx context.Context, tenantID, id string) (*ImportJob, error) {
	jobs, err := db.importJobs(ctx, `WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, ErrNotFound
	}
	return &jobs[0], nil
}

// ListImportJobs lists a tenant's jobs newest first; limit defaults to 50 and is at most 200.
func (db *DB) ListImportJobs(ctx context.Context, tenantID string, limit int) ([]ImportJob, error) {
	if limit <= 0 {
		limit = 50
	}
	return db.importJobs(ctx, `WHERE tenant_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, tenantID, min(limit, 200))
}

func (db *DB) importJobs(ctx context.Context, where string, args ...any) ([]ImportJob, error) {
	var jobs []ImportJob
	err := db.queryAll(ctx, `SELECT `+importJobColumns+` FROM import_jobs `+where, args, func(scan func(...any) error) error {
		j, err := scanImportJob(scan)
		jobs = append(jobs, j)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read import jobs: %w", err)
	}
	return jobs, nil
}
