package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"autopilotdesk/handlers/bulk"
)

// 500 serial numbers pasted from a spreadsheet are looked up in 25 JSON batches of 20, not one
// request each; the draft lists the devices found and the serial numbers that are not
// registered.
func TestBulkChangeBySerialNumberLooksUpInBatches(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	seedFleet(d.emu, "SN-SER", 490)
	serials := make([]string, 0, 500)
	for i := range 500 {
		serials = append(serials, fmt.Sprintf("SN-SER-%03d", i+1)) // SN-SER-491 and on are not registered
	}
	before := len(d.emu.Received())
	_, doc := d.get(b, "/devices/bulk/serials")
	form := formValues(t, doc, `[data-testid="serials-form"]`)
	form.Set("serials", strings.Join(serials, "\r\n"))
	form.Set("action", "unassign-user")
	resp, doc := d.post(b, "/devices/bulk/serials", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/devices/bulk/") || resp.Request.URL.Path == "/devices/bulk/serials" {
		t.Fatalf("choosing landed on %s (%d): %.600s", resp.Request.URL, resp.StatusCode, text(doc))
	}
	received := d.emu.Received()[before:]
	batches := 0
	for _, r := range received {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/$batch") {
			batches++
		}
	}
	if len(received) > 25 || batches != len(received) {
		t.Errorf("500 serial numbers took %d requests to Graph, %d of them batches", len(received), batches)
	}
	if n := doc.Find(`[data-testid="bulk-devices"] tbody tr`).Length(); n != 490 {
		t.Errorf("the draft lists %d devices", n)
	}
	if got := doc.Find(`[data-testid="serials-not-found"]`).Text(); !strings.Contains(got, "SN-SER-491") || !strings.Contains(got, "SN-SER-500") {
		t.Errorf("the serial numbers not registered: %q", got)
	}
	if n := len(writesPerDevice(t, d.emu)); n != 0 {
		t.Errorf("%d devices changed before the confirmation", n)
	}
}

// A change chosen by serial number is confirmed like one chosen on the list: each device found
// is changed once, and a serial number given twice is looked up and changed once.
func TestBulkChangeBySerialNumberIsConfirmedLikeAnyOther(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-PICK", 3)
	_, doc := d.get(b, "/devices/bulk/serials")
	form := formValues(t, doc, `[data-testid="serials-form"]`)
	form.Set("serials", "SN-PICK-001\tSN-PICK-002\nsn-pick-001\nSN-PICK-003\nSN-NOT-THERE\n")
	form.Set("action", "group-tag")
	form.Set("groupTag", "Wave 2")
	resp, doc := d.post(b, "/devices/bulk/serials", form)
	job := strings.TrimPrefix(resp.Request.URL.Path, "/devices/bulk/")
	if got := strings.TrimSpace(doc.Find("h1").Text()); got != "Set the group tag of 3 devices to “Wave 2”?" {
		t.Fatalf("the confirmation asks %q: %.600s", got, text(doc))
	}
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	doc = waitBulk(t, d, b, job)
	if got := outcomes(doc); got[bulk.DeviceDone] != 3 {
		t.Errorf("outcomes %v: %s", got, text(doc))
	}
	writes := writesPerDevice(t, d.emu)
	for _, id := range ids {
		if writes[strings.ToLower(id)] != 1 {
			t.Errorf("device %s changed %d times", id, writes[strings.ToLower(id)])
		}
	}
	if got := doc.Find(`[data-testid="bulk-serials"]`).Text(); !strings.Contains(got, "SN-NOT-THERE") || !strings.Contains(got, "repeats line 1") {
		t.Errorf("the finished change no longer says what became of the serial numbers: %s", got)
	}
}
