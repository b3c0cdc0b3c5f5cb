package identity

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// ClockSkewError is an ID token refused for its times alone: it had expired, or was not valid yet,
// by this server's clock as soon as it arrived. The provider issued it just now, so it is this
// server's clock (or the provider's) that is off.
type ClockSkewError struct {
	Issued time.Time // when the token says it was issued, by the provider's clock
	Now    time.Time // this server's time when it arrived
	Err    error     // the verifier's refusal
}

func (e *ClockSkewError) Error() string {
	return fmt.Sprintf("identity: the ID token issued at %s does not fit this server's clock (%s, %s apart): %v",
		e.Issued.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339), e.Apart(), e.Err)
}

func (e *ClockSkewError) Unwrap() error { return e.Err }

// Apart is how far the two clocks are apart, rounded to the minute (to the second under one).
func (e *ClockSkewError) Apart() time.Duration {
	d := e.Now.Sub(e.Issued).Abs()
	if d < time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}

// clockSkew says whether the verifier refused raw for its times alone; nil otherwise. The time
// it was issued is read from raw without trusting it: it only says how far apart the clocks are.
func clockSkew(raw string, now time.Time, err error) *ClockSkewError {
	var expired *oidc.TokenExpiredError
	if !errors.As(err, &expired) && !strings.Contains(err.Error(), "before the nbf") {
		return nil
	}
	var claims struct {
		IssuedAt  int64 `json:"iat"`
		NotBefore int64 `json:"nbf"`
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, derr := base64.RawURLEncoding.DecodeString(parts[1])
	if derr != nil || json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	issued := claims.IssuedAt
	if issued == 0 {
		issued = claims.NotBefore
	}
	if issued == 0 {
		return nil
	}
	return &ClockSkewError{Issued: time.Unix(issued, 0), Now: now, Err: err}
}
