package emulator_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

const (
	groupHelpDesk  = "3c1f7a92-6d4b-4e8a-b0c5-7f2e9d1a4b6c"
	groupEngineers = "8a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	groupOther     = "11111111-2222-4333-8444-555555555555"
)

func TestCheckMemberGroups(t *testing.T) {
	f := newFixture(t, nil)
	const path = "/v1.0/me/checkMemberGroups"
	r := f.do(req{method: http.MethodPost, path: path, token: "nobody",
		body: `{"groupIds":["` + groupOther + `","` + groupEngineers + `","` + groupHelpDesk + `"]}`})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	var got []string
	for _, v := range r.body["value"].([]any) {
		got = append(got, v.(string))
	}
	if !slices.Equal(got, []string{groupEngineers, groupHelpDesk}) {
		t.Errorf("member of %v", got)
	}
	// Without User.Read (or a broader directory permission) Graph refuses.
	f.wantError(f.do(req{method: http.MethodPost, path: path, token: "admin", body: `{"groupIds":["` + groupHelpDesk + `"]}`}),
		http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges")
	many := `{"groupIds":["` + strings.TrimSuffix(strings.Repeat(groupOther+`","`, 21), `","`) + `"]}`
	f.wantError(f.do(req{method: http.MethodPost, path: path, token: "nobody", body: many}), http.StatusBadRequest, "Request_BadRequest", "at most 20")
	f.wantError(f.do(req{method: http.MethodPost, path: path, token: "nobody", body: `{"groupIds":["helpdesk"]}`}),
		http.StatusBadRequest, "Request_BadRequest", "Invalid GUID")
	f.wantError(f.do(req{method: http.MethodPost, path: path, token: "nobody", body: `{}`}), http.StatusBadRequest, "Request_BadRequest", "groupIds")
}
