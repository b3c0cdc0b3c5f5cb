// Package store is the desk's state database: sessions, sign-in flows, one-time form keys,
// rate-limit counters, the activity history and import jobs. One schema on two engines: an
// embedded SQLite file by default, PostgreSQL when several replicas share state.
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers "sqlite"
)

// ErrNotFound means no such row, or one that expired or was already used.
var ErrNotFound = errors.New("store: not found")

// DefaultSessionCacheSize is how many decoded sessions a SQLite database keeps in memory unless
// told otherwise.
const DefaultSessionCacheSize = 2048

// Options configure Open.
type Options struct {
	DataDir          string // SQLite: the directory of autopilotdesk.db (default "data")
	DatabaseURL      string // postgres:// or postgresql:// selects PostgreSQL
	Now              func() time.Time
	MaxOpenConns     int           // default 16 on PostgreSQL, 4 on SQLite
	StatementTimeout time.Duration // default 5s
	// ConnMaxIdleTime closes a pooled connection idle this long (default 5 minutes).
	ConnMaxIdleTime time.Duration
	// SlotWait bounds how long a new PostgreSQL connection waits for a free connection slot on a
	// server whose slots are all taken (default DefaultSlotWait), within the caller's context.
	SlotWait time.Duration
	// StartupWait bounds how long Open keeps retrying an unreachable PostgreSQL server
	// (default 30s), so replicas that start before their database do not crash-loop.
	StartupWait time.Duration
	// Waiting, when set, is told once that PostgreSQL did not answer at first, and how long Open
	// will keep trying.
	Waiting func(wait time.Duration, err error)
	// SessionCacheSize bounds how many decoded sessions a SQLite database keeps in memory
	// (default DefaultSessionCacheSize; negative turns the cache off). PostgreSQL never caches
	// sessions.
	SessionCacheSize int
	// FreeSpace, when set, says how many bytes the SQLite data folder's disk has free, instead of
	// asking the system (tests fill a disk this way).
	FreeSpace func(dir string) (uint64, error)

	checkpointEvery time.Duration // SQLite: default defaultCheckpointEvery; tests shorten it
}

// DB is the state database.
type DB struct {
	sql *sql.DB // reads; on PostgreSQL also writes
	// writer runs every statement that writes. On SQLite it is one connection: SQLite lets one
	// writer in at a time, and writers queueing in Go take their turn the moment the previous
	// one commits, where writers contending inside SQLite poll and sleep (1, 2, 5, 10 ms...).
	writer      *sql.DB
	driver      string
	now         func() time.Time
	stmtTimeout time.Duration
	schema      SchemaChange   // what Open's migration did
	restored    RestoredBackup // what Open found of a backup (SQLite)

	// SQLite only: the data folder's lock, held while open, and what it allows to keep in
	// memory: decoded sessions and rate-limit counts.
	dirLock      *os.File
	ownsDir      bool
	sessionCache *sessionCache
	counters     *counters
	// uploadsMissing mirrors tenant_uploads_missing (tenant id -> *UploadsMissing, nil for none)
	// once read, as only this process writes the folder's database.
	uploadsMissing sync.Map
	// sessionLocks serialise UpdateLocked per session on SQLite (PostgreSQL locks in the database).
	sessionLocks stripedLocks
	files        *sqliteFiles // SQLite: the files as opened, for Check
	// slotRefused counts the new PostgreSQL connections given up on for want of a free
	// connection slot (SlotRefusals).
	slotRefused slotRefusals

	// stmts holds prepared statements by query text: for the short queries of a request,
	// SQLite spends more time parsing a statement than running it.
	stmts     sync.Map // string -> *sql.Stmt
	stmtCount atomic.Int32
	closed    atomic.Bool

	// SQLite only: a token per connection of each pool. Statements run there with a context
	// that cannot be cancelled, because modernc.org/sqlite starts a watcher goroutine for every
	// statement whose context can be (a fifth of a create's writing time). The tokens keep the
	// wait for a connection bounded by the statement timeout all the same; a statement itself,
	// on a local file no other process writes, takes microseconds.
	writerSlots, readerSlots chan struct{}

	stopCheckpoints chan struct{} // SQLite: closed by Close
	background      sync.WaitGroup
	// truncatePending: content was overwritten (hashes) and the write-ahead log may still hold
	// its old pages; the checkpoint loop empties the log until it succeeds.
	truncatePending atomic.Bool
}

