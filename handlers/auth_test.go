package handlers

import (
	"strings"
	"testing"

	"autopilotdesk/web/identity"
)

// A sign-in the provider refused is explained by its AADSTS code, naming the settings and the
// address whoever runs the desk must check as this desk has them, never with the provider's own
// free text.
func TestRefusedSignInIsExplained(t *testing.T) {
	h := &Auth{PublicURL: "https://desk.contoso.example",
		Settings: SettingNames{TenantID: "DESK_TENANT", ClientID: "DESK_CLIENT", ClientSecret: "DESK_SECRET"}}
	for _, tc := range []struct {
		code, aadsts string
		want         []string // phrases the explanation must contain
	}{
		{"invalid_client", "AADSTS65001", []string{"consent", "Global Administrator", "Privileged Role Administrator", "Cloud Application Administrator", "API permissions", "Grant admin consent"}},
		{"access_denied", "AADSTS50105", []string{"not assigned", "Enterprise applications", "Users and groups"}},
		{"access_denied", "AADSTS65004", []string{"cancelled"}},
		{"access_denied", "", []string{"cancelled"}},
		{"invalid_request", "AADSTS50020", []string{"personal", "work account"}},
		{"invalid_client", "AADSTS7000215", []string{"client secret", "update DESK_SECRET."}},
		{"invalid_request", "AADSTS700016", []string{"check that DESK_CLIENT and DESK_TENANT match"}},
		{"invalid_request", "AADSTS50011", []string{"add https://desk.contoso.example/auth/callback under"}},
		{"server_error", "AADSTS99999", []string{"AADSTS99999", "Try again"}},
		{"server_error\n<script>alert(1)</script>", "", []string{"server_error."}},
	} {
		title, what, next := h.explainRefusal(&identity.CallbackError{Code: tc.code, AADSTS: tc.aadsts,
			Description: tc.aadsts + ": <script>alert(1)</script> call +1 555 0100"})
		all := title + " " + what + " " + next
		for _, phrase := range tc.want {
			if !strings.Contains(all, phrase) {
				t.Errorf("%s %s: explanation lacks %q: %s", tc.code, tc.aadsts, phrase, all)
			}
		}
		if strings.Contains(all, "<script>") || strings.Contains(all, "555") {
			t.Errorf("the provider's free text reached the explanation: %s", all)
		}
	}
}
