package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/handlers/registration"
	"autopilotdesk/static"
	"autopilotdesk/web"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// app is the desk wired together: everything serve needs, and everything a test needs to drive it.
type app struct {
	cfg      config
	recorder *handlers.ActivityRecorder
	// stop ends the background work newApp started; Close waits for it.
	stop       context.CancelFunc
	background sync.WaitGroup
	log        *slog.Logger
	db         *store.DB
	shell      *web.Shell
	graph      *graphclient.Client
	demo       *demo.Services // nil outside demo mode
	handler    http.Handler
	now        func() time.Time
	health     *web.Health
	metrics    *web.Metrics
	assets     *static.Assets
	imports    *importer.Worker
	checks     *importer.Checker
	bulk       *bulk.Worker
	workers    sync.WaitGroup // the import and bulk workers, waited for apart at Close
	follower   *registration.Follower
	// syncSettings is the tenant's Autopilot sync the devices list read a moment ago, forgotten
	// by every sync this desk asks.
	syncSettings *handlers.SyncSettings
}

// observeGraph logs every Graph attempt with the ids a support ticket needs, and counts it.
func (a *app) observeGraph(r graphclient.CallRecord) {
	level := slog.LevelInfo
	if r.Err != nil {
		level = slog.LevelWarn
	}
	a.log.Log(context.Background(), level, "graph call", "operation", r.Operation, "method", r.Method, "status", r.Status,
		"attempt", r.Attempt, "duration_ms", float64(r.Duration.Microseconds())/1000,
		"client_request_id", r.ClientRequestID, "request_id", r.ReqID, "date", r.Date, "outcome_unknown", r.OutcomeUnknown)
	a.metrics.GraphCall(r.Operation, r.Status, r.Duration, r.Attempt, r.OutcomeUnknown)
}

// sessionStore is the desk's session store over its state database.
func (a *app) sessionStore() *store.SessionStore {
	return a.db.SessionStore(store.SessionOptions{CookieName: web.SessionCookieName, Secure: true, Codec: web.SessionCodec{},
		IdleTimeout: a.cfg.IdleTimeout, AbsoluteLifetime: a.cfg.SessionLifetime})
}

// appOptions are the seams tests use: a clock of their own, a client for the identity provider,
// and the demo emulator's paging and delays.
type appOptions struct {
	Now func() time.Time
	// StateFreeSpace, when set, is the room on the SQLite data folder's disk (tests fill it).
	StateFreeSpace func(dir string) (uint64, error)
	// SlotWait overrides how long a new PostgreSQL connection waits for a free connection slot
	// (store.DefaultSlotWait), and StateIdleTime how long a pooled connection stays open idle.
	SlotWait, StateIdleTime time.Duration
	// HTTPClient is used for calls to the identity provider (tests use loopback TLS clients).
	HTTPClient *http.Client
	// EmulatorPageSize overrides the demo emulator's page size (tests of paging).
	EmulatorPageSize int
	// ImportDelays override how long demo imports stay unknown and pending.
	ImportDelays emulator.ImportDelays
	// SyncDuration overrides how long a demo Autopilot sync runs.
	SyncDuration time.Duration
	// ConsistencyDelay is how long a change to a demo registered device takes to show in reads
	// (zero: at once; the desk run by hand uses demoConsistencyDelay).
	ConsistencyDelay time.Duration
	// RecordRetry is how soon an activity the state database refused is tried again (default 1s,
	// doubling to a minute while it keeps failing).
	RecordRetry time.Duration
	// Import worker seams: a fault hook that stops the worker at a point as a crash would, and
	// shorter leases and look-up delays than production's.
	ImportFault         func(point string) error
	ImportLease         time.Duration
	ImportLookupDelays  []time.Duration
	ImportPausedRecheck time.Duration
	// RegistrationEvery is how often the registration follower looks (default 2 s).
	RegistrationEvery time.Duration
	// The bulk worker's seams, alike.
	BulkFault        func(point string) error
	BulkLease        time.Duration
	BulkLookupDelays []time.Duration
}

// clocks sets the desk's clock (time.Now unless a test gave one) and returns the clock it times
// Graph's answers by and how it draws client-request-ids (nil: at random). A repeatable demo
// keeps all three, as well as the demo services'.
func (o *appOptions) clocks(cfg config) (repeatable *demo.Repeatable, graphTime func() time.Time, newRequestID func() string) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if !cfg.Demo || cfg.DemoTime.IsZero() {
		return nil, o.Now, nil
	}
	repeatable = demo.NewRepeatable(cfg.DemoTime)
	o.Now = repeatable.Now
	return repeatable, repeatable.Ticks, repeatable.NewRequestID
}

// logSchema says in one INFO line the state database's schema version, and whether the desk
// created it or brought it up to date from an earlier release, with how long that took.
func logSchema(log *slog.Logger, s store.SchemaChange) {
	switch {
	case s.From == 0:
		log.Info("state database created", "schema_version", s.To, "took_ms", s.Took.Milliseconds())
	case s.From < s.To:
		log.Info("state database schema upgraded", "from_version", s.From, "to_version", s.To, "took_ms", s.Took.Milliseconds())
	default:
		log.Info("state database schema up to date", "schema_version", s.To)
	}
}

