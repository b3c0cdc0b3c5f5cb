package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

// sqliteFilesHolding lists the SQLite files (the database, its -wal and -shm) in which any of
// secrets can be read.
func sqliteFilesHolding(t *testing.T, dir string, secrets []string) []string {
	t.Helper()
	var found []string
	for _, name := range []string{"autopilotdesk.db", "autopilotdesk.db-wal", "autopilotdesk.db-shm"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				found = append(found, name)
				break
			}
		}
	}
	return found
}

// After sign-out, and after a session expires, the person's tokens can no longer be read in the
// SQLite files: deleted rows are overwritten and the write-ahead log that held them is emptied.
func TestTokensLeaveTheDiskAtSignOutAndExpiry(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, nil, appOptions{Now: clk.Now})
	dir := d.app.cfg.DataDir

	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	first := d.idp.IssuedTokens()
	d.idp.ExpireAccessTokens()
	_, doc := d.get(b, "/") // a renewal: the tokens it replaced must go as well
	tokens := append(d.idp.IssuedTokens(), first...)
	if len(tokens) < 2 || len(sqliteFilesHolding(t, dir, tokens)) == 0 {
		t.Fatalf("the test cannot see the tokens in the database files to begin with (%d tokens)", len(tokens))
	}
	_, doc = d.get(b, "/")
	csrf := doc.Find(`form[action="/auth/signout"] input[name="_csrf"]`).AttrOr("value", "")
	if resp, _ := d.post(b, "/auth/signout", url.Values{"_csrf": {csrf}}); !strings.Contains(resp.Request.URL.Path, "signed-out") {
		t.Fatalf("sign-out landed on %s", resp.Request.URL)
	}
	if files := sqliteFilesHolding(t, dir, tokens); len(files) > 0 {
		t.Errorf("a token is still readable after sign-out in %v", files)
	}

	// A session that expires.
	other := d.browser()
	parse(t, d.signIn(other, "reader", "/"))
	tokens = d.idp.IssuedTokens()
	clk.Advance(16 * time.Minute)
	if n, err := d.app.db.SweepExpired(t.Context(), d.app.cfg.IdleTimeout); err != nil || n == 0 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if files := sqliteFilesHolding(t, dir, tokens); len(files) > 0 {
		t.Errorf("a token is still readable after the session expired in %v", files)
	}
}
