package importer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web/store"
)

// stop stops r's import as Megan Bowen, at at.
func (r *rig) stop(at time.Time) (store.StoppedImport, error) {
	return Stop(context.Background(), r.db, r.job, explain.Stop{By: "Megan Bowen", At: at},
		store.Activity{ObjectID: "megan", ActorName: "Megan Bowen", ActorUPN: "meganb@contoso.com"})
}

func (r *rig) activities(action string) []store.Activity {
	r.t.Helper()
	list, _, err := r.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: "t", Action: action, Limit: 100})
	if err != nil {
		r.t.Fatal(err)
	}
	return list
}

// Stopped while its first batch is in flight, an import sends nothing more: the batch on its way
// is followed to the end, the queued ones are never sent, and the import finishes with every
// row's outcome and a record of who stopped it.
func TestStopKeepsQueuedBatchesFromGoing(t *testing.T) {
	var r *rig
	at := time.Date(2026, 11, 30, 17, 5, 12, 0, time.UTC)
	r = newRig(t, 6, 2, func(call int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		if call == 1 {
			if n, err := r.stop(at); err != nil || n != (store.StoppedImport{Batches: 2, Rows: 4}) {
				t.Errorf("stop while batch 1 is in flight: %+v, %v", n, err)
			}
		}
		return r.graph.created(d, "pending"), nil
	})
	r.step()
	r.step()
	if n := r.graph.calls(); n != 1 {
		t.Fatalf("%d import calls, want only the batch in flight at the stop", n)
	}
	if c := r.counts(); c.Imported != 2 || c.Stopped != 4 || c.Final() != 6 {
		t.Fatalf("counts %+v", c)
	}
	j, err := r.db.GetImportJob(context.Background(), "t", r.job.ID)
	if err != nil || j.State != StateFinished {
		t.Fatalf("job %+v, %v: not finished", j, err)
	}
	by := BatchFacts(r.batches())[3].Stopped
	if by == nil || by.By != "Megan Bowen" || !by.At.Equal(at) {
		t.Errorf("stopped by %+v", by)
	}
	rows, _ := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{Batch: 3})
	facts := explain.Job{Owner: "Adele Vance", Batches: BatchFacts(r.batches())}
	if d := explain.Row(rows[0], facts); d.Label != "Not sent" || !strings.Contains(d.Detail, "Megan Bowen stopped the import on 30 Nov 2026 17:05:12 UTC, before batch 3") {
		t.Errorf("a stopped row reads %+v", d)
	}
	stops := r.activities(ActionStopped)
	if len(stops) != 1 || stops[0].ActorName != "Megan Bowen" || stops[0].Target != r.job.ID ||
		!strings.Contains(stops[0].Summary, "Adele Vance's file: 4 devices in 2 batches not sent") {
		t.Errorf("stop records %+v", stops)
	}
	finished := r.activities(ActionFinished)
	if len(finished) != 1 || finished[0].Outcome != "success" ||
		finished[0].Summary != "Import of 2 devices finished: 2 imported. 4 devices were not sent: the import was stopped. The outcome report lists each device." {
		t.Errorf("finished records %+v", finished)
	}
	if n, err := r.stop(at); !errors.Is(err, store.ErrConflict) || n != (store.StoppedImport{}) {
		t.Errorf("stopping a finished import: %+v, %v", n, err)
	}
}

// A stop that comes between the worker reading a batch and recording it in flight wins: the
// worker finds the batch stopped, sends nothing, and lets the job go at once, so the import
// finishes in the next turn rather than when a lease runs out.
func TestStopBetweenReadingABatchAndSendingIt(t *testing.T) {
	r := newRig(t, 4, 2, nil)
	stopper := &stopBeforeSending{DB: r.db, batch: 2, stop: func() {
		if n, err := r.stop(time.Now()); err != nil || n.Batches != 1 {
			t.Errorf("stop: %+v, %v", n, err)
		}
	}}
	r.w = New(Options{Options: jobs.Options{Tokens: r.tokens, Lease: time.Hour}, Store: stopper, Graph: r.graph, LookupDelays: []time.Duration{0}})
	r.step()
	if n := r.graph.calls(); n != 1 {
		t.Fatalf("%d import calls: the stopped batch was sent", n)
	}
	r.step()
	j, err := r.db.GetImportJob(context.Background(), "t", r.job.ID)
	if err != nil || j.State != StateFinished || j.LeaseOwner != "" {
		t.Fatalf("job %+v, %v: held, or not finished", j, err)
	}
	if c := r.counts(); c.Imported != 2 || c.Stopped != 2 {
		t.Errorf("counts %+v", c)
	}
}