func newApp(ctx context.Context, cfg config, log *slog.Logger, o appOptions) (_ *app, err error) {
	repeatable, graphTime, newRequestID := o.clocks(cfg)
	a := &app{cfg: cfg, log: log, now: o.Now}
	defer func() {
		if err != nil {
			a.Close() // whatever was started before the failure
		}
	}()
	a.db, err = store.Open(ctx, store.Options{DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL, Now: o.Now,
		MaxOpenConns: cfg.DatabaseMaxConns, StartupWait: cfg.DatabaseStartupWait, FreeSpace: o.StateFreeSpace,
		SlotWait: o.SlotWait, ConnMaxIdleTime: o.StateIdleTime,
		Waiting: func(wait time.Duration, err error) {
			log.Info("waiting for PostgreSQL to answer before starting", "up_to", wait.String(), "setting", optDatabaseStartupWait.env, "error", err.Error())
		}})
	if errors.Is(err, store.ErrDataDirInUse) {
		return nil, fmt.Errorf("open state database: %w: run one desk per SQLite data folder, or share state through PostgreSQL (%s) to run several",
			err, optDatabaseURL.env)
	}
	if tooNew := (*store.SchemaTooNewError)(nil); errors.As(err, &tooNew) {
		return nil, fmt.Errorf("open state database: %s is at schema version %d, which a newer release of Autopilot Desk brought it to; "+
			"this release knows versions up to %d and does not start on it, so as not to misread it. Start that newer release (or a later one) again, "+
			"or, to go back to this release, restore the backup taken before the upgrade (see Upgrading in docs/deploy.md)",
			cfg.stateDatabase(), tooNew.Found, tooNew.Known)
	}
	if failed := (*store.MigrationError)(nil); errors.As(err, &failed) {
		return nil, fmt.Errorf("open state database: upgrading %s from schema version %d to %d failed at migration %d (%v), so nothing was changed: "+
			"it is still at version %d, on which the release that left it there still starts. Start this release again once the cause is fixed; "+
			"a database changed outside the desk fails this way every time: restore the backup taken before the upgrade (see Upgrading in docs/deploy.md)",
			cfg.stateDatabase(), failed.From, failed.To, failed.Failed, failed.Err, failed.From)
	}
	if err != nil {
		if explained := dataDirProblem(err, cfg.DataDir); cfg.DatabaseURL == "" && explained != nil {
			return nil, explained
		}
		if explained := databaseProblem(err); cfg.DatabaseURL != "" && explained != nil {
			return nil, explained
		}
		return nil, fmt.Errorf("open state database: %w", err)
	}
	logSchema(log, a.db.Schema())
	if r := a.db.Restored(); !r.TakenAt.IsZero() {
		log.Info("state database restored from a backup: what its imports and bulk changes had not sent by then is looked up in Microsoft Graph, not sent",
			"backup_taken_at", r.TakenAt.Format(time.RFC3339), "batches", r.Batches, "devices", r.Devices,
			"bulk_changes", r.BulkChanges, "bulk_devices", r.BulkDevices, "bulk_drafts", r.BulkDrafts)
	}
	if a.db.Driver() == "sqlite" && !a.db.OwnsDataDir() {
		log.Warn("the data folder's file system cannot lock files: sessions and rate-limit counts are read from the database on every request, and nothing stops a second desk from using the same folder",
			"data_dir", cfg.DataDir)
	}
	httpClient := o.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second, Transport: graphclient.SharedTransport()}
	}

	idCfg, graphRoot, err := a.identityConfig(o, httpClient, repeatable)
	if err != nil {
		return nil, err
	}
	provider, err := a.discover(ctx, idCfg)
	if err != nil {
		return nil, err
	}
	a.metrics = web.NewMetrics(func(ctx context.Context) (int, error) { return a.db.CountActiveSessions(ctx, cfg.IdleTimeout) })
	a.metrics.StateSchema(a.db.Schema().To)
	a.graph, err = graphclient.New(graphclient.Config{Root: graphRoot, Version: cfg.GraphVersion, Timeout: cfg.GraphTimeout, Now: graphTime,
		Observer: a.observeGraph, NewRequestID: newRequestID})
	if err != nil {
		return nil, fmt.Errorf("graph client: %w", err)
	}
	a.assets, err = static.Load()
	if err != nil {
		return nil, err
	}
	sessions := a.sessionStore()
	a.health = web.NewHealth(a.db, log)
	a.shell = web.New(web.Options{State: a.health,
		Logger: log, Assets: a.assets, Sessions: sessions, Refresher: refresher{provider},
		Demo: cfg.Demo, DemoGraph: demoGraphHost(cfg), PublicURL: cfg.PublicURL, TrustedProxies: cfg.TrustedProxies, TrustedProxiesSetting: optTrustedProxies.env, Now: o.Now,
		SignInOrigins: originsOf(idCfg.IssuerURL),
		UploadLimit:   handlers.MaxUploadBytes, UploadPaths: []string{"/devices/import"}, UploadTooLarge: handlers.UploadTooLarge(cfg.ImportMaxRows), Metrics: a.metrics,
	})
	a.recorder = handlers.NewActivityRecorder(a.db, log, o.Now, o.RecordRetry)
	a.recorder.Refuse = func() error {
		// A removed SQLite file still takes writes, which nobody will read again.
		if p := a.health.Problem(); errors.Is(p, store.ErrDatabaseLost) {
			return p
		}
		return nil
	}
	activity := a.recorder
	owners := web.OwnerTokens{Sessions: sessions, Shell: a.shell}
	imports := jobs.Options{Tokens: owners, Logger: log, Now: o.Now, Lease: o.ImportLease, PausedRecheck: o.ImportPausedRecheck, Fault: o.ImportFault,
		State: a.health}
	budget := &bulk.Budget{Store: a.db, Writes: cfg.WriteBudget, Window: cfg.WriteWindow}
	a.imports = importer.New(importer.Options{Options: imports, Store: a.db, Graph: a.graph, LookupDelays: o.ImportLookupDelays, Reached: a.metrics.ImportJob,
		Holds: budget})
	a.checks = importer.NewChecker(importer.CheckerOptions{Options: imports, Store: a.db, Graph: a.graph})
	a.syncSettings = &handlers.SyncSettings{}
	a.follower = registration.NewFollower(registration.Options{Store: registrationStore{a.db, activity}, Graph: a.graph, Tokens: owners,
		Worker: a.imports, Logger: log, Now: o.Now, Every: o.RegistrationEvery, State: a.health, Synced: a.syncSettings.ForgetTenant})
	waiting := &handlers.WaitingCount{Store: a.db}
	changes := jobs.Options{Tokens: owners, Logger: log, Now: o.Now, Lease: o.BulkLease, PausedRecheck: o.ImportPausedRecheck, Fault: o.BulkFault,
		State: a.health}
	a.bulk = bulk.New(bulk.Options{Options: changes, Store: a.db, Graph: a.graph, Budget: budget, LookupDelays: o.BulkLookupDelays})
	handlers.Routes(a.shell, a.features(provider, budget, waiting, o.Now))
	a.health.Routes(a.shell.Echo)
	if cfg.MetricsToken != "" {
		web.GET(a.shell.Echo, "/metrics", echo.WrapHandler(a.metrics.Handler(cfg.MetricsToken)))
	}
	a.handler = a.shell.Echo
	background, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = stop
	a.background.Go(func() { a.recorder.Run(background) })
	a.background.Go(func() { a.health.Run(background, stateCheckEvery) })
	for range importWorkers {
		a.workers.Go(func() { a.imports.Run(background) })
		a.workers.Go(func() { a.checks.Run(background) })
		a.workers.Go(func() { a.bulk.Run(background) })
	}
	a.background.Go(func() { a.follower.Run(background) })
	return a, nil
}

