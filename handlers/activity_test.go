package handlers

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/labstack/echo/v4"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/web/store"
)

func (f *fakeActivity) ListActivity(_ context.Context, flt store.ActivityFilter) ([]store.Activity, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Activity
	for _, a := range slices.Backward(f.taken) {
		if a.TenantID == flt.TenantID && (flt.Outcome == "" || a.Outcome == flt.Outcome) {
			out = append(out, a)
		}
	}
	return out, "", nil
}

func (f *fakeActivity) UpdateActivity(_ context.Context, a *store.Activity, from string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.taken {
		if f.taken[i].ID == a.ID {
			if f.taken[i].Outcome != from {
				return store.ErrConflict
			}
			f.taken[i] = *a
		}
	}
	return nil
}

// newHistoryRig serves the upload pages and the team history over one fake history.
func newHistoryRig(t *testing.T) *uploadsRig {
	u := &uploadsRig{graph: &fakeUploads{}, activity: &fakeActivity{}, tokens: &fakeTokens{}}
	u.rig = newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		h := &Uploads{Graph: u.graph, Tokens: u.tokens, Activity: u.activity, Keys: &fakeKeys{}, Now: time.Now, Recorded: u.activity}
		a := &Activity{History: u.activity, Recorded: u.activity, Tokens: u.tokens, Records: u.activity, Now: time.Now}
		user.GET("/uploads/:id", h.Show)
		form("/uploads/:id/status", "/uploads/:id", h.SetStatus)
		form("/uploads/:id/delete", "/uploads/:id/delete", h.Delete)
		user.GET("/activity", a.List)
		user.GET("/activity/:id", a.Show)
	}).signIn("")
	return u
}

// lostAnswer is the error of a change whose answer never came back: Graph's 504.
var lostAnswer = graphRefusal(http.StatusGatewayTimeout, graphclient.KindOutcomeUnknown)

