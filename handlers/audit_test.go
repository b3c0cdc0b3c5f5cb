package handlers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/web/store"
)

// flakyStore refuses writes while down is set, and remembers what it took.
type flakyStore struct {
	mu    sync.Mutex
	down  bool
	taken []string
	keys  []string
}

func (f *flakyStore) RecordActivity(ctx context.Context, a *store.Activity) error {
	return f.RecordSubmission(ctx, a, "")
}

func (f *flakyStore) RecordSubmission(_ context.Context, a *store.Activity, formKey string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.ID == "" {
		a.ID = "assigned-" + a.Summary
	}
	if f.down {
		return errors.New("database unreachable")
	}
	f.taken = append(f.taken, a.ID)
	f.keys = append(f.keys, formKey)
	return nil
}

func (f *flakyStore) GetActivity(context.Context, string, string) (*store.Activity, error) {
	return nil, store.ErrNotFound
}

func (f *flakyStore) CreatedUploads(context.Context, string, []string) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errors.New("database unreachable")
	}
	return map[string]bool{}, nil
}

func (f *flakyStore) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }
func (f *flakyStore) got() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.taken...), append([]string(nil), f.keys...)
}

// An upload whose create is recorded only in this desk's memory, the database having refused
// the record, still counts as created here: a look for a lost create does not take it for its own.
func TestCreatedUploadsCountTheRecordsKept(t *testing.T) {
	db := &flakyStore{down: true}
	r := NewActivityRecorder(db, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil, time.Hour)
	r.Record(context.Background(), &store.Activity{TenantID: "t", Action: "create-upload", Outcome: outcomeSuccess, Target: "u1"}, "")
	r.Record(context.Background(), &store.Activity{TenantID: "t", Action: "create-upload", Outcome: outcomeUnknown, Target: "u2"}, "")
	r.Record(context.Background(), &store.Activity{TenantID: "other", Action: "create-upload", Outcome: outcomeSuccess, Target: "u3"}, "")
	if _, err := r.CreatedUploads(context.Background(), "t", []string{"u1"}); err == nil {
		t.Error("the database is down, yet the history answered")
	}
	db.set(false)
	got, err := r.CreatedUploads(context.Background(), "t", []string{"u1", "u2", "u3"})
	if err != nil || len(got) != 1 || !got["u1"] {
		t.Errorf("created: %v %v, want only u1", got, err)
	}
}

// Records the database refuses are kept in order, retried until they land (with their form
// keys), bounded, and logged as errors if the desk stops before they land.
func TestActivityRecorderKeepsAndRetries(t *testing.T) {
	db := &flakyStore{down: true}
	logs := &testkit.Buffer{}
	r := NewActivityRecorder(db, slog.New(slog.NewJSONHandler(logs, nil)), nil, time.Millisecond)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()

	first := &store.Activity{TenantID: "t", Action: "create-upload", Summary: "first"}
	if r.Record(context.Background(), first, "key-1") {
		t.Fatal("a refused record reported saved")
	}
	if kept, ok := r.Kept("t", first.ID); !ok || kept.Summary != "first" || kept.At.IsZero() {
		t.Errorf("kept: %+v %v", kept, ok)
	}
	if _, ok := r.Kept("another tenant", first.ID); ok {
		t.Error("another tenant sees a kept record")
	}
	if err := r.RecordActivity(context.Background(), &store.Activity{TenantID: "t", Action: "sync", Summary: "second"}); err != nil {
		t.Errorf("RecordActivity failed: %v", err)
	}
	if !strings.Contains(logs.String(), `"audit":true`) || strings.Count(logs.String(), `"audit":true`) != 2 {
		t.Errorf("each event is an audit line at once:\n%s", logs.String())
	}

	db.set(false)
	for i := 0; r.Waiting() > 0; i++ {
		if i == 1000 {
			t.Fatal("kept records never landed")
		}
		time.Sleep(time.Millisecond)
	}
	taken, keys := db.got()
	if len(taken) != 2 || taken[0] != first.ID || keys[0] != "key-1" || keys[1] != "" {
		t.Errorf("landed %v with keys %v", taken, keys)
	}

	// Past the bound the oldest is dropped, with an error line naming it.
	db.set(true)
	for i := range maxKept + 1 {
		r.Record(context.Background(), &store.Activity{TenantID: "t", Action: "sync", Summary: string(rune('a' + i%26))}, "")
	}
	if r.Waiting() != maxKept || !strings.Contains(logs.String(), "activity dropped") {
		t.Errorf("%d kept; dropped logged: %v", r.Waiting(), strings.Contains(logs.String(), "activity dropped"))
	}
	stop()
	<-done
	if r.Waiting() != 0 || strings.Count(logs.String(), "the desk stopped before the state database took it") != maxKept {
		t.Errorf("records left at stop are not all logged")
	}
}

// While Refuse says the database must not be written (its file was removed), nothing is
// written there: records are kept.
func TestActivityRecorderHonoursRefuse(t *testing.T) {
	db := &flakyStore{}
	r := NewActivityRecorder(db, discardLogger, nil, time.Hour)
	r.Refuse = func() error { return errors.New("the database file was removed") }
	a := &store.Activity{TenantID: "t", Action: "sync"}
	if r.Record(context.Background(), a, "") || a.ID == "" {
		t.Errorf("saved despite Refuse; id %q", a.ID)
	}
	if taken, _ := db.got(); len(taken) != 0 {
		t.Errorf("written despite Refuse: %v", taken)
	}
}