// defaultCheckpointEvery is how often SQLite's write-ahead log is copied into the database file.
const defaultCheckpointEvery = time.Second

// checkpoints copies the write-ahead log into the database file in the background, on a reader
// connection, so neither requests nor the writer wait for it. A PASSIVE checkpoint never
// waits for readers or writers; what it cannot copy now, the next one does.
func (db *DB) checkpoints(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-db.stopCheckpoints:
			return
		case <-t.C:
			if db.truncatePending.Load() {
				db.scrub(context.Background())
			} else {
				db.checkpoint()
			}
		}
	}
}

// errClosed answers queries after Close.
var errClosed = errors.New("store: the database is closed")

// maxPrepared bounds the statement cache; the store's queries come from a fixed set of texts,
// so the bound only guards against a future query built from unbounded input (beyond it,
// statements are prepared for one call).
const maxPrepared = 256

const (
	driverSQLite   = "sqlite"
	driverPostgres = "postgres"
)

// Open connects, applies pending migrations and returns the database.
func Open(ctx context.Context, o Options) (*DB, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 5 * time.Second
	}
	if o.StartupWait <= 0 {
		o.StartupWait = 30 * time.Second
	}
	db := &DB{now: func() time.Time { return o.Now().UTC() }, stmtTimeout: o.StatementTimeout}
	var err error
	if isPostgresURL(o.DatabaseURL) {
		err = db.openPostgres(ctx, o)
	} else {
		err = db.openSQLite(&o)
	}
	if err != nil {
		return nil, err
	}
	if o.ConnMaxIdleTime <= 0 {
		o.ConnMaxIdleTime = 5 * time.Minute
	}
	db.sql.SetConnMaxIdleTime(o.ConnMaxIdleTime)
	if err := db.migrate(ctx); err != nil {
		db.Close()
		if damaged(err) {
			if failed := (*MigrationError)(nil); errors.As(err, &failed) {
				err = failed.Err // the file, not the migration, is what failed
			}
			return nil, fmt.Errorf("store: %s is not a SQLite database the desk can read (%w): restore it from a backup "+
				"(moving it aside starts the desk with an empty state database)", filepath.Join(o.DataDir, "autopilotdesk.db"), err)
		}
		return nil, err
	}
	if db.driver == driverSQLite {
		if err := db.takeUpBackup(ctx); err != nil {
			db.Close()
			return nil, err
		}
		if db.files, err = openedFiles(o.DataDir, o.FreeSpace); err != nil {
			db.Close()
			return nil, err
		}
		if db.ownsDir {
			if err := db.releaseLeasesOfEarlierProcesses(ctx); err != nil {
				db.Close()
				return nil, err
			}
		}
		db.stopCheckpoints = make(chan struct{})
		every := o.checkpointEvery
		if every <= 0 {
			every = defaultCheckpointEvery
		}
		db.truncatePending.Store(true) // a crash may have left overwritten content in the log
		db.background.Go(func() { db.checkpoints(every) })
	}
	return db, nil
}

// openPostgres connects to the PostgreSQL server of o.DatabaseURL, waiting for it to start.
func (db *DB) openPostgres(ctx context.Context, o Options) error {
	db.driver = driverPostgres
	cfg, err := pgx.ParseConfig(o.DatabaseURL)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if o.SlotWait <= 0 {
		o.SlotWait = DefaultSlotWait
	}
	db.sql = sql.OpenDB(slotWaiter{
		Connector: stdlib.GetConnector(*cfg, stdlib.OptionAfterConnect(noteOpened), stdlib.OptionResetSession(dropIfStale)),
		wait:      o.SlotWait, refused: &db.slotRefused})
	conns := o.MaxOpenConns
	if conns <= 0 {
		conns = 16
	}
	db.sql.SetMaxOpenConns(conns)
	db.sql.SetMaxIdleConns(conns)
	db.sql.SetConnMaxLifetime(30 * time.Minute) // follow a fail-over to a new primary
	db.writer = db.sql
	if err := db.waitForServer(ctx, o.StartupWait, o.Waiting); err != nil {
		db.sql.Close()
		return err
	}
	return nil
}

