package importer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// fakeGraph answers the import action with whatever the test scripts, and records every call.
type fakeGraph struct {
	mu      sync.Mutex
	imports [][]graphclient.DeviceIdentity
	answer  func(call int, devices []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error)
	devices map[string]graphclient.DeviceIdentity // what GET and the serial lookup find, by id
	// registered are the serials the lookup finds among registered Autopilot devices.
	registered map[string]bool
	lookups    []lookupCall
	// lookupFails, when set, is the error of the nth lookup (from 1), Graph's answer to its batch.
	lookupFails func(n int) error
	serialErrs  map[string]error // a serial's own error in every lookup

	// status, when set, is what GET and the list say of every device (else GET says complete).
	status string
	gets   []string // ids read by id
	// readRequests is how many requests those reads took: one per 20 ids, as in a JSON batch.
	readRequests int
	readErrs     map[string]error // a device's own answer to a read by id, instead of the device
	pages        int              // list pages read
	stuck        bool             // GET answers the state as created, not "complete"
}

func (g *fakeGraph) ImportDeviceIdentities(_ context.Context, _ oauth2.TokenSource, devices []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, *graphclient.Exchange, error) {
	g.mu.Lock()
	g.imports = append(g.imports, devices)
	n := len(g.imports)
	g.mu.Unlock()
	out, err := g.answer(n, devices)
	return out, &graphclient.Exchange{}, err
}

func (g *fakeGraph) created(devices []graphclient.DeviceIdentity, status string) []graphclient.DeviceIdentity {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []graphclient.DeviceIdentity
	for _, d := range devices {
		d.ID = uuid.NewString()
		d.State = graphclient.DeviceImportState{DeviceImportStatus: status}
		g.devices[d.ID] = d
		out = append(out, d)
	}
	return out
}

// ReadDeviceIdentities answers as Graph's JSON batches would: one request per 20 ids.
func (g *fakeGraph) ReadDeviceIdentities(_ context.Context, _ oauth2.TokenSource, ids []string) ([]graphclient.DeviceIdentityRead, []*graphclient.Exchange, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.readRequests += (len(ids) + graphclient.BatchLimit - 1) / graphclient.BatchLimit
	out := make([]graphclient.DeviceIdentityRead, len(ids))
	for i, id := range ids {
		g.gets = append(g.gets, id)
		out[i].ID = id
		if out[i].Err = g.readErrs[id]; out[i].Err != nil {
			continue
		}
		d, ok := g.devices[id]
		if !ok {
			out[i].Err = &graphclient.Error{Kind: graphclient.KindNotFound, StatusCode: http.StatusNotFound}
			continue
		}
		if !g.stuck {
			d.State.DeviceImportStatus = cmp.Or(g.status, "complete")
		}
		out[i].Value = &d
	}
	return out, nil, nil
}

// ListDeviceIdentities pages through every device, 25 a page, in the order of their serials.
func (g *fakeGraph) ListDeviceIdentities(_ context.Context, _ oauth2.TokenSource, filter, next string) ([]graphclient.DeviceIdentity, string, *graphclient.Exchange, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if filter != "" || g.status == "" {
		return nil, "", nil, errors.New("not used")
	}
	g.pages++
	all := slices.SortedFunc(maps.Values(g.devices), func(a, b graphclient.DeviceIdentity) int { return strings.Compare(a.ID, b.ID) })
	from, _ := strconv.Atoi(next)
	to := min(from+25, len(all))
	page := slices.Clone(all[from:to])
	for i := range page {
		page[i].State.DeviceImportStatus = g.status
	}
	if to == len(all) {
		return page, "", nil, nil
	}
	return page, strconv.Itoa(to), nil, nil
}

func (g *fakeGraph) LookUpSerials(_ context.Context, _ oauth2.TokenSource, serials []string, where graphclient.SerialSources) ([]graphclient.SerialLookup, []*graphclient.Exchange, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lookups = append(g.lookups, lookupCall{slices.Clone(serials), where})
	out := make([]graphclient.SerialLookup, len(serials))
	var failed error
	if g.lookupFails != nil {
		failed = g.lookupFails(len(g.lookups))
	}
	for i, serial := range serials {
		out[i].Serial = serial
		if out[i].Err = cmp.Or(failed, g.serialErrs[serial]); out[i].Err != nil {
			continue
		}
		if where&graphclient.InImported != 0 {
			for _, d := range g.devices {
				if strings.EqualFold(d.SerialNumber, serial) {
					out[i].Imported = append(out[i].Imported, d)
				}
			}
		}
		if where&graphclient.InRegistered != 0 && g.registered[serial] {
			out[i].Registered = []graphclient.AutopilotDevice{{ID: uuid.NewString(), SerialNumber: serial}}
		}
	}
	return out, nil, failed
}