// features are the desk's handlers over its database, Graph client, workers and shell.
func (a *app) features(provider *identity.Provider, budget *bulk.Budget, waiting *handlers.WaitingCount, now func() time.Time) handlers.Features {
	auth := &handlers.Auth{Provider: provider, Flows: a.db, Sessions: a.shell, PublicURL: a.cfg.PublicURL.String(),
		Settings: handlers.SettingNames{TenantID: optTenantID.env, ClientID: optClientID.env, ClientSecret: optClientSecret.env,
			ClientCertificate: optClientCertFile.env, PublicURL: optPublicURL.env},
		AllowedGroups: a.cfg.AllowedGroups, Groups: a.graph, Demo: a.cfg.Demo, Logger: a.log, Observe: a.metrics.SignIn,
		SendToPublicURL: !a.cfg.publicFromAddr || !wildcardAddr(a.cfg.Addr)}
	listPages := &handlers.ListPages{}
	return handlers.Features{
		Auth:     auth,
		Home:     &handlers.Home{Graph: a.graph, Tokens: a.shell, Tenants: a.db, Now: now},
		Uploads:  &handlers.Uploads{Graph: a.graph, Tokens: a.shell, Activity: a.recorder, Keys: a.db, Recorded: a.recorder, Tenants: a.db, Holds: budget, Now: now},
		Activity: &handlers.Activity{History: a.db, Jobs: a.db, Recorded: a.recorder, Graph: a.graph, Tokens: a.shell, Records: a.db, Now: now},
		Registered: &handlers.Registered{Graph: a.graph, Tokens: a.shell, Activity: a.recorder, Recorded: a.recorder, Keys: a.db, History: a.db, Budget: budget, Records: a.db,
			Pages: listPages, Sync: a.syncSettings, Now: now, Logger: a.log},
		Bulk: &handlers.BulkChanges{Graph: a.graph, Serials: a.graph, Tokens: a.shell, Jobs: a.db, Keys: a.db, Worker: a.bulk, Budget: budget, Holds: budget, InFlight: a.bulk.InFlight(), Pages: listPages,
			Now: now, Logger: a.log},
		Devices: &handlers.Devices{Graph: a.graph, Tokens: a.shell, Jobs: a.db, Activity: a.recorder, Worker: a.imports, Checker: a.checks, MaxRows: a.cfg.ImportMaxRows,
			SyncRead: a.syncSettings, Now: now, Logger: a.log, JobState: a.metrics.ImportJob},
		Registration: &handlers.Registration{Store: a.db, Graph: a.graph, Tokens: a.shell, Worker: a.imports, Follower: a.follower,
			PublicURL: a.cfg.PublicURL.String(), SelfApprove: a.cfg.RegistrationSelfApprove, Demo: a.cfg.Demo, DemoApprovers: a.demoApprovers(),
			Count: waiting, Now: now, Logger: a.log},
		Register: &handlers.Register{Store: a.db, Counter: a.db, PerClient: a.cfg.RegisterLimit, WrongCodes: a.cfg.RegisterWrongLimit,
			PublicURL: a.cfg.PublicURL.String(), Count: waiting, Now: now, Logger: a.log},
		Limits: handlers.Limits{Counter: a.db, SignIn: a.cfg.SignInLimit, Create: a.cfg.CreateLimit},
	}
}

