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
		Settings: SettingNames{TenantID: "DESK_TENANT", ClientID: "DESK_CLIENT", ClientSecret: "DESK_SECRET", ClientCertificate: "DESK_CERT", PublicURL: "DESK_PUBLIC_URL"}}
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
		{"invalid_request", "AADSTS50011", []string{"add https://desk.contoso.example/auth/callback under", "or correct DESK_PUBLIC_URL"}},
		{"invalid_client", "AADSTS7000222", []string{"client secret", "update DESK_SECRET."}},
		{"invalid_request", "AADSTS90002", []string{"check that DESK_TENANT is your tenant id"}},
		{"invalid_client", "AADSTS700027", []string{"certificate", "upload the certificate in DESK_CERT"}},
		{"server_error", "AADSTS99999", []string{"AADSTS99999", "Try again"}},
		{"access_denied", "AADSTS53003", []string{"Conditional Access", "location", "compliance", "administrator", "Sign-in logs", "correlation ID"}},
		{"access_denied", "AADSTS53000", []string{"Conditional Access", "compliant", "administrator"}},
		{"access_denied", "AADSTS53001", []string{"Conditional Access", "domain", "administrator"}},
		{"interaction_required", "AADSTS50076", []string{"multi-factor authentication", "Sign in again"}},
		{"interaction_required", "AADSTS50079", []string{"set up multi-factor authentication"}},
		{"interaction_required", "", []string{"Sign in again"}},
		{"invalid_grant", "AADSTS50058", []string{"Sign in again", "AADSTS50058"}},
		{"invalid_request", "AADSTS90072", []string{"guest", "invite"}},
		{"temporarily_unavailable", "AADSTS90033", []string{"briefly unavailable", "Try again shortly", "AADSTS90033"}},
		{"temporarily_unavailable", "", []string{"Try again shortly", "temporarily_unavailable"}},
		{"server_error", "", []string{"with error server_error."}},
		{"server_error\n<script>alert(1)</script>", "", []string{"refused the sign-in."}},
		{"Your account is locked. Call the help desk at +1-555-0100", "", []string{"refused the sign-in."}},
	} {
		title, what, next := h.explainRefusal(&identity.CallbackError{Code: tc.code, AADSTS: tc.aadsts,
			Description: tc.aadsts + ": <script>alert(1)</script> call +1 555 0100"})
		all := title + " " + what + " " + next
		for _, phrase := range tc.want {
			if !strings.Contains(all, phrase) {
				t.Errorf("%s %s: explanation lacks %q: %s", tc.code, tc.aadsts, phrase, all)
			}
		}
		if tc.code == "access_denied" && tc.aadsts != "" && tc.aadsts != "AADSTS65004" && strings.Contains(all, "cancelled") {
			t.Errorf("%s %s: a refusal is called a cancelled sign-in: %s", tc.code, tc.aadsts, all)
		}
		if strings.Contains(all, "<script>") || strings.Contains(all, "555") || strings.Contains(all, "locked") {
			t.Errorf("the provider's free text reached the explanation: %s", all)
		}
	}
}

// The desk's own configuration is named for whoever runs it, on the redirect or at the token
// endpoint; the account's or the person's refusals name no setting.
func TestRefusalsOfTheDesksConfigurationNameTheSetting(t *testing.T) {
	h := &Auth{PublicURL: "https://desk.contoso.example",
		Settings: SettingNames{TenantID: "DESK_TENANT", ClientID: "DESK_CLIENT", ClientSecret: "DESK_SECRET", ClientCertificate: "DESK_CERT", PublicURL: "DESK_PUBLIC_URL"}}
	for _, tc := range []struct {
		e    identity.CallbackError
		want string
	}{
		{identity.CallbackError{Code: "invalid_client", AADSTS: "AADSTS7000215", Redeem: true}, "DESK_SECRET (or the file DESK_SECRET_FILE names)"},
		{identity.CallbackError{Code: "invalid_client", AADSTS: "AADSTS7000222", Redeem: true}, "DESK_SECRET (or the file DESK_SECRET_FILE names)"},
		{identity.CallbackError{Code: "unauthorized_client", AADSTS: "AADSTS700016"}, "check DESK_CLIENT and DESK_TENANT"},
		{identity.CallbackError{Code: "invalid_request", AADSTS: "AADSTS50011"}, "https://desk.contoso.example/auth/callback is not registered"},
		{identity.CallbackError{Code: "invalid_client", AADSTS: "AADSTS700027", Redeem: true}, "DESK_CERT"},
		{identity.CallbackError{Code: "invalid_client", Redeem: true}, "check DESK_CLIENT and DESK_SECRET"},
		{identity.CallbackError{Code: "access_denied", AADSTS: "AADSTS50105"}, ""},
		{identity.CallbackError{Code: "invalid_grant", AADSTS: "AADSTS70008", Redeem: true}, ""},
		{identity.CallbackError{Code: "access_denied", AADSTS: "AADSTS65004"}, ""},
	} {
		got := h.settingToFix(&tc.e)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s %s: %q, want it to say %q", tc.e.Code, tc.e.AADSTS, got, tc.want)
		}
	}
}