// lookupCall is one LookUpSerials call the fake answered.
type lookupCall struct {
	serials []string
	where   graphclient.SerialSources
}

// lookupsIn counts the lookups among where and the most serials one of them asked about.
func (g *fakeGraph) lookupsIn(where graphclient.SerialSources) (n, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.lookups {
		if l.where == where {
			n, most = n+1, max(most, len(l.serials))
		}
	}
	return n, most
}

func (g *fakeGraph) calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.imports)
}

// fakeTokens lends a token while the owner is "signed in", and counts forced renewals.
type fakeTokens struct {
	mu       sync.Mutex
	signedIn bool
	renewals int
}

func (f *fakeTokens) OwnerToken(_ context.Context, _, refused string) (oauth2.TokenSource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.signedIn {
		return nil, web.ErrSessionEnded
	}
	if refused != "" {
		f.renewals++
	}
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}), nil
}

type rig struct {
	t      *testing.T
	dir    string // the store's data folder
	db     *store.DB
	graph  *fakeGraph
	tokens *fakeTokens
	w      *Worker
	job    *store.ImportJob
}

// newRig is a submitted job of n rows in batches of per, with a worker over a real store.
func newRig(t *testing.T, n, per int, answer func(call int, devices []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error)) *rig {
	t.Helper()
	return newRigAt(t, time.Now, n, per, answer)
}

// newRigAt is newRig with the store on the clock now.
func newRigAt(t *testing.T, now func() time.Time, n, per int, answer func(call int, devices []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error)) *rig {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), store.Options{DataDir: dir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &rig{t: t, dir: dir, db: db, graph: &fakeGraph{devices: map[string]graphclient.DeviceIdentity{}}, tokens: &fakeTokens{signedIn: true}}
	r.graph.answer = answer
	if answer == nil {
		r.graph.answer = func(_ int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
			return r.graph.created(d, "pending"), nil
		}
	}
	r.w = New(Options{Options: jobs.Options{Tokens: r.tokens, Lease: time.Minute}, Store: db, Graph: r.graph, LookupDelays: []time.Duration{0, 0}})
	rows := make([]store.ImportRow, n)
	var outs []store.RowOutcome
	var batches []store.ImportBatch
	for i := range rows {
		rows[i] = store.ImportRow{Line: i + 2, Serial: fmt.Sprintf("SN-%d", i), Hash: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 3000)), HashShown: "x"}
		b := i/per + 1
		outs = append(outs, store.RowOutcome{Line: i + 2, Outcome: store.Outcome{Batch: b, Verdict: store.VerdictQueued}})
		if i%per == 0 {
			batches = append(batches, store.ImportBatch{Batch: b, State: BatchQueued})
		}
	}
	r.job = &store.ImportJob{TenantID: "t", ObjectID: "o", ActorName: "Adele Vance", State: StateDraft}
	ctx := context.Background()
	if err := db.CreateImportJob(ctx, r.job, slices.Values(rows)); err != nil {
		t.Fatal(err)
	}
	if err := db.ChangeImport(ctx, store.ImportChange{JobID: r.job.ID, FromState: StateDraft, State: StateSending, Batches: len(batches), NewBatches: batches, Rows: outs}); err != nil {
		t.Fatal(err)
	}
	return r
}

// step lets the worker advance the job once, as if it were due.
func (r *rig) step() {
	r.t.Helper()
	ctx := context.Background()
	if err := r.db.WakeImportJob(ctx, "t", r.job.ID, false); err != nil {
		r.t.Fatal(err)
	}
	for r.w.Once(ctx, "test-worker") {
	}
}

func (r *rig) payload() Payload {
	r.t.Helper()
	j, err := r.db.GetImportJob(context.Background(), "t", r.job.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	p, _ := DecodePayload(j.Payload)
	return p
}

func (r *rig) counts() Counts {
	rows, err := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{})
	if err != nil {
		r.t.Fatal(err)
	}
	return Count(rows)
}

