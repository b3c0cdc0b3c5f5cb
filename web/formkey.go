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

// formKeyMAC is HMAC-SHA256 keyed with the session id, cut to 18 bytes. It is computed in
// buffers on the stack (a form is rendered with every page view): the same MAC crypto/hmac
// gives, without its allocations.
func formKeyMAC(sessionID, body string) string {
	const prefix = "autopilotdesk form key\x00"
	var buf [256]byte
	if len(prefix)+len(sessionID) > len(buf)-sha256.BlockSize || len(body) > len(buf)-sha256.BlockSize {
		m := hmac.New(sha256.New, []byte(prefix+sessionID)) // never with the desk's own ids and keys
		m.Write([]byte(body))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
	}
	var key [sha256.BlockSize]byte
	if n := copy(buf[:], prefix) + copy(buf[len(prefix):], sessionID); n > sha256.BlockSize {
		sum := sha256.Sum256(buf[:n])
		copy(key[:], sum[:])
	} else {
		copy(key[:], buf[:n])
	}
	for i, k := range key {
		buf[i] = k ^ 0x36
	}
	inner := sha256.Sum256(buf[:sha256.BlockSize+copy(buf[sha256.BlockSize:], body)])
	for i, k := range key {
		buf[i] = k ^ 0x5c
	}
	outer := sha256.Sum256(buf[:sha256.BlockSize+copy(buf[sha256.BlockSize:], inner[:])])
	var out [24]byte
	base64.RawURLEncoding.Encode(out[:], outer[:18])
	return string(out[:])
}