// demoApprovers are the demo's accounts that may approve registered devices: those whose
// sign-in grants the desk its write permission and whose Intune role may write. None outside
// demo mode.
func (a *app) demoApprovers() []handlers.DemoAccount {
	if a.demo == nil {
		return nil
	}
	var out []handlers.DemoAccount
	for _, id := range a.demo.IdP.Identities() {
		if id.TenantID == demoidp.DemoTenantID && !id.IntuneReadOnly && slices.Contains(id.Scopes, "DeviceManagementServiceConfig.ReadWrite.All") {
			out = append(out, handlers.DemoAccount{ObjectID: id.ObjectID, Name: id.Name})
		}
	}
	return out
}

// identityConfig is how the desk signs people in, and the Graph it calls: the demo's identity
// provider and emulator in demo mode, Entra (with a client secret or certificate) otherwise.
func (a *app) identityConfig(o appOptions, httpClient *http.Client, repeatable *demo.Repeatable) (idCfg identity.Config, graphRoot string, _ error) {
	cfg := a.cfg
	idCfg = identity.Config{
		IssuerURL: cfg.IssuerURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		RedirectURL: cfg.PublicURL.String() + "/auth/callback", TenantID: cfg.TenantID,
		HTTPClient: httpClient, Now: o.Now,
	}
	var tokensFor identity.Cloud
	graphRoot, tokensFor = cfg.GraphURL, cfg.Cloud // the Graph the desk calls, and the one its tokens are for
	if cfg.Demo {
		var err error
		if a.demo, err = startDemo(cfg, a.log, o, repeatable); err != nil {
			return idCfg, "", err
		}
		idCfg.IssuerURL = a.demo.IdP.IssuerURL()
		idCfg.ClientID, idCfg.ClientSecret = a.demo.ClientID, a.demo.ClientSecret
		idCfg.TenantID = demoidp.DemoTenantID
		if graphRoot == "" {
			graphRoot = a.demo.URL
		}
		tokensFor = identity.Cloud{GraphRoot: graphRoot}
	} else if cfg.ClientCertFile != "" {
		certPEM, cerr := os.ReadFile(cfg.ClientCertFile)
		keyPEM, kerr := os.ReadFile(cfg.ClientKeyFile)
		if err := errors.Join(cerr, kerr); err != nil {
			return idCfg, "", fmt.Errorf("read client certificate: %w", err)
		}
		var err error
		if idCfg.ClientCertificate, err = identity.LoadClientCertificate(certPEM, keyPEM); err != nil {
			return idCfg, "", fmt.Errorf("%s: %w", optClientCertFile.env, err)
		}
	}
	idCfg.Scopes = cfg.signInScopes(tokensFor)
	return idCfg, graphRoot, nil
}

// discover finds the identity provider, trying one that cannot be reached again (with backoff)
// for up to the start-up wait, as the state database's PostgreSQL is: a container may start
// before DNS or its outgoing proxy is ready.
func (a *app) discover(ctx context.Context, idCfg identity.Config) (*identity.Provider, error) {
	wait := a.cfg.DatabaseStartupWait
	deadline := time.Now().Add(wait)
	for delay := 100 * time.Millisecond; ; delay = min(delay*2, 2*time.Second) {
		provider, err := identity.New(ctx, idCfg)
		switch {
		case err == nil:
			return provider, nil
		case !errors.Is(err, identity.ErrUnreachable):
			return nil, fmt.Errorf("identity provider %s: %w", idCfg.IssuerURL, err)
		case ctx.Err() != nil || !time.Now().Before(deadline):
			return nil, fmt.Errorf("the identity provider at %s did not answer within %s (%s): %w. Check that this machine resolves its name "+
				"and reaches it; if outgoing HTTPS goes through a proxy, set HTTPS_PROXY (and NO_PROXY for addresses reached directly)",
				idCfg.IssuerURL, shortDuration(wait), optDatabaseStartupWait.env, err)
		case delay == 100*time.Millisecond:
			a.log.Info("waiting for the identity provider to answer before starting", "issuer", idCfg.IssuerURL, "up_to", shortDuration(wait),
				"setting", optDatabaseStartupWait.env, "error", err.Error())
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(delay, time.Until(deadline))):
		}
	}
}