func (r *rig) batches() []store.ImportBatch {
	b, err := r.db.ImportBatches(context.Background(), r.job.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// fakeHolds keeps one tenant's write hold, as bulk.Budget keeps it for every desk.
type fakeHolds struct {
	mu    sync.Mutex
	until time.Time
}

func (h *fakeHolds) HeldUntil(context.Context, string, time.Time) (time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.until, nil
}

func (h *fakeHolds) Hold(_ context.Context, _ string, until time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if until.After(h.until) {
		h.until = until
	}
	return nil
}

// While Graph's Retry-After to another of the tenant's writes runs (a create's, another desk's
// bulk change's), no batch goes: Graph would punish it. The page says until when; the batches
// go once it has passed.
func TestBatchesWaitOutTheTenantsWriteHold(t *testing.T) {
	r := newRig(t, 4, 2, nil)
	holds := &fakeHolds{until: time.Now().Add(10 * time.Second)}
	r.w.o.Holds = holds
	r.step()
	if calls := r.graph.calls(); calls != 0 {
		t.Fatalf("%d batches went while the tenant's writes were held", calls)
	}
	if p := r.payload(); p.Waiting == nil || !p.Waiting.Throttled || !p.Waiting.Until.Equal(holds.until) {
		t.Errorf("waiting = %+v, want the hold's end", p.Waiting)
	}
	holds.mu.Lock()
	holds.until = time.Time{}
	holds.mu.Unlock()
	r.step()
	if c := r.counts(); c.Imported != 4 || r.graph.calls() != 2 {
		t.Errorf("after the hold: %+v in %d calls", c, r.graph.calls())
	}
}

// Throttled: Graph did not run it, so the batch waits as long as Graph asked and then goes
// again; the page can say "Microsoft Graph asked the desk to wait 8 seconds".
func TestThrottledBatchWaitsAsGraphAsked(t *testing.T) {
	var r *rig
	r = newRig(t, 4, 2, func(call int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		if call == 2 {
			return nil, &graphclient.Error{Kind: graphclient.KindThrottled, StatusCode: 429, RetryAfter: 8 * time.Second}
		}
		return r.graph.created(d, "pending"), nil
	})
	r.step()
	p := r.payload()
	if p.Waiting == nil || p.Waiting.For != 8*time.Second || !p.Waiting.Throttled {
		t.Fatalf("waiting = %+v", p.Waiting)
	}
	b := r.batches()
	if b[0].State != BatchSent || b[1].State != BatchQueued || b[1].NotBefore.Sub(time.Now()) < 7*time.Second {
		t.Errorf("batches %+v", b)
	}
	if c := r.counts(); c.Queued != 2 || c.Imported != 2 {
		t.Errorf("counts %+v", c)
	}
	r.step() // not due yet: nothing is sent
	if r.graph.calls() != 2 {
		t.Errorf("%d calls before Retry-After elapsed", r.graph.calls())
	}
}

// A refusal that holds for every batch (no permission) stops the import: the batches still
// queued are not sent, and every row says why.
func TestJobWideRefusalSendsNoMoreBatches(t *testing.T) {
	r := newRig(t, 6, 2, func(int, []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		return nil, &graphclient.Error{Kind: graphclient.KindForbiddenPermission, StatusCode: 403, Message: "no scope"}
	})
	r.step()
	if r.graph.calls() != 1 {
		t.Errorf("%d calls after a 403", r.graph.calls())
	}
	if c := r.counts(); c.Refused != 6 {
		t.Errorf("counts %+v", c)
	}
	j, _ := r.db.GetImportJob(context.Background(), "t", r.job.ID)
	if j.State != StateFinished {
		t.Errorf("state %s", j.State)
	}
}

// Graph refuses an expired token before running anything: renewed once, the batch goes once more.
func TestUnauthorizedIsRenewedOnce(t *testing.T) {
	var r *rig
	r = newRig(t, 2, 2, func(call int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		if call == 1 {
			return nil, &graphclient.Error{Kind: graphclient.KindUnauthorized, StatusCode: 401}
		}
		return r.graph.created(d, "pending"), nil
	})
	r.step()
	if r.graph.calls() != 2 || r.tokens.renewals != 1 {
		t.Errorf("%d calls, %d renewals", r.graph.calls(), r.tokens.renewals)
	}
	if c := r.counts(); c.Imported != 2 {
		t.Errorf("counts %+v", c)
	}
}

// A 2xx whose body cannot be read means the import ran with its result unknown: the devices
// are looked up, found by their own hash, and never sent again. A device of the same serial
// from an earlier import is not mistaken for this one.
func TestUnreadableAnswerIsReconciled(t *testing.T) {
	var r *rig
	r = newRig(t, 2, 2, func(call int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		r.graph.created(d, "complete")
		return nil, &graphclient.Error{Kind: graphclient.KindBadResponse, StatusCode: 200}
	})
	older := graphclient.DeviceIdentity{ID: uuid.NewString(), SerialNumber: "SN-0", HardwareIdentifier: []byte("another device"),
		State: graphclient.DeviceImportState{DeviceImportStatus: "error", DeviceErrorCode: 806}}
	r.graph.devices[older.ID] = older
	r.step()
	acts, _, _ := r.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: "t", Outcome: "outcome-unknown"})
	if len(acts) != 1 {
		t.Errorf("%d outcome-unknown activities recorded", len(acts))
	}
	if b := r.batches(); b[0].State != BatchReconciled {
		t.Fatalf("batches %+v", b)
	}
	rows, _ := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{})
	for _, row := range rows {
		if !row.Reconciled || row.DeviceID == older.ID || row.Verdict != store.VerdictImported {
			t.Errorf("row %+v", row)
		}
	}
	if r.graph.calls() != 1 {
		t.Errorf("%d import calls", r.graph.calls())
	}
	if j, _ := r.db.GetImportJob(context.Background(), "t", r.job.ID); j.State != StateFinished {
		t.Errorf("state %s", j.State)
	}
}

