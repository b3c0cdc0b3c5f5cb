package views

import (
	"strings"
	"testing"
	"time"
)

// Each page of an import, a bulk change and a result has a title of its own that names the
// object: the four steps of one import differ, two imports differ, and a result names its target.
func TestTitlesSayWhatAndWhich(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	seen := map[string]string{}
	unique := func(what, title string) {
		t.Helper()
		if other, ok := seen[title]; ok {
			t.Errorf("%s and %s share the title %q", what, other, title)
		}
		seen[title] = what
	}
	for _, j := range []struct {
		what string
		job  ImportJob
	}{
		{"a draft", ImportJob{State: "draft", Created: at}},
		{"a check", ImportJob{State: "checking", Created: at, Checking: &CheckProgress{}}},
		{"an import being sent", ImportJob{State: "sending", Created: at}},
		{"a finished import", ImportJob{State: "finished", Created: at}},
		{"another finished import", ImportJob{State: "finished", Created: at.Add(time.Minute)}},
		{"a finished import of a file", ImportJob{State: "finished", Created: at.Add(2 * time.Minute), FileName: "batch-a.csv"}},
	} {
		title := ImportJobTitle(j.job)
		if !strings.Contains(title, When(j.job.Created)) {
			t.Errorf("%s: the title %q does not say which import", j.what, title)
		}
		unique(j.what, title)
	}
	draft := BulkJob{State: "draft", Action: "group-tag", GroupTag: "Sales", What: "set the group tag to “Sales”", Created: at, Devices: make([]BulkRow, 3)}
	running, finished := draft, draft
	running.State, finished.State = "sending", "finished"
	for what, j := range map[string]BulkJob{"a bulk change to confirm": draft, "a bulk change running": running, "a finished bulk change": finished} {
		title := BulkJobTitle(j)
		if !strings.Contains(title, "Sales") {
			t.Errorf("%s: the title %q does not say which change", what, title)
		}
		unique(what, title)
	}
	for what, r := range map[string]Result{
		"an upload created":      {Action: "create-upload", Outcome: "success", Target: "8d639524-9524-8d63-2495-638d2495638d", At: at},
		"another upload created": {Action: "create-upload", Outcome: "success", Target: "0e0c2b5a-1f7c-4c39-9d0f-6a2b8c1d2e3f", At: at},
	} {
		title := ResultTitle(r)
		if !strings.Contains(title, r.Target) || strings.HasPrefix(title, "Result") {
			t.Errorf("%s: the title %q does not say what and which", what, title)
		}
		unique(what, title)
	}
}