// openSQLite opens autopilotdesk.db in o.DataDir, holding the folder's lock while open.
func (db *DB) openSQLite(o *Options) error {
	db.driver = driverSQLite
	if o.DataDir == "" {
		o.DataDir = "data"
	}
	dir := o.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: data directory: %w", err)
	}
	lock, locked, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	if err := ownerOnly(filepath.Join(dir, "autopilotdesk.db")); err != nil {
		lock.Close()
		return err
	}
	db.dirLock, db.ownsDir = lock, locked
	if locked {
		db.counters = newCounters()
	}
	if size := o.SessionCacheSize; locked && size >= 0 {
		if size == 0 {
			size = DefaultSessionCacheSize
		}
		db.sessionCache = newSessionCache(size)
	}
	// busy_timeout comes first so that the switch to WAL also waits for other processes.
	// secure_delete: deleted content (hardware hashes, once a job is final) is overwritten
	// with zeros, not only unlinked.
	// wal_autocheckpoint(0): no commit copies the log into the database file on a request's
	// time (with an fsync); checkpoints runs that in the background instead.
	// _txlock=immediate: a transaction takes the write lock at BEGIN, so concurrent
	// writers queue on busy_timeout instead of failing when they upgrade a read lock.
	// secure_delete(1): what a statement deletes or replaces (tokens, hashes) is overwritten
	// with zeros, not left in free space; scrub then empties the log that still holds it.
	dsn := "file:" + filepath.Join(dir, "autopilotdesk.db") +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)" +
		"&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(16777216)&_pragma=secure_delete(1)&_txlock=immediate"
	if db.sql, err = sql.Open("sqlite", dsn); err != nil {
		lock.Close()
		return fmt.Errorf("store: %w", err)
	}
	if db.writer, err = sql.Open("sqlite", dsn); err != nil {
		db.sql.Close()
		lock.Close()
		return fmt.Errorf("store: %w", err)
	}
	// In WAL mode readers do not wait for the writer: a few connections serve them.
	conns := o.MaxOpenConns
	if conns <= 0 {
		conns = 4
	}
	db.sql.SetMaxOpenConns(conns)
	db.sql.SetMaxIdleConns(conns) // each connection carries its pragmas: keep them
	db.writer.SetMaxOpenConns(1)
	db.writer.SetMaxIdleConns(1)
	db.writerSlots, db.readerSlots = make(chan struct{}, 1), make(chan struct{}, conns)
	db.writer.SetConnMaxIdleTime(5 * time.Minute)
	return nil
}

// execGuarded runs a statement whose guards must hold for one row at least (ErrConflict otherwise).
func (t *txn) execGuarded(query string, args ...any) error {
	n, err := t.exec(query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrConflict
	}
	return nil
}

// changeErr is what a change's transaction returns to its caller: ErrConflict as it is (a guard
// did not hold), any other failure wrapped with what was being done.
func changeErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrConflict):
		return ErrConflict
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

func isPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// waitForServer pings with exponential backoff until the server answers, the wait is over, or
// the server refuses for a reason waiting cannot fix (wrong password, no such database).
func (db *DB) waitForServer(ctx context.Context, wait time.Duration, waiting func(time.Duration, error)) error {
	start := time.Now()
	deadline, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		err := db.Ping(deadline)
		if err == nil {
			if err = db.acceptsWrites(deadline); err == nil {
				return nil
			}
		}
		if !transientConnectError(err) {
			return fmt.Errorf("store: connect to PostgreSQL: %w", err)
		}
		if waiting != nil && delay == 50*time.Millisecond {
			waiting(wait, err)
		}
		select {
		case <-deadline.Done():
			if ctx.Err() != nil { // stopped (Ctrl-C, a shutdown) before the wait was over
				return fmt.Errorf("store: stopped while waiting for PostgreSQL, which had not answered for %s: %w",
					time.Since(start).Round(100*time.Millisecond), err)
			}
			if errors.Is(err, ErrDatabaseReadOnly) {
				return fmt.Errorf("store: PostgreSQL accepted no writes for %s: %w", wait, err)
			}
			return fmt.Errorf("store: PostgreSQL did not answer within %s: %w", wait, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

func transientConnectError(err error) bool {
	if errors.Is(err, ErrDatabaseReadOnly) { // a fail-over under way: the new primary is near
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P03", "53300": // cannot_connect_now (starting up), too_many_connections
			return true
		}
		return false
	}
	return true
}

// ownerOnly creates the SQLite file readable and writable by this user alone (0600), and makes
// an existing one and its -wal and -shm files so. SQLite creates the -wal and -shm files with
// the database file's permissions, so they follow.
func ownerOnly(dbPath string) error {
	f, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: state database file: %w", err)
	}
	f.Close()
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: state database file: %w", err)
		}
	}
	return nil
}