// registrationStore is the state database for the registration follower, its activity recorded
// through the recorder like every other (kept and retried when the database refuses it).
type registrationStore struct {
	*store.DB
	activity *handlers.ActivityRecorder
}

func (r registrationStore) RecordActivity(ctx context.Context, a *store.Activity) error {
	return r.activity.RecordActivity(ctx, a)
}

// importWorkers is how many imports, how many serial checks and how many bulk changes one desk
// advances at once; replicas add theirs.
const importWorkers = 2

func (a *app) Close() {
	if a.stop != nil {
		a.stop()
		// A batch being sent gets a moment to store Graph's answer; past it, the next worker
		// looks the batch up in Graph instead.
		stopped := make(chan struct{})
		go func() { a.workers.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(15 * time.Second):
			a.log.Warn("import workers still busy at shutdown; an unanswered batch will be looked up in Graph")
		}
		a.background.Wait() // kept activity gets a last chance before the database closes
	}
	if a.demo != nil {
		a.demo.Close()
	}
	if a.db != nil {
		a.db.Close()
	}
}

// stateCheckEvery is how often the state database is checked between requests.
const stateCheckEvery = time.Second

// sweep deletes expired sessions, used sign-in flows, stale form keys and old rate counters
// until ctx ends.
func (a *app) sweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if a.health.Problem() != nil {
				continue // the outage is logged once; the next sweep catches up
			}
			if n, err := a.db.SweepExpired(ctx, a.cfg.IdleTimeout); err != nil {
				a.log.Warn("sweep expired state", "error", err.Error())
			} else if n > 0 {
				a.log.Debug("swept expired sessions", "count", n)
			}
			if _, err := a.db.PurgeActivity(ctx, a.now().Add(-a.cfg.ActivityRetention)); err != nil {
				a.log.Warn("purge old activity", "error", err.Error())
			}
			if _, err := a.db.PurgeImportDrafts(ctx, a.now().Add(-draftRetention)); err != nil {
				a.log.Warn("purge old import drafts", "error", err.Error())
			}
			if _, err := a.db.PurgeRegistrations(ctx, a.now().Add(-registrationRetention)); err != nil {
				a.log.Warn("purge old registration codes", "error", err.Error())
			}
			if _, err := a.db.PurgeBulkDrafts(ctx, a.now().Add(-draftRetention)); err != nil {
				a.log.Warn("purge old bulk drafts", "error", err.Error())
			}
		}
	}
}

// draftRetention is how long a checked file that was never imported is kept, hashes and all.
const draftRetention = 7 * 24 * time.Hour

// registrationRetention is how long an expired registration code is kept, with what its devices
// sent (hashes overwritten), so its status command still answers; the history keeps the rest.
const registrationRetention = 30 * 24 * time.Hour

// originsOf is the scheme://host of each URL that parses.
func originsOf(urls ...string) []string {
	var out []string
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	return out
}

// adminHandler serves metrics and health on the admin address, for scrapers and probes only.
func (a *app) adminHandler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	a.health.Routes(e)
	web.GET(e, "/metrics", echo.WrapHandler(a.metrics.Handler("")))
	web.AddProfiler(e) // a developer build's only (-tags deskpprof)
	return e
}

// refresher adapts the identity provider to the shell's token renewal.
type refresher struct{ p *identity.Provider }

func (r refresher) Refresh(ctx context.Context, rt string) (*oauth2.Token, error) {
	return r.p.Refresh(ctx, rt)
}
func (refresher) IsRefreshRejected(err error) bool {
	return errors.Is(err, identity.ErrRefreshRejected)
}

// startDemo serves the demo identity provider and the Graph emulator on a loopback port of their own.
func startDemo(cfg config, log *slog.Logger, o appOptions, repeatable *demo.Repeatable) (*demo.Services, error) {
	public := cfg.PublicURL.String()
	return demo.Start(demo.Options{
		ClientID: "autopilotdesk-demo", ClientSecret: rand.Text(),
		RedirectURIs: []string{public + "/auth/callback"}, PostLogoutRedirectURIs: []string{public + "/auth/signed-out"},
		Emulator: emulator.Options{Now: o.Now, Faults: cfg.EmulatorFaults, PageSize: o.EmulatorPageSize,
			OtherTenantSerials: demoOtherTenantSerials, ImportDelays: o.ImportDelays, SyncDuration: o.SyncDuration,
			ConsistencyDelay: o.ConsistencyDelay},
		Repeatable: repeatable,
	}, log)
}

// demoConsistencyDelay is how long a change to a registered device takes to show in the demo, as
// Intune's registration is eventually consistent: long enough to see, short enough to wait for.
const demoConsistencyDelay = 5 * time.Second

// demoOtherTenantSerials are serials the demo tenant's Graph reports as registered elsewhere (808).
var demoOtherTenantSerials = []string{"CZC808OTHER", "5CG808OTHER"}

