package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SchemaChange is what Open did to the state database's schema: the version it found (0 for a
// new database), the version it left, and how long bringing it up to date took (waiting for
// another replica's migration included).
type SchemaChange struct {
	From, To int
	Took     time.Duration
}

// Schema says what Open did to the schema.
func (db *DB) Schema() SchemaChange { return db.schema }

// SchemaTooNewError is Open's refusal of a database that a newer release has migrated beyond
// the versions this build knows: reading it could misread what that release wrote.
type SchemaTooNewError struct {
	Found, Known int
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("the database schema is at version %d, newer than this build knows (%d)", e.Found, e.Known)
}

// MigrationError is a migration that failed: its transaction was rolled back, so the schema is
// still at From, on which the release that left it there still starts.
type MigrationError struct {
	From, To, Failed int
	Err              error
}

func (e *MigrationError) Error() string {
	return fmt.Sprintf("store: migration %d: %v", e.Failed, e.Err)
}

func (e *MigrationError) Unwrap() error { return e.Err }

// migrations are applied in order and recorded in schema_migrations; a migration that has
// shipped is never edited, only followed by another. {{blob}} is BLOB on SQLite, BYTEA on
// PostgreSQL; {{without_rowid}} clusters a SQLite table on its primary key.
var migrations = [][]string{
	1: {
		`CREATE TABLE sessions (
			id_hash TEXT PRIMARY KEY,
			user_key TEXT NOT NULL DEFAULT '',
			data {{blob}} NOT NULL,
			created_at BIGINT NOT NULL,
			last_seen_at BIGINT NOT NULL,
			expires_at BIGINT NOT NULL
		)`,
		`CREATE INDEX sessions_user ON sessions (user_key)`,
		`CREATE TABLE flows (
			id_hash TEXT PRIMARY KEY,
			state TEXT NOT NULL, nonce TEXT NOT NULL, verifier TEXT NOT NULL, return_to TEXT NOT NULL,
			data {{blob}},
			created_at BIGINT NOT NULL
		)`,
		`CREATE TABLE form_keys (
			key_hash TEXT PRIMARY KEY,
			session_hash TEXT NOT NULL,
			state TEXT NOT NULL,
			result_ref TEXT NOT NULL DEFAULT '',
			expires_at BIGINT NOT NULL
		)`,
		`CREATE TABLE rate_counters (
			bucket TEXT NOT NULL,
			window_start BIGINT NOT NULL,
			count INTEGER NOT NULL,
			PRIMARY KEY (bucket, window_start)
		)`,
		`CREATE TABLE activity (
			id TEXT PRIMARY KEY,
			at BIGINT NOT NULL,
			tenant_id TEXT NOT NULL, object_id TEXT NOT NULL, actor_name TEXT NOT NULL, actor_upn TEXT NOT NULL,
			action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, summary TEXT NOT NULL,
			status_code INTEGER NOT NULL, request_id TEXT NOT NULL, client_request_id TEXT NOT NULL,
			detail {{blob}}
		)`,
		`CREATE INDEX activity_tenant_at ON activity (tenant_id, at DESC, id DESC)`,
	},
	2: {
		`ALTER TABLE sessions RENAME COLUMN expires_at TO absolute_expires_at`,
		`CREATE INDEX sessions_last_seen ON sessions (last_seen_at)`,
		`CREATE INDEX flows_created ON flows (created_at)`,
		`CREATE INDEX form_keys_expires ON form_keys (expires_at)`,
		// Counters are short-lived: recreated with their own end so windows of any length sweep correctly.
		`DROP TABLE rate_counters`,
		`CREATE TABLE rate_counters (
			bucket TEXT NOT NULL,
			window_start BIGINT NOT NULL,
			window_end BIGINT NOT NULL,
			count INTEGER NOT NULL,
			PRIMARY KEY (bucket, window_start, window_end)
		)`,
		`CREATE INDEX rate_counters_end ON rate_counters (window_end)`,
		`CREATE INDEX activity_at ON activity (at)`,
		`CREATE INDEX activity_tenant_object_at ON activity (tenant_id, object_id, at DESC, id DESC)`,
		`CREATE TABLE import_jobs (
			id TEXT PRIMARY KEY,
			tenant_id TEXT NOT NULL, object_id TEXT NOT NULL, actor_upn TEXT NOT NULL,
			created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
			state TEXT NOT NULL,
			batches INTEGER NOT NULL,
			payload {{blob}},
			next_poll_at BIGINT
		)`,
		`CREATE INDEX import_jobs_tenant_created ON import_jobs (tenant_id, created_at DESC, id DESC)`,
	},
	// A create writes less: its activity row records which form key it completed (no second
	// write to form_keys), form_keys keeps only claims in a table clustered on the key, and
	// retention purges through the tenant index instead of an index of its own.
	3: {
		`ALTER TABLE activity ADD COLUMN form_key_hash TEXT`,
		`UPDATE activity SET form_key_hash = (SELECT k.key_hash FROM form_keys k WHERE k.state = 'done' AND k.result_ref = activity.id)
			WHERE id IN (SELECT result_ref FROM form_keys WHERE state = 'done')`,
		`CREATE UNIQUE INDEX activity_form_key ON activity (form_key_hash) WHERE form_key_hash IS NOT NULL`,
		`DROP INDEX activity_at`,
		`CREATE TABLE form_key_claims (
			key_hash TEXT PRIMARY KEY,
			session_hash TEXT NOT NULL,
			expires_at BIGINT NOT NULL
		){{without_rowid}}`,
		`INSERT INTO form_key_claims (key_hash, session_hash, expires_at) SELECT key_hash, session_hash, expires_at FROM form_keys`,
		`DROP TABLE form_keys`,
	},
	// Device imports advance in a background worker under a lease, keep each row of the file once
	// (the hash as bytes, overwritten when the job is final) and record each batch before it is
	// sent. Jobs of the earlier format keep their payload; the desk converts each on first read.
	4: {
		`ALTER TABLE import_jobs ADD COLUMN actor_name TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE import_jobs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE import_jobs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0`,
		`UPDATE import_jobs SET state = 'sending' WHERE state = 'polling'`,
		`UPDATE import_jobs SET state = 'finished' WHERE state = 'done'`,
		`CREATE INDEX import_jobs_due ON import_jobs (state, next_poll_at)`,
		`CREATE TABLE import_rows (
			job_id TEXT NOT NULL, line INTEGER NOT NULL,
			serial TEXT NOT NULL, product_key TEXT NOT NULL, group_tag TEXT NOT NULL, assigned_user TEXT NOT NULL,
			hash TEXT, hash_shown TEXT NOT NULL,
			notes TEXT NOT NULL, errors TEXT NOT NULL, already_imported INTEGER NOT NULL,
			batch INTEGER NOT NULL DEFAULT 0, verdict TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',
			device_id TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '', registration_id TEXT NOT NULL DEFAULT '',
			error_code INTEGER NOT NULL DEFAULT 0, error_name TEXT NOT NULL DEFAULT '', reconciled INTEGER NOT NULL DEFAULT 0,
			PRIMARY KEY (job_id, line)
		)`,
		`CREATE TABLE import_batches (
			job_id TEXT NOT NULL, batch INTEGER NOT NULL,
			state TEXT NOT NULL, attempts INTEGER NOT NULL, not_before BIGINT NOT NULL, sent_at BIGINT NOT NULL,
			activity_id TEXT NOT NULL, detail {{blob}}, lookups INTEGER NOT NULL,
			PRIMARY KEY (job_id, batch)
		)`,
	},
	// Registered Autopilot devices: an activity names the serial number it touched, so a device's
	// page finds its history; a checked import row keeps what the tenant already holds for its
	// serial; bulk changes are jobs of their own, each device recorded before it is sent; and
	// Intune's write budget is shared by every desk through the slots they take.
	5: {
		`ALTER TABLE activity ADD COLUMN serial TEXT NOT NULL DEFAULT ''`,
		`CREATE INDEX activity_tenant_serial ON activity (tenant_id, serial, at DESC)`,
		`CREATE INDEX import_rows_serial ON import_rows (UPPER(serial))`,
		`ALTER TABLE import_rows ADD COLUMN registered_id TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE import_rows ADD COLUMN registered_group_tag TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE import_rows ADD COLUMN registered_user TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE import_rows ADD COLUMN importing_job TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE bulk_jobs (
			id TEXT PRIMARY KEY,
			tenant_id TEXT NOT NULL, object_id TEXT NOT NULL, actor_upn TEXT NOT NULL, actor_name TEXT NOT NULL,
			created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
			state TEXT NOT NULL, action TEXT NOT NULL, group_tag TEXT NOT NULL,
			devices INTEGER NOT NULL, chunks INTEGER NOT NULL,
			payload {{blob}},
			next_poll_at BIGINT,
			lease_owner TEXT NOT NULL DEFAULT '', lease_until BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX bulk_jobs_due ON bulk_jobs (state, next_poll_at)`,
		`CREATE INDEX bulk_jobs_tenant_created ON bulk_jobs (tenant_id, created_at DESC, id DESC)`,
		`CREATE TABLE bulk_devices (
			job_id TEXT NOT NULL, position INTEGER NOT NULL,
			device_id TEXT NOT NULL, serial TEXT NOT NULL, manufacturer TEXT NOT NULL, model TEXT NOT NULL,
			group_tag TEXT NOT NULL, user_upn TEXT NOT NULL, enrollment_state TEXT NOT NULL,
			state TEXT NOT NULL, chunk INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
			not_before BIGINT NOT NULL DEFAULT 0, sent_at BIGINT NOT NULL DEFAULT 0, done_at BIGINT NOT NULL DEFAULT 0,
			lookups INTEGER NOT NULL DEFAULT 0, status_code INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',
			failure {{blob}}, activity_id TEXT NOT NULL DEFAULT '', reconciled INTEGER NOT NULL DEFAULT 0,
			PRIMARY KEY (job_id, position)
		)`,
		`CREATE UNIQUE INDEX bulk_devices_device ON bulk_devices (job_id, device_id)`,
		`CREATE INDEX bulk_devices_serial ON bulk_devices (UPPER(serial))`,
		`CREATE TABLE write_slots (bucket TEXT NOT NULL, at BIGINT NOT NULL, n INTEGER NOT NULL)`,
		`CREATE INDEX write_slots_bucket ON write_slots (bucket, at)`,
		`CREATE TABLE write_gates (bucket TEXT PRIMARY KEY, not_before BIGINT NOT NULL)`,
	},
	// Registration from the device: one-time codes (only their hash kept), what devices sent
	// with them (the hash as text until the submission is final), and who decided.
	6: {
		`CREATE TABLE registration_codes (
			id TEXT PRIMARY KEY,
			code_hash TEXT NOT NULL, form_key_hash TEXT,
			tenant_id TEXT NOT NULL, creator_oid TEXT NOT NULL, creator_upn TEXT NOT NULL, creator_name TEXT NOT NULL,
			note TEXT NOT NULL, group_tag TEXT NOT NULL, assigned_user TEXT NOT NULL,
			created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
			uses INTEGER NOT NULL, used INTEGER NOT NULL,
			revoked_at BIGINT NOT NULL, revoked_by TEXT NOT NULL
		)`,
		`CREATE UNIQUE INDEX registration_codes_hash ON registration_codes (code_hash)`,
		`CREATE UNIQUE INDEX registration_codes_form_key ON registration_codes (form_key_hash) WHERE form_key_hash IS NOT NULL`,
		`CREATE INDEX registration_codes_tenant ON registration_codes (tenant_id, created_at DESC)`,
		`CREATE TABLE registration_submissions (
			id TEXT PRIMARY KEY,
			code_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
			received_at BIGINT NOT NULL, client_ip TEXT NOT NULL, file_notes TEXT NOT NULL,
			state TEXT NOT NULL,
			decided_at BIGINT NOT NULL, decider_oid TEXT NOT NULL, decider_upn TEXT NOT NULL, decider_name TEXT NOT NULL,
			reason TEXT NOT NULL, refused TEXT NOT NULL, job_id TEXT NOT NULL,
			sync_at BIGINT NOT NULL, sync_note TEXT NOT NULL
		)`,
		`CREATE INDEX registration_submissions_tenant ON registration_submissions (tenant_id, state, received_at)`,
		`CREATE INDEX registration_submissions_code ON registration_submissions (code_id)`,
		`CREATE INDEX registration_submissions_state ON registration_submissions (state, job_id)`,
		`CREATE TABLE registration_devices (
			submission_id TEXT NOT NULL, line INTEGER NOT NULL,
			serial TEXT NOT NULL, product_key TEXT NOT NULL, group_tag TEXT NOT NULL, assigned_user TEXT NOT NULL,
			manufacturer TEXT NOT NULL, model TEXT NOT NULL,
			hash TEXT, hash_shown TEXT NOT NULL, notes TEXT NOT NULL,
			job_line INTEGER NOT NULL,
			PRIMARY KEY (submission_id, line)
		)`,
	},
	// What the desk learned about a tenant's Microsoft Graph: that it answers "Resource not found
	// for the segment" for the uploads collection, and when that was last seen.
	7: {
		`CREATE TABLE tenant_uploads_missing (tenant_id TEXT PRIMARY KEY, seen_at BIGINT NOT NULL)`,
	},
	// A serial's history is read through its index in the order it is shown (the index of
	// migration 5 lacked the id that breaks ties, so SQLite read the tenant's whole history
	// instead), and only activity naming a serial is in it: a create, which names none, no
	// longer writes an entry to it on the request's path.
	8: {
		`DROP INDEX activity_tenant_serial`,
		`CREATE INDEX activity_tenant_serial ON activity (tenant_id, serial, at DESC, id DESC) WHERE serial <> ''`,
	},
	// Every query reads through an index (TestQueriesReadThroughIndexes): a device's page finds
	// the changes made to it by its id through an index that, like the serial's, holds only
	// activity naming a serial (a create writes no entry to it); a tenant's codes are read in the
	// order shown, the id breaking ties; the follower's look for due syncs every two seconds reads
	// the few submissions waiting for one, not every finished submission; and the sweep deletes
	// sessions past their lifetime without reading every session's tokens.
	9: {
		`CREATE INDEX activity_tenant_target ON activity (tenant_id, target, at DESC, id DESC) WHERE serial <> ''`,
		`DROP INDEX registration_codes_tenant`,
		`CREATE INDEX registration_codes_tenant ON registration_codes (tenant_id, created_at DESC, id DESC)`,
		`CREATE INDEX registration_submissions_sync ON registration_submissions (state, job_id, sync_at) WHERE sync_at > 0`,
		`CREATE INDEX sessions_expires ON sessions (absolute_expires_at)`,
	},
	// The activity page filtered to what went wrong (a failure, an outcome not known) reads those
	// records alone, however long the tenant's history; a success, as most creates are, writes no
	// entry to the index.
	10: {
		`CREATE INDEX activity_tenant_trouble ON activity (tenant_id, outcome, at DESC, id DESC) WHERE outcome <> 'success'`,
	},
	// The ids Microsoft support asks for, of the answer that said a tenant's Graph has no
	// uploads: the pages that say so from memory show them too.
	11: {
		`ALTER TABLE tenant_uploads_missing ADD COLUMN support TEXT NOT NULL DEFAULT ''`,
	},
	// The activity page folds the records an import or a bulk change writes, one a batch, under
	// the newest of its job, and lists a job's records alone: both read them through an index that
	// holds only those records (jobActions), so other actions write no entry to it.
	12: {
		`CREATE INDEX activity_tenant_job ON activity (tenant_id, target, at DESC, id DESC) WHERE action IN ('import', 'bulk-change')`,
	},
	// A copy written by `autopilotdesk backup` records when it was taken (Backup writes the row
	// into the copy alone, creating the table in a copy of an older schema): the desk that opens
	// it, a restore, looks up in Graph what its imports and bulk changes had not sent by then
	// instead of sending it (takeUpBackup).
	backupTakenMigration: {
		`CREATE TABLE IF NOT EXISTS backup_taken (taken_at BIGINT NOT NULL)`,
	},
	// A bulk change still a draft in a restored backup records when the backup was taken: the
	// desk the backup came from may have confirmed it since, so it is not confirmed again.
	14: {
		`ALTER TABLE bulk_jobs ADD COLUMN restored_from BIGINT NOT NULL DEFAULT 0`,
	},
}