// A batch of 500 whose answer was lost is looked up 20 serials to a request, not one request
// per device: among imported devices first, then only the rows not found there among registered
// devices. A lookup Graph refuses keeps what the earlier ones found, waits as long as Graph asked,
// and the rows it did not answer are looked for again; after the last look the rows found
// nowhere are "outcome unknown — check".
func TestLostBatchIsLookedUpTwentySerialsARequest(t *testing.T) {
	clock := testkit.NewClockAt(time.Now())
	var r *rig
	r = newRigAt(t, clock.Now, 500, 500, func(_ int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		r.graph.created(d[:470], "complete") // Intune registered 10 more and emptied their records; 20 it never got
		return nil, &graphclient.Error{Kind: graphclient.KindBadResponse, StatusCode: 200}
	})
	r.w = New(Options{Options: jobs.Options{Tokens: r.tokens, Lease: time.Minute, Now: clock.Now}, Store: r.db, Graph: r.graph,
		LookupDelays: []time.Duration{0, time.Minute}})
	r.graph.registered = map[string]bool{}
	for i := 470; i < 480; i++ {
		r.graph.registered[fmt.Sprintf("SN-%d", i)] = true
	}
	r.graph.lookupFails = func(n int) error {
		if n == 3 {
			return &graphclient.Error{Kind: graphclient.KindThrottled, StatusCode: http.StatusTooManyRequests, RetryAfter: 7 * time.Second}
		}
		return nil
	}
	r.step()
	if n, _ := r.graph.lookupsIn(graphclient.InImported); n != 3 {
		t.Fatalf("%d lookups before the refused one, want 3", n)
	}
	if c := r.counts(); c.Imported != 40 || c.Unknown != 460 {
		t.Fatalf("after a refused lookup: counts %+v, want the 40 rows answered imported", c)
	}
	if p := r.payload(); p.Waiting == nil || p.Waiting.For != 7*time.Second {
		t.Errorf("the wait Graph asked for is not on the page: %+v", p.Waiting)
	}
	clock.Advance(7 * time.Second)
	r.step()
	imported, most := r.graph.lookupsIn(graphclient.InImported)
	registered, mostRegistered := r.graph.lookupsIn(graphclient.InRegistered)
	if imported != 3+23 || registered != 2 || most != 20 || mostRegistered != 20 {
		t.Errorf("%d lookups among imported devices and %d among registered ones, up to %d and %d serials; want 26 and 2, 20 each",
			imported, registered, most, mostRegistered)
	}
	for _, l := range r.graph.lookups[len(r.graph.lookups)-2:] {
		for _, serial := range l.serials {
			if n, _ := strconv.Atoi(strings.TrimPrefix(serial, "SN-")); n < 470 {
				t.Errorf("%s, found among imported devices, was looked for among registered ones", serial)
			}
		}
	}
	if c := r.counts(); c.Imported != 480 || c.Unknown != 20 {
		t.Fatalf("after the first whole look: counts %+v", c)
	}
	clock.Advance(time.Minute)
	r.step()
	rows, _ := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{})
	for _, row := range rows[480:] {
		if row.Verdict != store.VerdictNotFound || row.Reason != store.ReasonLookedUp || !row.Reconciled {
			t.Errorf("%s after the last look: %+v", row.Serial, row.Outcome)
		}
	}
	if b := r.batches(); b[0].State != BatchReconciled || r.graph.calls() != 1 {
		t.Errorf("batch %+v after %d import calls", b[0], r.graph.calls())
	}
	acts, _, _ := r.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: "t", Action: "import"})
	want := "The answer to batch 1 of 1 was lost, so its 500 devices were looked up in Microsoft Graph (imported devices and registered Autopilot devices): 480 found, 20 not found."
	if !slices.ContainsFunc(acts, func(a store.Activity) bool { return strings.HasPrefix(a.Summary, want) }) {
		t.Errorf("no activity says %q", want)
	}
}