// newLogger logs to w; "auto" chooses text when out, where w's lines end up, is a terminal.
func newLogger(cfg config, out, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := out.(*os.File); ok && isTerminal(f) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// serve runs the desk until ctx ends.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	logs := web.NewLogWriter(stderr) // one write per burst of lines, not one per request
	defer logs.Close()
	log := newLogger(cfg, stderr, logs)
	defer onHangup(log, cfg.TLSCertFile != "")()
	version, goVersion := web.BuildVersion()
	log.Info("Autopilot Desk starting", "version", version, "go", goVersion)
	if warning := cfg.startWarning(os.Environ()); warning != "" {
		log.Warn(warning)
	}
	if cfg.graphURLVersion != "" {
		log.Info(optGraphURL.env+" ends in "+cfg.graphURLVersion+": the desk takes the root, and the version from "+optGraphVersion.env,
			"graph_root", cfg.GraphURL, "graph_version", cfg.GraphVersion)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w", optAddr.env, listenProblem(cfg.Addr, "--addr or "+optAddr.env, err))
	}
	var adminLn net.Listener
	if cfg.AdminAddr != "" {
		if adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			ln.Close()
			return fmt.Errorf("%s: %w", optAdminAddr.env, listenProblem(cfg.AdminAddr, "--admin-addr or "+optAdminAddr.env, err))
		}
		defer adminLn.Close()
	}
	if cfg.publicFromAddr && cfg.PublicURL.Port() == "0" {
		// The port the system chose is the one sign-in must come back to.
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		cfg.PublicURL = &url.URL{Scheme: cfg.PublicURL.Scheme, Host: net.JoinHostPort(cfg.PublicURL.Hostname(), port)}
	}
	adminAt := ""
	if adminLn != nil {
		adminAt = adminLn.Addr().String()
	}
	log.Info("Autopilot Desk settings", cfg.startAttrs(ln.Addr().String(), adminAt)...)
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" {
		certs, err := web.LoadCertificateFiles(cfg.TLSCertFile, cfg.TLSKeyFile, certificateCheckEvery, log)
		if err != nil {
			ln.Close()
			setting := optTLSCertFile.env
			if errors.Is(err, web.ErrEncryptedKey) {
				setting = optTLSKeyFile.env
			}
			return fmt.Errorf("%s: %w", setting, err)
		}
		tlsConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	if err := uploadFolder(cfg, log); err != nil {
		ln.Close()
		return err
	}
	a, err := newApp(ctx, cfg, log, appOptions{ConsistencyDelay: demoConsistencyDelay})
	if err != nil {
		ln.Close()
		return err
	}
	go a.sweep(ctx, 5*time.Minute)
	fmt.Fprintln(stdout, startMessage(cfg, a.startProblem()))
	if adminLn != nil {
		go web.Serve(ctx, adminLn, a.adminHandler(), nil, web.Shutdown{Delay: cfg.ShutdownDelay, Drain: time.Second}, log)
	}
	err = web.Serve(ctx, ln, a.handler, tlsConfig, web.Shutdown{Before: a.health.Drain, Delay: cfg.ShutdownDelay, Drain: shutdownDrain}, log)
	a.Close()
	logs.Close() // every log line is out before the stop line
	fmt.Fprintln(stdout, "Autopilot Desk stopped.")
	return err
}

// uploadFolder makes sure a device file larger than the desk keeps in memory (4 MB, about 1,000
// rows) has somewhere to be stored while it is read. That is the temporary folder (TMPDIR, else
// /tmp), which a distroless image or a read-only root file system may not have. When it cannot be
// written, a desk on SQLite keeps such files in "uploads" in its data folder instead; a desk on
// PostgreSQL, which may have no folder of its own, refuses to start and says what to set.
func uploadFolder(cfg config, log *slog.Logger) error {
	tmp := os.TempDir()
	tmpErr := writable(tmp)
	if tmpErr == nil {
		return nil
	}
	if cfg.DatabaseURL != "" {
		return fmt.Errorf("the temporary folder %s cannot be written (%v): the desk stores device files larger than 4 MB there while it reads them; "+
			"set TMPDIR to a folder the desk may write (in a container, mount an emptyDir or a tmpfs at /tmp)", tmp, tmpErr)
	}
	dir := filepath.Join(cfg.DataDir, "uploads")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("the temporary folder %s cannot be written (%v), nor a folder for uploads in the data folder: %w", tmp, tmpErr, err)
	}
	if err := writable(dir); err != nil {
		return fmt.Errorf("the temporary folder %s cannot be written (%v), nor the folder for uploads in the data folder: %w", tmp, tmpErr, err)
	}
	// A file left by a desk that died while reading it; one being read now is minutes old at most.
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	if err := os.Setenv("TMPDIR", dir); err != nil { // where net/http stores a large form's files
		return fmt.Errorf("set TMPDIR: %w", err)
	}
	log.Info("the temporary folder cannot be written, so device files larger than 4 MB are stored in the data folder while they are read",
		"temp_folder", tmp, "error", tmpErr.Error(), "upload_folder", dir)
	return nil
}

// writable reports whether a file can be created in dir.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".autopilotdesk-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// shutdownDrain is how long requests in flight get to finish once the desk stops accepting
// connections; those still running then are closed.
var shutdownDrain = 10 * time.Second

