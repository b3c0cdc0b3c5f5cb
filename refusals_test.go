package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
)

// Intune words every 403 alike; the desk tells apart the permission it was not granted (the token
// answer's scopes lack it), the person's Intune role (the permission was granted and Intune still
// refused) and a tenant without an Intune licence, each with its own next step.
func TestRefusalsBlameTheRightThing(t *testing.T) {
	d := startDesk(t, nil)
	refusal := func(who string) (int, string, string) {
		b := d.browser()
		form := formValues(t, parse(t, d.signIn(b, who, "/uploads/new")), `form[action="/uploads"]`)
		resp, doc := d.post(b, "/uploads", form)
		f := doc.Find(`[data-testid="failure"]`)
		return resp.StatusCode, f.Find("h2").Text(), f.Text()
	}

	// The demo's help-desk reader: the permission is granted, her Intune role refuses.
	status, title, all := refusal(demoidp.ReaderKey)
	if status != http.StatusForbidden || title != "Your Intune role does not allow this" || !strings.Contains(all, "Ask an Intune administrator") || strings.Contains(all, "admin consent") {
		t.Errorf("the reader: %d %q %s", status, title, all)
	}
	// Granted only the read permission: the desk knows from the sign-in that it was not granted
	// what a create needs, so it offers no form, refuses one posted anyway and sends nothing.
	b := d.browser()
	doc := parse(t, d.signIn(b, demoidp.ReadGrantKey, "/uploads/new"))
	posts := postsTo(d.emu, "")
	resp, doc := d.post(b, "/uploads", url.Values{"_csrf": {csrfOn(doc)}, "createdDateTimeUtc": {"2026-03-02"}, "status": {"pending"}})
	if note := doc.Find(`[data-testid="read-only"]`).Text(); resp.StatusCode != http.StatusForbidden || !strings.Contains(note, "admin consent") ||
		!strings.Contains(note, "DeviceManagementServiceConfig.Read.All without DeviceManagementServiceConfig.ReadWrite.All") || strings.Contains(note, "Intune role") ||
		postsTo(d.emu, "") != posts {
		t.Errorf("read permission only: %d %s", resp.StatusCode, text(doc))
	}
	// An administrator with the permission whom Intune refuses anyway (no Intune role).
	d.emu.SetFaults(emulator.Faults{Forbid403Nested: true})
	if _, title, _ = refusal(demoidp.AdminKey); title != "Your Intune role does not allow this" {
		t.Errorf("an administrator without an Intune role: %q", title)
	}
	// A tenant without an Intune licence: every page that reads says so, with the next step.
	d.emu.SetFaults(emulator.Faults{NoIntuneLicence: true})
	b = d.browser()
	doc = parse(t, d.signIn(b, demoidp.AdminKey, "/"))
	for _, path := range []string{"/", "/uploads", "/devices"} {
		_, doc = d.get(b, path)
		f := doc.Find(`[data-testid="failure"]`)
		if f.Find("h2").Text() != "Your tenant has no active Intune licence" || !strings.Contains(f.Text(), "Microsoft 365 licences") ||
			!strings.Contains(f.Find(`[data-testid="failure-details"]`).Text(), "Request not applicable to target tenant") {
			t.Errorf("%s without a licence: %s", path, text(doc))
		}
	}
}
