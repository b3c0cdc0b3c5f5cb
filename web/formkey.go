package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// NewFormKey returns a one-time key for a form rendered in this session: random, dated, and
// signed with the session id (which never reaches a page). The desk can then refuse a key it did
// not hand out, or an old one, without storing keys when forms are shown; the key is recorded
// only when a submission claims it.
func NewFormKey(c echo.Context, now time.Time) string {
	body := rand.Text() + "." + strconv.FormatInt(now.Unix(), 36)
	return body + "." + formKeyMAC(Session(c).ID, body)
}

// ValidFormKey reports whether key was handed out in this session within maxAge.
func ValidFormKey(c echo.Context, key string, now time.Time, maxAge time.Duration) bool {
	sess := Session(c)
	if sess == nil || sess.ID == "" || len(key) > 128 {
		return false
	}
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return false
	}
	body, mac := key[:i], key[i+1:]
	if !hmac.Equal([]byte(mac), []byte(formKeyMAC(sess.ID, body))) {
		return false
	}
	_, issued, ok := strings.Cut(body, ".")
	secs, err := strconv.ParseInt(issued, 36, 64)
	if !ok || err != nil {
		return false
	}
	age := now.Sub(time.Unix(secs, 0))
	return age >= -time.Minute && age <= maxAge
}

func formKeyMAC(sessionID, body string) string {
	m := hmac.New(sha256.New, []byte("autopilotdesk form key\x00"+sessionID))
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}