// certificateCheckEvery is how often, at most, the TLS certificate files are looked at for a
// renewed certificate.
const certificateCheckEvery = 5 * time.Second

// listenProblem explains why addr cannot be listened on; an address another program holds (as
// 8080 often is) is said in words, with the setting that chooses another.
func listenProblem(addr, setting string, err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	another := "another port"
	if host, port, perr := net.SplitHostPort(addr); perr == nil {
		if n, nerr := strconv.Atoi(port); nerr == nil && n > 0 && n < 65535 {
			another = net.JoinHostPort(host, strconv.Itoa(n+1))
		}
	}
	return fmt.Errorf("%s is already in use by another program (perhaps another desk): stop it, or give another address with %s, such as %s", addr, setting, another)
}

// startMessage is what the desk prints once it serves: where to open it (in demo mode, and how to
// use one's own tenant instead), or, when its state database cannot take writes at start (a disk
// below the room the desk keeps free), that it answers 503 until that is put right.
func startMessage(cfg config, problem error) string {
	running := "Autopilot Desk is running in " + startupMode(cfg)
	var ce *store.CheckError
	if errors.As(problem, &ce) {
		if errors.Is(problem, store.ErrDiskFull) {
			return fmt.Sprintf("%s, but serves no page yet: %s, below the desk's floor of %s. Free space on that disk: the desk serves by itself once "+
				"there is room, at %s. Press Ctrl-C to stop.", running, ce.Cause, store.Megabytes(store.MinFreeSpace), cfg.PublicURL)
		}
		return fmt.Sprintf("%s, but serves no page yet: %s; %s, at %s. Press Ctrl-C to stop.", running, ce.Cause, ce.Recover, cfg.PublicURL)
	}
	msg := fmt.Sprintf("%s.\nOpen %s in your browser. Press Ctrl-C to stop.", running, cfg.PublicURL)
	if cfg.Demo {
		msg += fmt.Sprintf("\nTo use it with your own tenant, register it in Microsoft Entra ID and set %s, %s, %s and %s: "+
			"see \"Use it with your tenant\" in README.md.", optTenantID.env, optClientID.env, optClientSecret.env, optPublicURL.env)
	}
	return msg
}

// startProblem is what keeps the state database from taking writes as the desk starts, nil when
// nothing does.
func (a *app) startProblem() error { return a.db.CheckFiles() }

// dataDirProblem explains an error opening the SQLite data folder that the person running the
// desk can put right: who the desk runs as and what to change. Nil for any other error.
func dataDirProblem(err error, dataDir string) error {
	dir := dataDir
	if abs, aerr := filepath.Abs(dataDir); aerr == nil {
		dir = abs
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		owner := runningAs()
		if u, uerr := user.Current(); uerr == nil {
			owner = u.Username
		}
		return fmt.Errorf("the desk, running as %[1]s, may not write its data folder %[2]s (%[3]v). Give the folder to that user "+
			"(mkdir -p %[2]s && chown -R %[4]s %[2]s), or under systemd let systemd create it (StateDirectory=autopilotdesk, with "+
			"%[5]s=/var/lib/autopilotdesk), or set %[5]s to a folder that user may write", runningAs(), dir, err, owner, optDataDir.env)
	case errors.Is(err, syscall.ENOTDIR):
		what := "the data folder " + dir + " is a file, not a folder"
		if file := notAFolder(dir); file != dir {
			what = "the data folder " + dir + " cannot be made, because " + file + " is a file, not a folder"
		}
		return fmt.Errorf("%s: set %s to a folder (the desk creates it when it does not exist), or move that file away", what, optDataDir.env)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("the data folder %s is on a read-only file system (%v): set %s to a folder on a writable disk "+
			"(in a container, a writable volume mounted there)", dir, err, optDataDir.env)
	case errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "disk is full"):
		return fmt.Errorf("the disk holding the data folder %s is full (%v): free space on it (the desk keeps at least %s free), then start the desk again",
			dir, err, store.Megabytes(store.MinFreeSpace))
	}
	return nil
}

// notAFolder is the part of the path dir that is a file, or dir itself when none is found.
func notAFolder(dir string) string {
	for p := dir; ; p = filepath.Dir(p) {
		if info, err := os.Stat(p); err == nil && !info.IsDir() {
			return p
		}
		if p == filepath.Dir(p) {
			return dir
		}
	}
}

// databaseProblem explains a PostgreSQL server's refusal of the desk's connection that a setting
// must fix, or is nil.
func databaseProblem(err error) error {
	var refused *pgconn.PgError
	if !errors.As(err, &refused) {
		return nil
	}
	env := optDatabaseURL.env
	switch refused.Code {
	case "28P01": // invalid_password
		return fmt.Errorf("PostgreSQL refused the user name or password in %s (%s): correct them there, or in the file %s_FILE names; "+
			"a password with @, :, / or %% in it must be written percent-encoded in the URL (@ as %%40)", env, refused.Message, env)
	case "28000": // invalid_authorization_specification: no pg_hba.conf line, or no such role
		return fmt.Errorf("PostgreSQL does not let the user in %s connect (%s): check the user name there, and that the server's pg_hba.conf "+
			"lets that user connect to that database from this machine", env, refused.Message)
	case "3D000": // invalid_catalog_name
		return fmt.Errorf("the database named in %s does not exist on that PostgreSQL server (%s): create it (createdb --owner=USER NAME), "+
			"or correct the name after the last / of the URL", env, refused.Message)
	}
	return nil
}

