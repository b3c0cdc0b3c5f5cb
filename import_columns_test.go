package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/views"
	"autopilotdesk/web/store"
)

// A row whose columns are shifted puts a hardware hash in another column (here the product ID,
// the group tag and the assigned user). The value is never shown or pre-filled whole, its
// message says to check the columns' order, and the finished import keeps only its ends.
func TestAValueTooLongForItsColumnIsNeverShownOrKeptWhole(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	misplaced := []string{realHash(), realHash(), realHash()}
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	w.Write([]string{"PK-GOOD", "", realHash(), "", ""})
	w.Write([]string{"PK-BAD", misplaced[0], "Sales", ""}) // the empty product ID is missing
	w.Write([]string{"GT-BAD", "", "", misplaced[1], ""})
	w.Write([]string{"US-BAD", "", realHash(), "", misplaced[2]})
	w.Flush()
	job := draftOf(t, d, b, file.Bytes())
	_, doc := d.get(b, job)
	html, _ := doc.Html()
	for i, h := range misplaced {
		if strings.Contains(html, h[1000:1064]) {
			t.Errorf("misplaced hash %d is shown on the draft's page", i)
		}
	}
	for line, field := range map[int]string{3: "productKey", 4: "groupTag", 5: "user"} {
		input := doc.Find(`#row-` + strconv.Itoa(line) + `-` + field)
		if input.Length() != 1 || input.AttrOr("value", "x") != "" || input.AttrOr("aria-invalid", "") != "true" {
			t.Errorf("line %d's %s field: value %.40q, aria-invalid %q", line, field, input.AttrOr("value", ""), input.AttrOr("aria-invalid", ""))
		}
		msg := doc.Find(`#row-` + strconv.Itoa(line) + `-` + field + `-error`).Text()
		if !strings.Contains(msg, "Check that the columns are in the header's order") || !strings.Contains(msg, "…") {
			t.Errorf("line %d's message: %q", line, msg)
		}
	}
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	waitFinished(t, d, b, job)
	rows, err := d.app.db.ImportRows(context.Background(), strings.TrimPrefix(job, views.ImportJobURL("")), store.RowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		for _, v := range []string{r.Serial, r.ProductKey, r.GroupTag, r.User} {
			if len(v) > 200 {
				t.Errorf("line %d keeps a value of %d characters after the import", r.Line, len(v))
			}
		}
	}
	if got := rows[1].ProductKey; got != misplaced[0][:4]+"…"+misplaced[0][len(misplaced[0])-4:] {
		t.Errorf("line 3 keeps product ID %.40q, want the misplaced hash's ends", got)
	}
	for _, h := range misplaced {
		assertHashesGone(t, d.app, d.app.cfg.DataDir, h)
	}
	for _, r := range report(t, d, b, job) {
		if strings.Contains(strings.Join(r, ","), misplaced[1][1000:1064]) {
			t.Error("the report holds the hash from the group tag column")
		}
	}
}

// Devices looked up after a lost answer and not found are not counted, on the page or in the
// report, as found after a lost answer.
func TestDevicesNotFoundAfterALostAnswerAreNotCountedAsFound(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond},
		ImportLookupDelays: []time.Duration{0, 0}})
	d.app.demo.Emulator.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{504}, Methods: []string{http.MethodPost}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, _ := deviceCSV("SN-NOTFOUND", 3)
	job := draftOf(t, d, b, data)
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	doc := waitFinished(t, d, b, job)
	if got := doc.Find(`[data-testid="outcome"] tr[data-verdict="not-found"]`).Length(); got != 3 {
		t.Fatalf("%d of 3 rows not found: %.600s", got, text(doc))
	}
	if summary := doc.Find(`[data-testid="progress-summary"]`).Text(); strings.Contains(summary, "found by looking") {
		t.Errorf("summary: %s", summary)
	}
	for _, r := range report(t, d, b, job)[1:] {
		if r[8] != "" {
			t.Errorf("report line %s says found after a lost answer: %q", r[0], r[8])
		}
	}
}
