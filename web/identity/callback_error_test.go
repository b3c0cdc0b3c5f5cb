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

// Microsoft Entra's correlation id, trace id and time are read from the description (or the
// token endpoint's JSON) in their exact forms only, for the page and the log.
func TestCallbackErrorReadsEntrasIDs(t *testing.T) {
	e := newCallbackError("access_denied", "AADSTS53003: Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.\r\n"+
		"Trace ID: 0B5E2C4D-1111-4a2b-9c3d-7e8f9a0b1c2d\r\nCorrelation ID: 5d1e7c2a-2222-4b3c-8d4e-9f0a1b2c3d4e\r\nTimestamp: 2026-11-30 19:55:02Z")
	if e.AADSTS != "AADSTS53003" || e.TraceID != "0b5e2c4d-1111-4a2b-9c3d-7e8f9a0b1c2d" || e.CorrelationID != "5d1e7c2a-2222-4b3c-8d4e-9f0a1b2c3d4e" || e.Timestamp != "2026-11-30 19:55:02Z" {
		t.Errorf("read %+v", e)
	}
	if !strings.Contains(e.Error(), "correlation id 5d1e7c2a-2222-4b3c-8d4e-9f0a1b2c3d4e") || !strings.Contains(e.Error(), "trace id 0b5e2c4d") {
		t.Errorf("Error() = %q", e.Error())
	}
	hostile := newCallbackError("access_denied", "Trace ID: <script>x</script>\r\nCorrelation ID: "+strings.Repeat("a", 5000))
	if hostile.TraceID != "" || hostile.CorrelationID != "" {
		t.Errorf("ids read from hostile text: %+v", hostile)
	}
	redeem := newCallbackError("invalid_grant", "AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication.")
	redeem.readTokenErrorIDs([]byte(`{"error":"invalid_grant","trace_id":"0b5e2c4d-1111-4a2b-9c3d-7e8f9a0b1c2d","correlation_id":"not a guid","timestamp":"2026-11-30 19:55:02Z"}`))
	if redeem.TraceID != "0b5e2c4d-1111-4a2b-9c3d-7e8f9a0b1c2d" || redeem.CorrelationID != "" || redeem.Timestamp != "2026-11-30 19:55:02Z" {
		t.Errorf("token endpoint's ids: %+v", redeem)
	}
}