// A change whose answer was lost and whose outcome the desk then found leads with what it found
// (done or not done); Graph's 504 is a detail, not an alarm. The history's list says the answer
// was lost and the outcome found by looking, not a bare "success" beside 504.
func TestSettledLostAnswerLeadsWithWhatWasFound(t *testing.T) {
	cases := []struct {
		name, path string
		form       url.Values
		fail       []error
		outcome    string
		found      string
		tryAgain   string
	}{
		{"status changed", "/uploads/" + uploadID + "/status", url.Values{"status": {"pending"}}, []error{lostAnswer}, "success",
			"its status is “Pending”, so the change was made", ""},
		{"status not changed", "/uploads/" + uploadID + "/status", url.Values{"status": {"complete"}}, []error{lostAnswer}, "failure",
			"its status is still “Pending”, so the change was not made", "button[form=send-again]"},
		{"deleted", "/uploads/" + uploadID + "/delete", nil, []error{lostAnswer, graphRefusal(http.StatusNotFound, graphclient.KindNotFound)}, "success",
			"it is gone: it was deleted", ""},
		{"not deleted", "/uploads/" + uploadID + "/delete", nil, []error{lostAnswer}, "failure",
			"it is still there: it was not deleted", `a[href="/uploads/` + uploadID + `/delete"]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newHistoryRig(t)
			u.graph.fail = c.fail
			resp, _ := u.post(c.path, c.form)
			record := redirected(t, resp, "/activity/")
			_, doc := u.get(record)
			if got := u.activity.recorded()[0].Outcome; got != c.outcome {
				t.Fatalf("outcome %s, want %s", got, c.outcome)
			}
			if doc.Find(`[role="alert"]`).Length() != 0 || strings.Contains(doc.Text(), "Graph did not say whether it worked") {
				t.Errorf("a settled record still alarms: %s", doc.Find(`[role="alert"]`).Text())
			}
			found := doc.Find(`[data-testid="found"]`).Text()
			if !strings.Contains(found, c.found) || !strings.Contains(found, "answer to the request was lost (HTTP 504)") {
				t.Errorf("what the desk found: %q", found)
			}
			if c.tryAgain != "" && doc.Find(`[data-testid="found"] [data-testid="try-again"]`).Filter(c.tryAgain).Length() != 1 {
				t.Errorf("a change found not made offers no Try again (%s)", c.tryAgain)
			}
			if c.tryAgain == "" && doc.Find(`[data-testid="try-again"]`).Length() != 0 {
				t.Error("a change found made offers to send it again")
			}
			_, list := u.get("/activity")
			if http := list.Find(`[data-testid="activity"] tbody tr td`).Last().Text(); !strings.Contains(http, "504") ||
				!strings.Contains(http, "answer lost") || !strings.Contains(http, "found by looking") {
				t.Errorf("the list's HTTP column says %q", http)
			}
		})
	}
}

// A change of an upload refused in passing (507) offers Try again with the status chosen; a
// delete offers to confirm it again. Both records lead back to the upload.
func TestFailedUploadChangeOffersTryAgain(t *testing.T) {
	u := newHistoryRig(t)
	u.graph.fail = []error{graphRefusal(507, graphclient.KindServer)}
	resp, _ := u.post("/uploads/"+uploadID+"/status", url.Values{"status": {"complete"}})
	_, doc := u.get(redirected(t, resp, "/activity/"))
	retry := doc.Find(`[data-testid="failure"] button[data-testid="try-again"]`)
	form := doc.Find(`form#` + retry.AttrOr("form", "none"))
	if retry.Length() != 1 || form.AttrOr("action", "") != "/uploads/"+uploadID+"/status" || form.Find(`input[name="status"]`).AttrOr("value", "") != "complete" {
		t.Fatalf("no Try again with the status chosen: %s", doc.Find(`[data-testid="failure"]`).Text())
	}
	if first := doc.Find(`[data-testid="onward"]`).First().AttrOr("href", ""); first != "/uploads/"+uploadID {
		t.Errorf("the failed change leads to %s", first)
	}
	values := url.Values{}
	form.Find("input").Each(func(_ int, in *goquery.Selection) { values.Set(in.AttrOr("name", ""), in.AttrOr("value", "")) })
	if resp, _ := u.post(form.AttrOr("action", ""), values); resp.StatusCode != http.StatusSeeOther || !slices.Equal(u.graph.sent(), []string{"status " + uploadID + " complete", "status " + uploadID + " complete"}) {
		t.Errorf("Try again answered %d and sent %v", resp.StatusCode, u.graph.sent())
	}

	u.graph.fail = []error{graphRefusal(507, graphclient.KindServer)}
	resp, _ = u.post("/uploads/"+uploadID+"/delete", nil)
	_, doc = u.get(redirected(t, resp, "/activity/"))
	if href := doc.Find(`[data-testid="failure"] a[data-testid="try-again"]`).AttrOr("href", ""); href != "/uploads/"+uploadID+"/delete" {
		t.Errorf("a failed delete's Try again leads to %q", href)
	}
	if first := doc.Find(`[data-testid="onward"]`).First().AttrOr("href", ""); first != "/uploads/"+uploadID {
		t.Errorf("the failed delete leads to %s", first)
	}
}

// Another person's record names them: a create found not made was Adele's request, and Megan is
// not offered to send it again in her place; her own such record offers it.
func TestAnotherPersonsRecordNamesThem(t *testing.T) {
	u := newHistoryRig(t)
	sent := graphclient.NewUpload{Status: "pending", CreatedDateTimeUtc: "2026-11-28T12:00:00Z"}
	f := explain.Of(lostAnswer, time.Now())
	d := activityDetail{Exchange: &graphclient.Exchange{Reconciliation: &graphclient.Reconciliation{Looked: true}}, Failure: &f, Sent: &sent,
		Support: graphclient.SupportDetails{Status: 504}}
	adele := store.Activity{TenantID: rigUser.TenantID, ObjectID: "33333333-3333-4333-8333-333333333333", ActorName: "Adele Vance", ActorUPN: "adelev@contoso.example",
		Action: "create-upload", Outcome: outcomeFailure, StatusCode: 504, Summary: "The upload was not created.", Detail: encodeDetail(d)}
	mine := adele
	mine.ObjectID, mine.ActorName, mine.ActorUPN = rigUser.ObjectID, rigUser.Name, rigUser.UPN
	u.activity.Record(context.Background(), &adele, "")
	u.activity.Record(context.Background(), &mine, "")

	_, doc := u.get("/activity/" + adele.ID)
	if got := doc.Find(`[data-testid="reconciliation"]`).Text(); !strings.Contains(got, "what Adele Vance sent") || strings.Contains(got, "you sent") ||
		!strings.Contains(got, "ask them before sending it yourself") {
		t.Errorf("another's record: %q", got)
	}
	if doc.Find(`[data-testid="try-again"]`).Length() != 0 {
		t.Error("another person's create is offered to be sent again")
	}
	_, doc = u.get("/activity/" + mine.ID)
	if got := doc.Find(`[data-testid="reconciliation"]`).Text(); !strings.Contains(got, "what you sent") || doc.Find(`[data-testid="try-again"]`).Length() != 1 {
		t.Errorf("one's own record: %q", got)
	}
}

// pagedHistory answers every page with the same two entries and a cursor, and keeps the filters
// it was asked.
type pagedHistory struct{ asked []store.ActivityFilter }

func (p *pagedHistory) ListActivity(_ context.Context, f store.ActivityFilter) ([]store.Activity, string, error) {
	p.asked = append(p.asked, f)
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	return []store.Activity{
		{ID: "0199a000-0000-7000-8000-000000000002", At: at.Add(time.Second), Action: "sync", Outcome: "success"},
		{ID: "0199a000-0000-7000-8000-000000000001", At: at, Action: "sync", Outcome: "success"},
	}, "next-cursor", nil
}

// The person filter takes the start of a name or UPN; an older page leads both ways, keeping
// the filters.
func TestHistoryFindsPeopleAndPagesBothWays(t *testing.T) {
	hist := &pagedHistory{}
	r := newRig(t, func(user *echo.Group, _ func(string, string, echo.HandlerFunc)) {
		a := &Activity{History: hist, Now: time.Now}
		user.GET("/activity", a.List)
	}).signIn("")
	_, doc := r.get("/activity?person=+adele+")
	if got := hist.asked[0]; got.Person != "adele" || got.ActorUPN != "" {
		t.Errorf("the person filter asked %+v", got)
	}
	if doc.Find(`a[rel="prev"]`).Length() != 0 {
		t.Error("the newest page offers newer entries")
	}
	if title := doc.Find("title").Text(); strings.Contains(title, "a later page") {
		t.Errorf("the newest page is titled %q", title)
	}
	older := doc.Find(`a[rel="next"]`).AttrOr("href", "")
	if !strings.Contains(older, "before=next-cursor") || !strings.Contains(older, "person=adele") {
		t.Fatalf("older entries: %q", older)
	}
	_, doc = r.get(older)
	if title := doc.Find("title").Text(); !strings.Contains(title, "Team activity · a later page") {
		t.Errorf("an older page is titled %q", title)
	}
	newer := doc.Find(`a[rel="prev"]`).AttrOr("href", "")
	if !strings.Contains(newer, "after=") || strings.Contains(newer, "before=") || !strings.Contains(newer, "person=adele") {
		t.Fatalf("newer entries: %q", newer)
	}
	_, doc = r.get(newer)
	if got := hist.asked[2]; got.After == "" || got.Before != "" {
		t.Errorf("newer entries asked %+v", got)
	}
	if !strings.Contains(doc.Find(`a[rel="prev"]`).AttrOr("href", ""), "after=next-cursor") || !strings.Contains(doc.Find(`a[rel="next"]`).AttrOr("href", ""), "before=") {
		t.Errorf("a page of newer entries does not lead both ways: %s", doc.Find(`[data-testid="history-pages"]`).Text())
	}
	if label := doc.Find(`label[for="person"]`).Text(); strings.Contains(label, "UPN") && !strings.Contains(doc.Find(`#person`).AttrOr("placeholder", ""), "Name") {
		t.Errorf("the person field asks for a full UPN: %q", label)
	}
}