// A serial Graph cannot search for (its lookup is refused as invalid input) does not hold its
// batch up for good: it is looked for like the others, and after the last look it is "outcome
// unknown — check" while the rest are settled.
func TestUnsearchableSerialDoesNotHoldItsBatchUp(t *testing.T) {
	clock := testkit.NewClockAt(time.Now())
	var r *rig
	r = newRigAt(t, clock.Now, 2, 2, func(_ int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		r.graph.created(d, "complete")
		return nil, &graphclient.Error{Kind: graphclient.KindBadResponse, StatusCode: 200}
	})
	r.w = New(Options{Options: jobs.Options{Tokens: r.tokens, Lease: time.Minute, Now: clock.Now}, Store: r.db, Graph: r.graph, LookupDelays: []time.Duration{0, time.Second}})
	r.graph.serialErrs = map[string]error{"SN-1": &graphclient.Error{Kind: graphclient.KindInvalidInput, Message: "More than 5 pages of devices contain this serial number"}}
	r.step()
	clock.Advance(time.Second)
	r.step()
	rows, _ := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{})
	if rows[0].Verdict != store.VerdictImported || rows[1].Verdict != store.VerdictNotFound || rows[1].Reason != store.ReasonLookedUp {
		t.Errorf("rows %+v", rows)
	}
	if b := r.batches(); b[0].State != BatchReconciled {
		t.Errorf("batch %+v", b[0])
	}
}

// Without a live session of the owner the job pauses, sends nothing, and goes on when they
// are back.
func TestPausedWithoutTheOwner(t *testing.T) {
	r := newRig(t, 2, 2, nil)
	r.tokens.signedIn = false
	r.step()
	if !r.payload().Paused || r.graph.calls() != 0 {
		t.Fatalf("paused %v, %d calls", r.payload().Paused, r.graph.calls())
	}
	r.tokens.signedIn = true
	r.step()
	if r.payload().Paused || r.graph.calls() != 1 {
		t.Errorf("paused %v, %d calls after the owner came back", r.payload().Paused, r.graph.calls())
	}
}

// A job sent before rows had a table of their own is moved into it before the worker looks at it:
// its devices are followed to the end, not taken for an empty job.
func TestJobOfTheEarlierFormatIsFollowed(t *testing.T) {
	r := newRig(t, 0, 1, nil)
	d := graphclient.DeviceIdentity{ID: uuid.NewString(), SerialNumber: "SN-OLD"}
	r.graph.devices[d.ID] = d
	old := r.earlierFormatJob(`{"line":2,"serial":"SN-OLD","hash":"QUJD","hashShown":"QUJD"},{"line":3,"serial":"SN-SKIPPED","hash":"QUJD"}`, d.ID)
	r.step()
	rows, _ := r.db.ImportRows(context.Background(), old.ID, store.RowFilter{})
	if len(rows) != 2 || rows[0].Verdict != store.VerdictImported || rows[0].DeviceID != d.ID || rows[1].Verdict != store.VerdictLeftOut {
		t.Fatalf("rows %+v", rows)
	}
	if j, _ := r.db.GetImportJob(context.Background(), "t", old.ID); j.State != StateFinished || Legacy(j.Payload) {
		t.Errorf("state %s, payload %s", j.State, j.Payload)
	}
}

// Batches are cut at 500 devices and, for real-sized hashes, by bytes first.
func TestPlanCutsByCountAndBytes(t *testing.T) {
	small := make([]store.ImportRow, 1201)
	for i := range small {
		small[i] = store.ImportRow{Line: i + 2, Serial: fmt.Sprintf("S%d", i), HashLen: 10}
	}
	if got := Plan(small); len(got) != 3 || len(got[0]) != 500 || len(got[2]) != 201 || got[2][0] != 1002 {
		t.Errorf("plan of 1,201 small rows: %d batches", len(got))
	}
	real := make([]store.ImportRow, 1000)
	for i := range real {
		real[i] = store.ImportRow{Line: i + 2, Serial: fmt.Sprintf("SERIAL-%06d", i), GroupTag: "Sales", User: "adele@contoso.example", HashLen: 4136}
	}
	plan := Plan(real)
	for _, b := range plan {
		size := graphclient.ImportRequestOverhead
		for _, line := range b {
			r := real[line-2]
			size += graphclient.ImportEntryBytes(graphclient.DeviceIdentity{SerialNumber: r.Serial, GroupTag: r.GroupTag, AssignedUserPrincipalName: r.User, HardwareIdentifier: make([]byte, 3102)})
		}
		if size > graphclient.MaxImportRequestBytes || len(b) > 500 {
			t.Errorf("a batch of %d devices and %d bytes", len(b), size)
		}
	}
	if len(plan) < 3 {
		t.Errorf("1,000 real-sized rows in %d batches", len(plan))
	}
}