// stopBeforeSending runs stop once, just before the worker records batch in flight.
type stopBeforeSending struct {
	*store.DB
	batch int
	once  sync.Once
	stop  func()
}

func (s *stopBeforeSending) ChangeImport(ctx context.Context, ch store.ImportChange) error {
	if ch.Batch != nil && ch.Batch.Batch == s.batch && ch.Batch.State == BatchInFlight {
		s.once.Do(s.stop)
	}
	return s.DB.ChangeImport(ctx, ch)
}

// Dozens of stops racing two workers through forty batches: every batch is either sent once or
// stopped, never both, no device goes twice, every row ends final, and one record says who
// stopped it.
func TestStopsRacingWorkers(t *testing.T) {
	start := make(chan struct{})
	var started sync.Once
	var r *rig
	r = newRig(t, 40, 1, func(call int, d []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, error) {
		if call == 5 {
			started.Do(func() { close(start) }) // the stops go while batches are on their way
		}
		return r.graph.created(d, "pending"), nil
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, holder := range []string{"worker-a", "worker-b"} {
		wg.Go(func() {
			for range 200 {
				if err := r.db.WakeImportJob(ctx, "t", r.job.ID, false); err != nil {
					return
				}
				r.w.Once(ctx, holder)
			}
		})
	}
	for range 24 {
		wg.Go(func() {
			<-start
			if _, err := r.stop(time.Now()); err != nil && !errors.Is(err, store.ErrConflict) {
				t.Errorf("stop: %v", err)
			}
		})
	}
	wg.Wait()
	for range 3 {
		r.step()
	}
	sent := map[string]int{}
	r.graph.mu.Lock()
	for _, call := range r.graph.imports {
		for _, d := range call {
			sent[d.SerialNumber]++
		}
	}
	r.graph.mu.Unlock()
	rows, err := r.db.ImportRows(ctx, r.job.ID, store.RowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := 0
	for _, row := range rows {
		switch {
		case sent[row.Serial] > 1:
			t.Errorf("%s sent %d times", row.Serial, sent[row.Serial])
		case row.Verdict == store.VerdictStopped && sent[row.Serial] != 0:
			t.Errorf("%s stopped and sent", row.Serial)
		case row.Verdict == store.VerdictStopped:
			stopped++
		case row.Verdict != store.VerdictImported || sent[row.Serial] != 1:
			t.Errorf("%s: verdict %s, sent %d times", row.Serial, row.Verdict, sent[row.Serial])
		}
	}
	if len(sent)+stopped != 40 {
		t.Errorf("%d sent and %d stopped of 40", len(sent), stopped)
	}
	if records := r.activities(ActionStopped); stopped > 0 && len(records) != 1 {
		t.Errorf("%d stop records for one stop", len(records))
	}
	t.Logf("%d batches sent, %d stopped", len(sent), stopped)
}

// An import stopped before anything was sent ends although its owner is away: nothing needs
// Graph any more, and its hashes leave the database at once.
func TestStoppedImportEndsWithoutItsOwner(t *testing.T) {
	r := newRig(t, 4, 2, nil)
	r.tokens.signedIn = false
	r.step()
	if !r.payload().Paused {
		t.Fatal("the import does not wait for its owner")
	}
	if n, err := r.stop(time.Now()); err != nil || n.Rows != 4 {
		t.Fatalf("stop: %+v, %v", n, err)
	}
	r.step()
	j, err := r.db.GetImportJob(context.Background(), "t", r.job.ID)
	if err != nil || j.State != StateFinished {
		t.Fatalf("job %+v, %v: not finished", j, err)
	}
	rows, _ := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{Hashes: true})
	for _, row := range rows {
		if row.Hash != "" {
			t.Errorf("line %d keeps its hash", row.Line)
		}
	}
	if r.graph.calls() != 0 {
		t.Errorf("%d import calls", r.graph.calls())
	}
}
