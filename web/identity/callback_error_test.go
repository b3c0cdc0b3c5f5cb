package identity

import (
	"strings"
	"testing"
)

// The provider's error is read into its parts: the OAuth code and Microsoft Entra's AADSTS code
// from the description (what a person reads of it is the sign-in page's, in handlers).
func TestCallbackErrorReadsTheAADSTSCode(t *testing.T) {
	for _, tc := range []struct{ code, description, wantAADSTS string }{
		{"invalid_client", "AADSTS65001: The user or administrator has not consented to use the application.\r\nTrace ID: 1", "AADSTS65001"},
		{"access_denied", "", ""},
		{"server_error", "AADSTS99999: <script>alert(1)</script> call +1 555 0100", "AADSTS99999"},
	} {
		e := newCallbackError(tc.code, tc.description)
		if e.AADSTS != tc.wantAADSTS {
			t.Errorf("%s: AADSTS = %q, want %q", tc.description, e.AADSTS, tc.wantAADSTS)
		}
		if !strings.Contains(e.Error(), tc.code) || tc.wantAADSTS != "" && !strings.Contains(e.Error(), tc.wantAADSTS) {
			t.Errorf("Error() = %q", e.Error())
		}
	}
}