// runningAs names the user the desk runs as: "nobody (uid 65534)".
func runningAs() string {
	uid := os.Getuid()
	u, err := user.Current()
	switch {
	case err == nil && uid >= 0:
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	case err == nil:
		return u.Username
	}
	return fmt.Sprintf("uid %d", uid)
}

// startupMode says which mode the desk runs in, for the start-up message.
func startupMode(cfg config) string {
	if cfg.Demo && demoGraphHost(cfg) != "" {
		return "demo mode (demo sign-in, Microsoft Graph at " + demoGraphHost(cfg) + " instead of the embedded emulator)"
	}
	if cfg.Demo {
		return "demo mode (emulated Microsoft Graph, demo sign-in)"
	}
	if cfg.TenantID != "" {
		return "tenant " + cfg.TenantID + " mode"
	}
	_, host := identity.IssuerTenant(cfg.IssuerURL)
	return "OpenID Connect provider mode, signing in through " + host + " (its accounts form one organisation, keyed by the issuer)"
}

// demoGraphHost is the host of the Graph a demo desk calls when it is not the embedded emulator
// (AUTOPILOTDESK_GRAPH_URL set); "" otherwise.
func demoGraphHost(cfg config) string {
	if !cfg.Demo || cfg.GraphURL == "" {
		return ""
	}
	u, err := url.Parse(cfg.GraphURL)
	if err != nil || u.Host == "" {
		return redactedURL(cfg.GraphURL)
	}
	return u.Host
}

// runEmulator serves the Graph emulator and the demo identity provider on their own, for other
// tools (Graph Explorer-like clients, scripts) and for running the desk against them by hand.
func runEmulator(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("autopilotdesk emulator", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	clientID := fs.String("client-id", "autopilotdesk-demo", "client id the demo identity provider accepts")
	clientSecret := fs.String("client-secret", "", "client secret it accepts (default: random, printed at start)")
	redirects := fs.String("redirect-uris", "http://localhost/auth/callback,http://127.0.0.1/auth/callback",
		"comma-separated redirect URIs it accepts; on http://localhost and http://127.0.0.1 any port matches, as with Entra")
	logouts := fs.String("post-logout-redirect-uris", "http://localhost/auth/signed-out,http://127.0.0.1/auth/signed-out",
		"comma-separated post-logout redirect URIs; on loopback any port matches")
	consistency := fs.Duration("consistency-delay", demoConsistencyDelay, "how long a change to a registered Autopilot device takes to show in reads")
	noTenant := fs.Bool("without-tenant-claims", false, "answer like a generic OpenID Connect provider: ID tokens without tid and oid claims")
	fs.Usage = func() {
		fmt.Fprint(stdout, "Usage: autopilotdesk emulator [flags]\n\nServes the Microsoft Graph emulator (under /v1.0 and /beta) and the demo identity provider.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if _, ok := f.Value.(*optionFlag); !ok {
				fmt.Fprintf(stdout, "  --%s\n      %s", f.Name, f.Usage)
				if f.DefValue != "" {
					fmt.Fprintf(stdout, " (default %q)", f.DefValue)
				}
				fmt.Fprintln(stdout)
			}
		})
		fmt.Fprint(stdout, "\nFault injection, each also an environment variable:\n\n")
		printOptions(stdout, emulatorOptions)
	}
	var c config
	problems, err := readOptions(fs, emulatorOptions, args, getenv, &c)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return problems
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return listenProblem(*addr, "--addr", err)
	}
	base := "http://" + ln.Addr().String()
	if *clientSecret == "" {
		*clientSecret = rand.Text()
	}
	pair, err := demo.New(base, demo.Options{ClientID: *clientID, ClientSecret: *clientSecret,
		RedirectURIs: splitList(*redirects), PostLogoutRedirectURIs: splitList(*logouts), WithoutTenantClaims: *noTenant,
		Emulator: emulator.Options{Faults: c.EmulatorFaults, ConsistencyDelay: *consistency}})
	if err != nil {
		ln.Close()
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	tenant := demoidp.DemoTenantID
	if *noTenant {
		tenant = "none: ID tokens carry no tid claim, so leave " + optTenantID.env + " empty"
	}
	fmt.Fprintf(stdout, "Graph emulator:  %s (the root to give %s; Graph's API is under /v1.0 and /beta)\nIdentity issuer: %s\nTenant id:       %s\nClient id:       %s\nClient secret:   %s\n",
		base, optGraphURL.env, pair.IdP.IssuerURL(), tenant, *clientID, *clientSecret)
	return web.Serve(ctx, ln, pair.Handler, nil, web.Shutdown{Drain: 5 * time.Second}, log)
}
