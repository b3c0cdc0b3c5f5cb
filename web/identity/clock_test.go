package identity

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

func TestClockSkewIsOnlyATimeRefusal(t *testing.T) {
	issued := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	raw := "e30." + base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"iat":%d,"nbf":%d}`, issued.Unix(), issued.Unix())) + ".sig"
	now := issued.Add(-2*time.Hour - 20*time.Second) // rounded to the minute: 2 hours
	nbf := fmt.Errorf("oidc: current time %v before the nbf (not before) time: %v", now, issued)
	for _, tc := range []struct {
		name  string
		raw   string
		err   error
		apart time.Duration // 0: not a clock refusal
	}{
		{"not valid yet", raw, nbf, 2 * time.Hour},
		{"expired", raw, &oidc.TokenExpiredError{Expiry: issued.Add(time.Hour)}, 2 * time.Hour},
		{"a bad signature", raw, errors.New("oidc: failed to verify signature"), 0},
		{"no times in the token", "e30.e30.sig", nbf, 0},
		{"not a token", "garbage", nbf, 0},
	} {
		skew := clockSkew(tc.raw, now, tc.err)
		switch {
		case tc.apart == 0 && skew != nil:
			t.Errorf("%s: %v, want no clock refusal", tc.name, skew)
		case tc.apart != 0 && (skew == nil || skew.Apart() != tc.apart || !skew.Issued.Equal(issued) || !errors.Is(skew, tc.err)):
			t.Errorf("%s: %+v, want %s apart", tc.name, skew, tc.apart)
		}
	}
}
