package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/labstack/echo/v4"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/web/store"
)

// fakeCodes counts the codes created; the code form's refusals never reach the rest of the store.
type fakeCodes struct {
	RegistrationStore
	created int
}

func (f *fakeCodes) CreateRegistrationCode(context.Context, *store.RegistrationCode, string, string, *store.Activity) error {
	f.created++
	return nil
}

// A refused code form answers 422 and shows the form again as the other forms do: an error
// summary that takes the focus and links to each field it names, in the form's order; each field
// marked invalid and described by its help and its message; everything typed kept; no code made.
func TestCodeFormErrorsAreTiedToTheirFields(t *testing.T) {
	codes := &fakeCodes{}
	var r *rig
	r = newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		h := &Registration{Store: codes, Now: func() time.Time { return r.clock.Now() }, Logger: discardLogger}
		user.GET("/registration/codes/new", h.NewCode)
		form("/registration/codes", "/registration/codes/new", h.CreateCode)
	}).signIn("")
	_, doc := r.get("/registration/codes/new")
	if doc.Find(`[data-testid="form-errors"]`).Length() != 0 || doc.Find(`[aria-invalid]`).Length() != 0 {
		t.Fatal("the empty form already shows errors")
	}
	if _, ok := doc.Find(`form[action="/registration/codes"]`).Attr("novalidate"); !ok {
		t.Error("the browser's own checks would stand in for the desk's messages")
	}
	typed := map[string]string{"groupTag": "Floor3", "assignedUser": "Bob Smith", "note": "Floor 3 refurb batch", "hours": "900", "uses": "0"}
	form := testkit.FormValues(t, doc, `form[action="/registration/codes"]`)
	for k, v := range typed {
		form.Set(k, v)
	}
	resp, doc := r.post("/registration/codes", form)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a form with errors answered %d", resp.StatusCode)
	}
	summary := doc.Find(`[data-testid="form-errors"]`)
	if _, focus := summary.Attr("autofocus"); !focus || summary.AttrOr("tabindex", "") != "-1" || summary.AttrOr("role", "") != "alert" ||
		summary.Find("h2").Text() != "Check the highlighted fields" || !strings.Contains(summary.Text(), "Nothing was created.") {
		t.Errorf("the error summary: %s", summary.Text())
	}
	if n := doc.Find(`[autofocus]`).Length(); n != 1 {
		t.Errorf("%d elements ask for the focus, want the summary alone", n)
	}
	var linked []string
	summary.Find("a").Each(func(_ int, a *goquery.Selection) { linked = append(linked, a.AttrOr("href", "")) })
	if got := strings.Join(linked, " "); got != "#assignedUser #hours #uses" {
		t.Errorf("the summary links to %q, want the fields with errors in the form's order", got)
	}
	for _, field := range []string{"assignedUser", "hours", "uses"} {
		input, msg := doc.Find("#"+field), doc.Find("#"+field+"-error")
		link := summary.Find(`a[href="#` + field + `"]`).Text()
		if input.AttrOr("aria-invalid", "") != "true" || input.AttrOr("aria-describedby", "") != field+"-help "+field+"-error" ||
			msg.Length() != 1 || !strings.Contains(link, strings.TrimPrefix(msg.Text(), "Error: ")) {
			t.Errorf("%s: aria-invalid %q, described by %q, message %q, summary %q", field, input.AttrOr("aria-invalid", ""),
				input.AttrOr("aria-describedby", ""), msg.Text(), link)
		}
	}
	for _, field := range []string{"groupTag", "note"} {
		if input := doc.Find("#" + field); input.AttrOr("aria-invalid", "") != "" || input.AttrOr("aria-describedby", "") != field+"-help" {
			t.Errorf("%s is marked though it is right", field)
		}
	}
	kept := testkit.FormValues(t, doc, `form[action="/registration/codes"]`)
	for k, v := range typed {
		if kept.Get(k) != v {
			t.Errorf("%s is now %q, typed %q", k, kept.Get(k), v)
		}
	}
	// One field wrong: the summary says so in the singular.
	kept.Set("assignedUser", "")
	kept.Set("hours", "4")
	kept.Set("uses", "1")
	kept.Set("note", strings.Repeat("n", 5000))
	_, doc = r.post("/registration/codes", kept)
	if got := doc.Find(`[data-testid="form-errors"] h2`).Text(); got != "Check the highlighted field" || doc.Find(`[data-testid="form-errors"] a[href="#note"]`).Length() != 1 {
		t.Errorf("one field wrong: %q", doc.Find(`[data-testid="form-errors"]`).Text())
	}
	if got := doc.Find("#note-error").Text(); !strings.Contains(got, "The note is 5,000 characters long") {
		t.Errorf("a long note: %q", got)
	}
	if codes.created != 0 {
		t.Errorf("%d codes created from refused forms", codes.created)
	}
}

// In demo mode the new code's page names a demo account other than the code's creator that may
// approve the devices sent with it, so whoever tries the demo knows whom to sign in as; outside
// demo mode it names nobody.
func TestDemoCodePageNamesWhoApproves(t *testing.T) {
	approvers := []DemoAccount{{ObjectID: rigUser.ObjectID, Name: rigUser.Name}, {ObjectID: "d4a6f5e7-8c91-42a3-bdc4-e5f607182934", Name: "Isaiah Langer"}}
	for _, demo := range []bool{true, false} {
		var r *rig
		r = newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
			h := &Registration{Store: &fakeCodes{}, Demo: demo, Now: func() time.Time { return r.clock.Now() }, Logger: discardLogger}
			if demo {
				h.DemoApprovers = approvers
			}
			user.GET("/registration/codes/new", h.NewCode)
			form("/registration/codes", "/registration/codes/new", h.CreateCode)
		}).signIn("")
		_, doc := r.get("/registration/codes/new")
		form := testkit.FormValues(t, doc, `form[action="/registration/codes"]`)
		form.Set("hours", "4")
		form.Set("uses", "1")
		resp, doc := r.post("/registration/codes", form)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("demo %v: creating a code answered %d", demo, resp.StatusCode)
		}
		hint := doc.Find(`[data-testid="demo-device"]`)
		switch {
		case demo && (!strings.Contains(hint.Text(), "Isaiah Langer") || strings.Contains(hint.Text(), rigUser.Name)):
			t.Errorf("the demo's hint does not name another account that approves: %q", hint.Text())
		case !demo && hint.Length() != 0:
			t.Errorf("outside demo mode the page offers the demo's device: %q", hint.Text())
		}
	}
}