// sentAndFollowing is a rig of n devices sent per to a batch, whose worker's clock runs a day
// ahead of the store's (a look asked for is never due before the test moves it), after the first
// step: the batches sent and the device sent last looked at, Intune still processing them.
func sentAndFollowing(t *testing.T, n, per int) (*rig, *testkit.Clock) {
	t.Helper()
	r := newRig(t, n, per, nil)
	clock := testkit.NewClockAt(time.Now().Add(24 * time.Hour))
	r.w = New(Options{Options: jobs.Options{Tokens: r.tokens, Lease: time.Minute, Now: clock.Now}, Store: r.db, Graph: r.graph, LookupDelays: []time.Duration{0, 0}})
	r.graph.status = "pending"
	r.step()
	return r, clock
}

// Following a large import costs a request per look, not one per device: the worker reads the
// device sent last until Intune has finished it, then every device still processing in one
// pass over the list; it looks again after a twentieth of the time since the batch was sent.
func TestFollowingReadsTheLastDeviceThenTheWholeList(t *testing.T) {
	r, clock := sentAndFollowing(t, 120, 40) // three batches sent, the last device looked at
	if r.graph.calls() != 3 || len(r.graph.gets) != 1 || r.graph.pages != 0 {
		t.Fatalf("after sending: %d imports, %d reads, %d list pages", r.graph.calls(), len(r.graph.gets), r.graph.pages)
	}
	rows, _ := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{})
	lastID := rows[len(rows)-1].DeviceID
	for range 4 {
		clock.Advance(time.Second)
		r.step()
	}
	if len(r.graph.gets) != 5 || r.graph.pages != 0 || r.counts().Processing != 120 {
		t.Fatalf("while processing: %d reads, %d list pages, counts %+v", len(r.graph.gets), r.graph.pages, r.counts())
	}
	for _, id := range r.graph.gets {
		if id != lastID {
			t.Fatalf("read %s, not the device sent last (%s)", id, lastID)
		}
	}
	clock.Advance(96 * time.Second)
	r.step()
	if p := r.payload(); p.PollAt.Sub(clock.Now()) != 5*time.Second {
		t.Errorf("100 s after sending, the next look is %s away, want 5 s", p.PollAt.Sub(clock.Now()))
	}
	clock.Advance(2 * time.Second)
	r.step() // not due yet
	if len(r.graph.gets) != 6 {
		t.Fatalf("%d reads: the worker looked before it was due", len(r.graph.gets))
	}
	r.graph.status = "complete"
	clock.Advance(3 * time.Second)
	r.step()
	if c := r.counts(); c.Imported != 120 {
		t.Fatalf("counts %+v after %d reads and %d pages; payload %+v", c, len(r.graph.gets), r.graph.pages, r.payload())
	}
	if len(r.graph.gets) != 7 || r.graph.pages != 5 {
		t.Errorf("finishing took %d reads and %d list pages, want 7 and 5 (120 devices, 25 a page)", len(r.graph.gets), r.graph.pages)
	}
	if j, _ := r.db.GetImportJob(context.Background(), "t", r.job.ID); j.State != StateFinished {
		t.Errorf("state %s", j.State)
	}
}

// Following a small import reads its devices 20 to a request: once Intune has finished the
// device sent last, the 44 others are read in three JSON batches, not 44 requests.
func TestFollowingReadsFewDevicesTwentyARequest(t *testing.T) {
	r, clock := sentAndFollowing(t, 45, 45) // the batch sent, the last device looked at
	if r.graph.readRequests != 1 || len(r.graph.gets) != 1 {
		t.Fatalf("after sending: %d reads in %d requests", len(r.graph.gets), r.graph.readRequests)
	}
	r.graph.status = "complete"
	clock.Advance(time.Minute)
	r.step()
	if c := r.counts(); c.Imported != 45 {
		t.Fatalf("counts %+v", c)
	}
	if len(r.graph.gets) != 1+1+44 || r.graph.readRequests != 1+1+3 || r.graph.pages != 0 {
		t.Errorf("finishing read %d devices in %d requests and %d list pages, want 46 in 5 and none", len(r.graph.gets), r.graph.readRequests, r.graph.pages)
	}
}

// A read Graph throttles inside the last pass does not hold the others up: the devices read get
// their state, the throttled one stays processing, and the next look waits as Graph asked.
func TestThrottledReadKeepsTheOthersAndWaits(t *testing.T) {
	r, clock := sentAndFollowing(t, 3, 3)
	rows, _ := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{})
	r.graph.status = "complete"
	r.graph.readErrs = map[string]error{rows[0].DeviceID: &graphclient.Error{Kind: graphclient.KindThrottled, StatusCode: http.StatusTooManyRequests, RetryAfter: 9 * time.Second}}
	clock.Advance(time.Minute)
	r.step()
	if c := r.counts(); c.Imported != 2 || c.Processing != 1 {
		t.Errorf("counts %+v, want 2 imported and the throttled one still processing", c)
	}
	if p := r.payload(); p.Waiting == nil || p.Waiting.For != 9*time.Second || p.PollAt.Sub(clock.Now()) != 9*time.Second {
		t.Errorf("the next look is not Graph's wait: waiting %+v, next look in %s", p.Waiting, r.payload().PollAt.Sub(clock.Now()))
	}
}

