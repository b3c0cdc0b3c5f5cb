package identity

import (
	"strings"
	"testing"
)

func TestCallbackErrorExplain(t *testing.T) {
	for _, tc := range []struct {
		code, description string
		wantAADSTS        string
		want              []string // phrases the explanation must contain
	}{
		{"invalid_client", "AADSTS65001: The user or administrator has not consented to use the application.\r\nTrace ID: 1",
			"AADSTS65001", []string{"consent", "Global Administrator", "Privileged Role Administrator", "Cloud Application Administrator", "API permissions", "Grant admin consent"}},
		{"access_denied", "AADSTS50105: Your administrator has configured the application to block users unless they are assigned.",
			"AADSTS50105", []string{"not assigned", "Enterprise applications", "Users and groups"}},
		{"access_denied", "", "", []string{"cancelled"}},
		{"invalid_request", "AADSTS50020: User account from identity provider 'live.com' does not exist in tenant.", "AADSTS50020", []string{"personal", "work account"}},
		{"invalid_client", "AADSTS7000215: Invalid client secret provided.", "AADSTS7000215", []string{"client secret"}},
		{"invalid_request", "AADSTS700016: Application with identifier 'x' was not found.", "AADSTS700016", []string{"AUTOPILOTDESK_CLIENT_ID"}},
		{"invalid_request", "AADSTS50011: The redirect URI does not match.", "AADSTS50011", []string{"/auth/callback"}},
		{"server_error", "AADSTS99999: <script>alert(1)</script> call +1 555 0100", "AADSTS99999", []string{"AADSTS99999", "Try again"}},
	} {
		e := newCallbackError(tc.code, tc.description)
		if e.AADSTS != tc.wantAADSTS {
			t.Errorf("%s: AADSTS = %q, want %q", tc.description, e.AADSTS, tc.wantAADSTS)
		}
		title, what, next := e.Explain()
		all := title + " " + what + " " + next
		for _, phrase := range tc.want {
			if !strings.Contains(all, phrase) {
				t.Errorf("%s %s: explanation lacks %q: %s", tc.code, tc.wantAADSTS, phrase, all)
			}
		}
		if strings.Contains(all, "<script>") || strings.Contains(all, "555") {
			t.Errorf("the provider's free text reached the explanation: %s", all)
		}
		if !strings.Contains(e.Error(), tc.code) {
			t.Errorf("Error() = %q", e.Error())
		}
	}
}