// migrationLockKey names the PostgreSQL advisory lock that serialises replicas starting at once.
const migrationLockKey = 0x4170_4465_736b // "ApDesk"

// migrate applies pending migrations in one transaction. On PostgreSQL an advisory lock makes
// a second process wait and then find nothing to do; on SQLite the immediate transaction's
// write lock does the same.
func (db *DB) migrate(ctx context.Context) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin migrations: %w", err)
	}
	defer tx.Rollback()
	if db.driver == driverPostgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	latest := len(migrations) - 1
	if current > latest {
		return &SchemaTooNewError{Found: current, Known: latest}
	}
	dialect := strings.NewReplacer("{{blob}}", "BLOB", "{{without_rowid}}", " WITHOUT ROWID")
	if db.driver == driverPostgres {
		dialect = strings.NewReplacer("{{blob}}", "BYTEA", "{{without_rowid}}", "")
	}
	for version := current + 1; version <= latest; version++ {
		for _, stmt := range migrations[version] {
			if _, err := tx.ExecContext(ctx, dialect.Replace(stmt)); err != nil {
				return &MigrationError{From: current, To: latest, Failed: version, Err: err}
			}
		}
		if _, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, ms(db.now())); err != nil {
			return &MigrationError{From: current, To: latest, Failed: version, Err: fmt.Errorf("record it: %w", err)}
		}
	}
	if err := tx.Commit(); err != nil {
		return &MigrationError{From: current, To: latest, Failed: latest, Err: fmt.Errorf("commit: %w", err)}
	}
	db.schema = SchemaChange{From: current, To: latest, Took: time.Since(start)}
	return nil
}
