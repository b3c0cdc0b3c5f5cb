package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
)

func contextWithSession(id string) echo.Context {
	c := echo.New().NewContext(httptest.NewRequest("GET", "/", nil), httptest.NewRecorder())
	s := sessions.NewSession(nil, SessionCookieName)
	s.ID = id
	state(c).session = s
	return c
}

func TestFormKeys(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	mine, other := contextWithSession("session-one"), contextWithSession("session-two")
	key := NewFormKey(mine, now)
	if key == NewFormKey(mine, now) {
		t.Fatal("two forms got the same key")
	}
	if !ValidFormKey(mine, key, now.Add(time.Hour), 2*time.Hour) {
		t.Error("a fresh key of this session refused")
	}
	if ValidFormKey(other, key, now, 2*time.Hour) {
		t.Error("another session's key accepted")
	}
	if ValidFormKey(mine, key, now.Add(3*time.Hour), 2*time.Hour) {
		t.Error("an expired key accepted")
	}
	parts := strings.Split(key, ".")
	for _, forged := range []string{"", "x", "a.b.c", parts[0] + "." + "zzzzzz" + "." + parts[2], key + "x", strings.Repeat("a", 200)} {
		if ValidFormKey(mine, forged, now, 2*time.Hour) {
			t.Errorf("forged key %q accepted", forged)
		}
	}
	if ValidFormKey(contextWithSession(""), key, now, 2*time.Hour) {
		t.Error("a key accepted without a session")
	}
}

// The form key's MAC is HMAC-SHA256 as crypto/hmac computes it, for session ids short and long.
func TestFormKeyMACIsHMAC(t *testing.T) {
	for _, id := range []string{"", "short", strings.Repeat("s", 41), strings.Repeat("x", 42), strings.Repeat("long", 40), strings.Repeat("y", 300)} {
		m := hmac.New(sha256.New, []byte("autopilotdesk form key\x00"+id))
		m.Write([]byte("body.123"))
		want := base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
		if got := formKeyMAC(id, "body.123"); got != want {
			t.Errorf("session id of %d bytes: %s, want %s", len(id), got, want)
		}
	}
}
