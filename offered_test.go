package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// uploadsAsked counts the requests Graph received for the uploads collection.
func uploadsAsked(e *emulator.Emulator) int {
	return countReceived(e, func(r emulator.ReceivedRequest) bool {
		return strings.Contains(r.Path, "importedWindowsAutopilotDeviceIdentityUploads")
	})
}

// leadsToImport checks that a page leads to the desk's device import instead of the create form.
func leadsToImport(t *testing.T, page string, doc *goquery.Document) {
	t.Helper()
	notice := doc.Find(`[data-testid="uploads-missing"]`)
	if notice.Length() != 1 || notice.Find(`a.btn[href="/devices/import"]`).Text() != "Import devices instead" {
		t.Errorf("%s: no notice leading to the device import: %s", page, text(doc))
	}
	if first := notice.Find("p").First().Text(); strings.Contains(first, "importedWindowsAutopilotDeviceIdentit") {
		t.Errorf("%s: Graph's names in the first sentence: %s", page, first)
	}
	if !strings.Contains(notice.Find("details").Text(), "importedWindowsAutopilotDeviceIdentityUploads") {
		t.Errorf("%s: the details do not name what Graph answered", page)
	}
	// Said from memory or just now, with the ids of the answer that said it.
	if support := doc.Find(`[data-testid="support"]`).Text(); !strings.Contains(support, "request-id") || !strings.Contains(support, "client-request-id") {
		t.Errorf("%s: no support details for Graph's answer: %q", page, support)
	}
}

// Once the tenant's Graph answered that it has no uploads, the desk remembers it: home leads to
// device import and asks Graph nothing, the create form says so before anything is typed, and
// the refusal's main action is the desk's own device import. After a day, or on demand, it asks
// again and forgets once Graph answers for uploads.
func TestTenantWithoutUploadsLeadsToDeviceImport(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/"))
	if doc.Find(`[data-testid="start"] a.btn[href="/uploads/new"]`).Length() != 1 || doc.Find(`[data-testid="upload-meaning"]`).Length() != 1 {
		t.Fatalf("home before: %s", text(doc))
	}
	for _, path := range []string{"/uploads", "/uploads/new"} {
		if _, doc := d.get(b, path); !strings.Contains(doc.Find(`[data-testid="upload-meaning"]`).Text(), "device import") {
			t.Errorf("%s does not say what an upload is and when to import devices instead", path)
		}
	}

	_, doc = d.get(b, "/uploads/new")
	form := formValues(t, doc, `form[action="/uploads"]`)
	d.emu.SetFaults(emulator.Faults{UploadsSegmentMissing: true})
	resp, doc := d.post(b, "/uploads", form)
	failure := doc.Find(`[data-testid="failure"]`)
	if resp.StatusCode != http.StatusBadRequest || failure.Find(`a.btn[href="/devices/import"]`).Text() != "Import devices instead" {
		t.Fatalf("the refusal does not lead to device import: %d %s", resp.StatusCode, text(doc))
	}
	if what := failure.Find("p").First().Text(); strings.Contains(what, "importedWindowsAutopilotDeviceIdentit") {
		t.Errorf("Graph's names in the first sentence: %s", what)
	}
	if !strings.Contains(failure.Find(`[data-testid="failure-details"]`).Text(), "Resource not found for the segment") {
		t.Errorf("the details do not quote Graph: %s", failure.Text())
	}
	if doc.Find(`[data-testid="uploads-missing"]`).Length() != 0 {
		t.Error("the refusal is said twice")
	}

	asked := uploadsAsked(d.emu)
	_, doc = d.get(b, "/")
	if doc.Find(`[data-testid="start"] a[href="/uploads/new"]`).Length() != 0 || doc.Find(`[data-testid="start"] a.btn[href="/devices/import"]`).Length() != 1 {
		t.Errorf("home still starts with the create form: %s", doc.Find(`[data-testid="start"]`).Text())
	}
	leadsToImport(t, "home", doc)
	_, doc = d.get(b, "/uploads/new")
	leadsToImport(t, "create form", doc)
	if uploadsAsked(d.emu) != asked {
		t.Errorf("Graph was asked again within a day: %d requests", uploadsAsked(d.emu)-asked)
	}
	_, doc = d.get(b, "/uploads")
	leadsToImport(t, "uploads list", doc)

	// A day later the desk asks again; Graph offers uploads again, so it forgets.
	d.emu.SetFaults(emulator.Faults{})
	tenant := demoidp.DemoTenantID
	if err := d.app.db.RememberUploadsMissing(context.Background(), tenant, store.UploadsMissing{Seen: time.Now().Add(-25 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	asked = uploadsAsked(d.emu)
	_, doc = d.get(b, "/uploads/new")
	if uploadsAsked(d.emu) != asked+1 || doc.Find(`[data-testid="uploads-missing"]`).Length() != 0 {
		t.Errorf("after a day: asked %d times, notice shown %d", uploadsAsked(d.emu)-asked, doc.Find(`[data-testid="uploads-missing"]`).Length())
	}
	if _, ok, _ := d.app.db.UploadsMissingSince(context.Background(), tenant); ok {
		t.Error("still remembered after Graph answered for uploads")
	}

	// On demand: "Check again now" asks at once, and returns to the page it was on.
	if err := d.app.db.RememberUploadsMissing(context.Background(), tenant, store.UploadsMissing{Seen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, doc = d.get(b, "/")
	check := formValues(t, doc, `form[action="/uploads/offered"]`)
	resp, doc = d.post(b, "/uploads/offered", check)
	if resp.Request.URL.Path != "/" || doc.Find(`[data-testid="uploads-missing"]`).Length() != 0 ||
		doc.Find(`[data-testid="start"] a.btn[href="/uploads/new"]`).Length() != 1 {
		t.Errorf("after checking again: %s %s", resp.Request.URL.Path, text(doc))
	}
	// A return target it does not know is not followed.
	check.Set("back", "//evil.example/")
	if resp, _ = d.post(b, "/uploads/offered", check); resp.Request.URL.Host != mustHost(d.srv.URL) {
		t.Errorf("followed a foreign return target: %s", resp.Request.URL)
	}
}

// Two desks on one PostgreSQL database agree: what one learnt of the tenant's Graph, the other
// shows without asking Graph.
func TestReplicasAgreeTheTenantHasNoUploads(t *testing.T) {
	cl := startCluster(t)
	d := cl.onDesks("A", "B")
	b := d.signedInBrowser("admin", cl.browser)
	cl.emu.SetFaults(emulator.Faults{UploadsSegmentMissing: true})
	_, doc := d.get(b, "/uploads")
	leadsToImport(t, "uploads list on A", doc)
	cl.via("B")
	asked := uploadsAsked(cl.emu)
	_, doc = d.get(b, "/")
	leadsToImport(t, "home on B", doc)
	_, doc = d.get(b, "/uploads/new")
	leadsToImport(t, "create form on B", doc)
	if uploadsAsked(cl.emu) != asked {
		t.Error("B asked Graph what A had learnt")
	}
	cl.emu.SetFaults(emulator.Faults{})
	_, doc = d.get(b, "/uploads") // Graph answers for uploads again: B forgets, for A too
	cl.via("A")
	if _, doc = d.get(b, "/"); doc.Find(`[data-testid="uploads-missing"]`).Length() != 0 {
		t.Errorf("A still leads to device import: %s", text(doc))
	}
}
