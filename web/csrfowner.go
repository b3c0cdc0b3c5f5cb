package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// A session's CSRF token names, besides its random part, whose session it was: the token is
// "random.tag", where the tag is a hash of the random part and the person's key (tenant and
// object id). A form whose token is stale (its session ended, or the person signed in again in
// another tab) can so be told apart: the person now signed in gets back what they typed into
// their own form, and never what someone else typed into theirs. The tag proves nothing beyond
// that: a browser that forges one gets back only the values it sent itself.

// newCSRFToken is a fresh token for a session of the person with key userKey.
func newCSRFToken(userKey string) string {
	random := rand.Text()
	return random + "." + csrfOwnerTag(random, userKey)
}

func csrfOwnerTag(random, userKey string) string {
	sum := sha256.Sum256([]byte("autopilotdesk form owner\x00" + random + "\x00" + userKey))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// csrfOwnedBy reports whether token was handed out in a session of the person with key userKey.
func csrfOwnedBy(token, userKey string) bool {
	random, tag, ok := strings.Cut(token, ".")
	if !ok || len(token) > 128 || random == "" || userKey == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(tag), []byte(csrfOwnerTag(random, userKey))) == 1
}