// Close closes the prepared statements and the database.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	if db.stopCheckpoints != nil {
		close(db.stopCheckpoints)
		db.background.Wait()
	}
	db.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	err := db.sql.Close()
	if db.writer != db.sql {
		err = errors.Join(err, db.writer.Close())
	}
	if db.dirLock != nil {
		db.dirLock.Close() // after the database, so the next process finds it closed
	}
	return err
}

// prepared returns query's statement on pool: the cached one, prepared on first use, or once the
// cache is full one for this call only (cached is false; the caller closes it).
func (db *DB) prepared(ctx context.Context, pool *sql.DB, query string) (stmt *sql.Stmt, cached bool, err error) {
	if db.closed.Load() {
		return nil, false, errClosed
	}
	if s, ok := db.stmts.Load(query); ok {
		return s.(*sql.Stmt), true, nil
	}
	s, err := pool.PrepareContext(ctx, db.rebind(query))
	if err != nil {
		return nil, false, err
	}
	if db.stmtCount.Load() >= maxPrepared {
		return s, false, nil
	}
	if prev, loaded := db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), true, nil
	}
	db.stmtCount.Add(1)
	return s, true, nil
}

// Driver is "sqlite" or "postgres".
func (db *DB) Driver() string { return db.driver }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, db.stmtTimeout)
	defer cancel()
	return db.sql.PingContext(ctx)
}

// checkpoint runs one PASSIVE checkpoint on a reader connection; a failure is retried on the
// next tick.
func (db *DB) checkpoint() {
	db.walCheckpoint(context.Background(), db.sql, "PASSIVE")
}

