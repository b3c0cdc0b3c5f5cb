package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// approveAll approves every waiting device as b and returns the import's page once finished.
func approveAll(t *testing.T, d *desk, b *http.Client) string {
	t.Helper()
	form, _ := decideForm(t, d, b)
	form.Set("action", "approve")
	resp, _ := d.post(b, "/registration/decide", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approving answered %d", resp.StatusCode)
	}
	doc := waitFinished(t, d, b, resp.Request.URL.Path)
	// What the page says of the approver (read-only after a 403 of their role) is not what it
	// says of the import.
	doc.Find(`[data-testid="read-only"]`).Remove()
	return text(doc)
}

// An approval Graph refused tells the approver and the technician what they can do: nobody has
// a file or a form to send again.
func TestARefusedApprovalSaysWhatIsTrue(t *testing.T) {
	t.Run("values refused", func(t *testing.T) {
		d := startDeskWith(t, nil, fastImports)
		admin := d.browser()
		d.signIn(admin, "admin", "/")
		code, _ := createCode(t, d, admin, nil)
		sendDevice(t, d, code, "REFUSED-400")
		d.emu.SetFaults(emulator.Faults{ErrorRate: 1, Methods: []string{http.MethodPost}, ErrorStatuses: []int{400}})
		second := d.browser()
		d.signIn(second, demoidp.ManyGroupsKey, "/")
		page := approveAll(t, d, second)
		for _, wrong := range []string{"upload the file", "send the form again", "row in the file", "rows in the file", "row of the file"} {
			if strings.Contains(page, wrong) {
				t.Errorf("the import page of an approval says %q: %.1500s", wrong, page)
			}
		}
		if !strings.Contains(page, "from the device") {
			t.Errorf("the import page does not say the hash is sent again from the device: %.1500s", page)
		}
		waitFor(t, "the registration to settle", func() bool {
			return registrations(t, d.app, store.SubmissionFilter{})[0].State == store.SubmissionFinished
		})
		_, answer := d.device().status(code)
		if !strings.Contains(answer, "FAILED") || strings.Contains(answer, "form") || strings.Contains(answer, "upload") || !strings.Contains(answer, "IT team") {
			t.Errorf("status:\n%s", answer)
		}
	})
	t.Run("approver refused", func(t *testing.T) {
		d := startDeskWith(t, nil, fastImports)
		admin := d.browser()
		d.signIn(admin, "admin", "/")
		code, _ := createCode(t, d, admin, nil)
		sendDevice(t, d, code, "REFUSED-403")
		d.emu.SetFaults(emulator.Faults{Forbid403Nested: true})
		second := d.browser()
		d.signIn(second, demoidp.ManyGroupsKey, "/")
		page := approveAll(t, d, second)
		for _, wrong := range []string{"upload the file", "sign in again", "row in the file", "row of the file"} {
			if strings.Contains(page, wrong) {
				t.Errorf("the import page of a refused approval says %q: %.1500s", wrong, page)
			}
		}
		if !strings.Contains(page, "wait again under Registration") {
			t.Errorf("the import page does not say the devices wait again: %.1500s", page)
		}
	})
}

// A registration whose import's outcome is unknown is not shown as not imported: sent again, it
// could be imported twice.
func TestAnUnknownOutcomeIsNotBadgedNotImported(t *testing.T) {
	opts := fastImports
	opts.ImportLookupDelays = []time.Duration{0, 0}
	d := startDeskWith(t, nil, opts)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, nil)
	sendDevice(t, d, code, "UNKNOWN-1")
	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, Methods: []string{http.MethodPost}, ErrorStatuses: []int{504}})
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	approveAll(t, d, second)
	waitFor(t, "the registration to settle", func() bool {
		return registrations(t, d.app, store.SubmissionFilter{})[0].State == store.SubmissionFinished
	})
	_, page := d.get(admin, "/registration")
	row := page.Find(`tr[data-state="finished"]`)
	badge := row.Find(".badge")
	if !strings.Contains(badge.Text(), "Outcome unknown") || badge.HasClass("badge-bad") || !badge.HasClass("badge-warn") {
		html, _ := row.Html()
		t.Errorf("the decided registration's badge: %s", html)
	}
}

// A device the desk imported a moment ago is not "not registered" on the waiting list while
// Intune's list of registered devices lags behind: the desk's own recent imports count, as at
// an import's check of serials.
func TestWaitingListCountsTheDesksOwnRecentImports(t *testing.T) {
	opts := fastImports
	opts.ConsistencyDelay = time.Hour
	d := startDeskWith(t, nil, opts)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	data, _ := deviceCSV("LAGS", 1)
	job := draftOf(t, d, admin, data)
	d.post(admin, job+"/submit", submitForm(t, d, admin, job))
	waitFinished(t, d, admin, job)
	code, _ := createCode(t, d, admin, nil)
	sendDevice(t, d, code, "LAGS-00001")
	_, doc := d.get(admin, "/registration")
	row := doc.Find(`tr[data-serial="LAGS-00001"]`)
	if got := row.Text(); !strings.Contains(got, "imported by the desk") {
		t.Errorf("a serial the desk imported a moment ago: %q", got)
	}
	if row.Find(`a[href="`+job+`"]`).Length() != 1 {
		html, _ := row.Html()
		t.Errorf("no link to the import: %s", html)
	}
}

// The devices of one file are decided together, and the page says so beside its one tick.
func TestAFilesDevicesAreDecidedTogether(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, map[string]string{"uses": "3"})
	if status, answer, _ := d.device().raw("/register/"+code, "text/csv", []byte(captureCSV(false, [2]string{"FILE-1", realHash()}, [2]string{"FILE-2", realHash()}))); status != http.StatusAccepted {
		t.Fatalf("sending answered %d: %s", status, answer)
	}
	_, doc := d.get(admin, "/registration")
	if n := doc.Find(`input[name="submission"]`).Length(); n != 1 {
		t.Errorf("%d ticks for one file", n)
	}
	if got := doc.Find(`[data-testid="decided-together"]`).Text(); !strings.Contains(got, "approved or rejected together") {
		t.Errorf("the page does not say a file's devices are decided together: %.600s", text(doc))
	}
	if got := doc.Find(`tr[data-serial="FILE-2"]`).Text(); !strings.Contains(got, "with FILE-1") {
		t.Errorf("the second device's row: %q", got)
	}
}

// The code form holds no more than the desk takes, and its errors name its fields as it labels them.
func TestTheCodeFormSpeaksOfItsOwnFields(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	_, doc := d.get(admin, "/registration/codes/new")
	if got := doc.Find(`input[name="assignedUser"]`).AttrOr("maxlength", ""); got != "113" {
		t.Errorf("the assigned user field takes %s characters", got)
	}
	form := formValues(t, doc, `form[action="/registration/codes"]`)
	form.Set("assignedUser", "not a upn")
	form.Set("groupTag", "Floor\u202e3")
	resp, page := d.post(admin, "/registration/codes", form)
	got := text(page)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(got, "The assigned user") || !strings.Contains(got, "The group tag") ||
		strings.Contains(got, "Assigned User") || strings.Contains(got, "Group Tag") {
		t.Errorf("answered %d: %.800s", resp.StatusCode, got)
	}
}
