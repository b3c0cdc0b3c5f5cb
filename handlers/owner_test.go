package handlers

import "testing"

// A job's page names its owner by name and UPN, by UPN alone, or by their part in the job when
// the job keeps no UPN.
func TestOwnerOf(t *testing.T) {
	for _, tc := range []struct{ name, upn, want string }{
		{"Adele Vance", "adele@contoso.com", "Adele Vance (adele@contoso.com)"},
		{"", "adele@contoso.com", "adele@contoso.com"},
		{"Adele Vance", "", "the person who uploaded it"},
		{"", "", "the person who uploaded it"},
	} {
		if got := ownerOf(tc.name, tc.upn, "the person who uploaded it"); got != tc.want {
			t.Errorf("ownerOf(%q, %q) = %q, want %q", tc.name, tc.upn, got, tc.want)
		}
	}
}