// A device Intune never finishes (its import state stays null) is not followed forever: a day
// after its batch was sent it is looked for once more, among registered devices too, and gets a
// final verdict, so the job finishes and its hashes leave the database.
func TestDeviceIntuneNeverFinishesIsSettledAfterADay(t *testing.T) {
	clk := testkit.NewClock()
	r := newRigAt(t, clk.Now, 3, 3, nil)
	r.graph.stuck = true
	r.graph.answer = func(_ int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		return r.graph.created(d, ""), nil // a null deviceImportStatus, as the schema allows
	}
	r.w = New(Options{Options: jobs.Options{Tokens: r.tokens, Lease: time.Minute, Now: clk.Now}, Store: r.db, Graph: r.graph, LookupDelays: []time.Duration{0, 0}})
	r.graph.registered = map[string]bool{"SN-1": true}
	r.step()
	if c := r.counts(); c.Final() != 0 {
		t.Fatalf("final before anything was known: %+v", c)
	}
	clk.Advance(23 * time.Hour)
	r.step()
	if c := r.counts(); c.Final() != 0 {
		t.Fatalf("settled before a day had passed: %+v", c)
	}
	clk.Advance(time.Hour)
	r.step()
	rows, _ := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{Hashes: true})
	for _, row := range rows {
		want := store.VerdictNotFound
		if row.Serial == "SN-1" {
			want = store.VerdictImported
		}
		if row.Verdict != want || (want == store.VerdictNotFound && row.Reason != store.ReasonStalled) || row.Hash != "" {
			t.Errorf("%s: verdict %q reason %q, hash kept %t; want %q", row.Serial, row.Verdict, row.Reason, row.Hash != "", want)
		}
	}
	if j, _ := r.db.GetImportJob(context.Background(), "t", r.job.ID); j.State != StateFinished {
		t.Errorf("the job is %s, not finished", j.State)
	}
	if r.graph.calls() != 1 {
		t.Errorf("%d import calls", r.graph.calls())
	}
	acts, _, _ := r.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: "t"})
	found := false
	for _, a := range acts {
		found = found || strings.Contains(a.Summary, "Stopped following 3 devices")
	}
	if !found {
		t.Errorf("no activity says the desk stopped following: %+v", acts)
	}
}

// A job of the earlier format kept no time of sending: its creation stands for it, so a device
// Intune never finishes is settled after FollowFor there too, the job ends and its hashes go.
func TestJobOfTheEarlierFormatIsSettledAfterFollowFor(t *testing.T) {
	r := newRig(t, 0, 1, nil)
	clock := testkit.NewClockAt(time.Now())
	r.w = New(Options{Options: jobs.Options{Tokens: r.tokens, Lease: time.Minute, Now: clock.Now}, Store: r.db, Graph: r.graph, LookupDelays: []time.Duration{0, 0}})
	r.graph.status = "pending"
	d := graphclient.DeviceIdentity{ID: uuid.NewString(), SerialNumber: "SN-OLD"}
	r.graph.devices[d.ID] = d
	old := r.earlierFormatJob(`{"line":2,"serial":"SN-OLD","hash":"QUJD","hashShown":"QUJD"}`, d.ID)
	r.step()
	if j, _ := r.db.GetImportJob(context.Background(), "t", old.ID); j.State != StateSending {
		t.Fatalf("a device still processing ended the job: %s", j.State)
	}
	clock.Advance(25 * time.Hour)
	r.step()
	if j, _ := r.db.GetImportJob(context.Background(), "t", old.ID); j.State != StateFinished {
		t.Fatalf("a day later the job is %s", j.State)
	}
	rows, _ := r.db.ImportRows(context.Background(), old.ID, store.RowFilter{Hashes: true})
	if len(rows) != 1 || rows[0].Hash != "" {
		t.Errorf("rows %+v", rows)
	}
}

// earlierFormatJob stores a job being sent in the earlier format, its rows (JSON objects) in its
// payload with the device of line 2 (SN-OLD) sent in batch 1 as deviceID, and makes it the rig's
// job.
func (r *rig) earlierFormatJob(rows, deviceID string) *store.ImportJob {
	r.t.Helper()
	payload := fmt.Sprintf(`{"rows":[%s],"devices":[{"id":%q,"serial":"SN-OLD","status":"pending","batch":1}],"polls":4}`, rows, deviceID)
	job := &store.ImportJob{TenantID: "t", ObjectID: "o", State: StateSending, Payload: []byte(payload)}
	if err := r.db.CreateImportJob(context.Background(), job, nil); err != nil {
		r.t.Fatal(err)
	}
	r.job = job
	return job
}