// walCheckpoint runs a checkpoint of mode on a connection of pool, within the statement timeout,
// and reports whether it copied and (TRUNCATE) emptied the whole log.
func (db *DB) walCheckpoint(ctx context.Context, pool *sql.DB, mode string) bool {
	ctx, cancel := context.WithTimeout(ctx, db.stmtTimeout)
	defer cancel()
	release, err := db.acquire(ctx, pool)
	if err != nil {
		return false
	}
	defer release()
	var busy, logPages, copied int
	err = pool.QueryRowContext(context.WithoutCancel(ctx), `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &logPages, &copied)
	return err == nil && busy == 0
}

// scrub empties SQLite's write-ahead log after secrets were deleted: a TRUNCATE checkpoint
// copies the pages, overwritten by secure_delete, into the database file and truncates the log,
// whose older frames still hold what was deleted. A reader on an older snapshot can keep it from
// finishing; the checkpoint loop then tries again every tick until it does. PostgreSQL keeps
// deleted rows until VACUUM reuses their space; nothing here can overwrite them.
func (db *DB) scrub(ctx context.Context) {
	if db.driver == driverSQLite {
		done := db.walCheckpoint(ctx, db.writer, "TRUNCATE") // on the writer: no write of ours can interleave
		db.truncatePending.Store(!done)
	}
}

// LogTruncatePending reports whether deleted secrets may still be in SQLite's write-ahead log,
// waiting for the log to be emptied.
func (db *DB) LogTruncatePending() bool { return db.truncatePending.Load() }

// acquire waits, within ctx, for a connection slot of pool and returns its release. On
// PostgreSQL there are no slots: the pool's own wait honours ctx, and a new connection waits
// for the server's free slot (slotWaiter).
func (db *DB) acquire(ctx context.Context, pool *sql.DB) (release func(), err error) {
	if db.writerSlots == nil {
		return func() {}, nil
	}
	slots := db.readerSlots
	if pool == db.writer {
		slots = db.writerSlots
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// statement readies query to run: the statement timeout, on SQLite a connection slot, and the
// prepared statement. It returns the context to run the statement with (on SQLite one that
// cannot be cancelled, see writerSlots) and done, which releases everything.
func (db *DB) statement(ctx context.Context, query string) (_ context.Context, _ *sql.Stmt, done func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, db.stmtTimeout)
	pool := db.pool(query)
	release, err := db.acquire(ctx, pool)
	if err != nil {
		cancel()
		return nil, nil, nil, classify(err)
	}
	run := ctx
	if db.writerSlots != nil {
		run = context.WithoutCancel(ctx)
	}
	stmt, cached, err := db.prepared(run, pool, query)
	if err != nil {
		release()
		cancel()
		return nil, nil, nil, classify(err)
	}
	return run, stmt, func() {
		if !cached {
			stmt.Close()
		}
		release()
		cancel()
	}, nil
}

// pool is where query runs: the writer unless it only reads.
func (db *DB) pool(query string) *sql.DB {
	q := strings.TrimLeft(query, " \t\n")
	if len(q) >= 6 && strings.EqualFold(q[:6], "SELECT") {
		return db.sql
	}
	return db.writer
}

// rebind turns ? placeholders into PostgreSQL's $1, $2, ...; the queries of this package never
// contain a literal question mark.
func (db *DB) rebind(query string) string {
	if db.driver != driverPostgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, stmt, done, err := db.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	defer done()
	res, err := stmt.ExecContext(ctx, args...)
	return res, classify(err)
}

// execCount runs a statement and returns how many rows it changed.
func (db *DB) execCount(ctx context.Context, query string, args ...any) (int, error) {
	res, err := db.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// queryRow runs a single-row query and scans it under the statement timeout.
func (db *DB) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	ctx, stmt, done, err := db.statement(ctx, query)
	if err != nil {
		return err
	}
	defer done()
	err = stmt.QueryRowContext(ctx, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return classify(err)
}

// queryAll runs a query under the statement timeout and scans every row with scanRow.
func (db *DB) queryAll(ctx context.Context, query string, args []any, scanRow func(scan func(...any) error) error) error {
	ctx, stmt, done, err := db.statement(ctx, query)
	if err != nil {
		return err
	}
	defer done()
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scanRow(rows.Scan); err != nil {
			return classify(err)
		}
	}
	return classify(rows.Err())
}

// queryList runs a query under the statement timeout and returns its rows as scanRow reads them.
func queryList[T any](ctx context.Context, db *DB, query string, args []any, scanRow func(scan func(...any) error) (T, error)) ([]T, error) {
	var out []T
	err := db.queryAll(ctx, query, args, func(scan func(...any) error) error {
		v, err := scanRow(scan)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// only is the one row a lookup by key found, or ErrNotFound.
func only[T any](rows []T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return &rows[0], nil
}

// scanString reads a row of one text column.
func scanString(scan func(...any) error) (s string, err error) {
	err = scan(&s)
	return s, err
}

// stamp gives a new record its id and time when the caller left them empty, the time kept to
// the millisecond, as it is stored.
func (db *DB) stamp(id *string, at *time.Time) {
	if *id == "" {
		*id = newID()
	}
	if at.IsZero() {
		*at = db.now()
	}
	*at = fromMS(ms(*at))
}

// Times are stored as Unix milliseconds (UTC by definition) so both engines compare and order
// them the same way.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// nullableMS keeps "no time" apart from the Unix epoch.
func nullableMS(t time.Time) sql.NullInt64 {
	return sql.NullInt64{Int64: ms(t), Valid: !t.IsZero()}
}

func fromNullableMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// hashID keeps only a hash of bearer-like identifiers (session ids, flow ids, form keys) in the
// database, so a leaked copy of it cannot be replayed as a cookie.
func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}