// A look-up of a lost answer that keeps failing (Graph times out) waits longer after each
// failure, 10 seconds doubled up to 5 minutes, and the batch says why its looks fail; the first
// look that works clears it.
func TestFailingLookUpsBackOff(t *testing.T) {
	clock := testkit.NewClockAt(time.Now())
	var r *rig
	r = newRigAt(t, clock.Now, 2, 2, func(_ int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		r.graph.created(d, "complete")
		return nil, &graphclient.Error{Kind: graphclient.KindBadResponse, StatusCode: 200}
	})
	r.w = New(Options{Options: jobs.Options{Tokens: r.tokens, Lease: time.Minute, Now: clock.Now}, Store: r.db, Graph: r.graph, LookupDelays: []time.Duration{0, time.Hour}})
	failing := true
	r.graph.lookupFails = func(int) error {
		if failing {
			return &graphclient.Error{Kind: graphclient.KindOutcomeUnknown, StatusCode: http.StatusGatewayTimeout}
		}
		return nil
	}
	r.step()
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute} {
		b := r.batches()[0]
		d := DecodeBatchDetail(b.Detail)
		if got := b.NotBefore.Sub(clock.Now()).Round(time.Second); got != want || d.FailedLooks != i+1 || d.LookFailure == nil {
			t.Fatalf("after %d failed looks: next look in %s, want %s; detail %+v", i+1, got, want, d)
		}
		looks := len(r.graph.lookups)
		clock.Advance(want - time.Second)
		r.step()
		if len(r.graph.lookups) != looks {
			t.Fatalf("looked again %s after a failed look, before the wait was over", want-time.Second)
		}
		clock.Advance(time.Second)
		r.step()
	}
	failing = false
	clock.Advance(5 * time.Minute)
	r.step()
	if d := DecodeBatchDetail(r.batches()[0].Detail); d.FailedLooks != 0 || d.LookFailure != nil {
		t.Errorf("a look that worked left %+v", d)
	}
	if c := r.counts(); c.Imported != 2 {
		t.Errorf("counts %+v", c)
	}
}

// A desk restored from a backup taken while an import ran sends none of the batches the backup
// still had queued, as the desk it was taken from may have sent them since: it looks their
// devices up. Those found are imported; those never found are "outcome unknown — check", in
// words that say the backup had not sent them.
func TestRestoredBackupLooksUpWhatItHadNotSent(t *testing.T) {
	r := newRig(t, 4, 2, nil)
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := store.Backup(ctx, r.dir, filepath.Join(dir, "autopilotdesk.db")); err != nil {
		t.Fatal(err)
	}
	r.step() // the desk the backup was taken from sends both batches
	if r.graph.calls() != 2 {
		t.Fatalf("%d import calls before the restore, want 2", r.graph.calls())
	}
	maps.DeleteFunc(r.graph.devices, func(_ string, d graphclient.DeviceIdentity) bool { // say the second batch never reached Graph
		return d.SerialNumber != "SN-0" && d.SerialNumber != "SN-1"
	})

	clock := testkit.NewClockAt(time.Now())
	restored, err := store.Open(ctx, store.Options{DataDir: dir, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restored.Close() })
	r.db = restored
	r.w = New(Options{Options: jobs.Options{Tokens: r.tokens, Lease: time.Minute, Now: clock.Now}, Store: restored, Graph: r.graph,
		LookupDelays: []time.Duration{0, time.Minute}})
	r.step()
	clock.Advance(time.Minute)
	r.step()
	if r.graph.calls() != 2 {
		t.Errorf("the restored desk made %d import calls; want none", r.graph.calls()-2)
	}
	rows, _ := restored.ImportRows(ctx, r.job.ID, store.RowFilter{})
	for _, row := range rows {
		found := row.Line < 4
		if found && row.Verdict == store.VerdictNotFound || !found && (row.Verdict != store.VerdictNotFound || row.Reason != store.ReasonRestored) {
			t.Errorf("%s after the restore: %+v", row.Serial, row.Outcome)
		}
	}
	acts, _, _ := restored.ListActivity(ctx, store.ActivityFilter{TenantID: "t", Action: "import"})
	want := "The desk was restored from a backup in which batch 2 of 2 was not sent yet, so its 2 devices were looked up"
	if !slices.ContainsFunc(acts, func(a store.Activity) bool { return strings.HasPrefix(a.Summary, want) }) {
		t.Errorf("no activity says %q", want)
	}
}
