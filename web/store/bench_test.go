package store

import (
	"context"
	"encoding/gob"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// benchTokens stands for the tokens the desk keeps in a session, at realistic sizes.
type benchTokens struct {
	AccessToken, RefreshToken, IDToken, TokenType string
	Expiry                                        time.Time
}

func init() { gob.Register(benchTokens{}) }

const benchSessions = 10_000

// BenchmarkSessionLoadSave loads and saves random sessions among 10,000 stored on SQLite, as one
// signed-in request does; it reports the p99 of one load+save.
func BenchmarkSessionLoadSave(b *testing.B) {
	db, err := Open(context.Background(), Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st := db.SessionStore(SessionOptions{CookieName: cookieName})
	text := func(n int) string {
		s := make([]byte, n)
		for i := range s {
			s[i] = 'a' + byte(rand.IntN(26))
		}
		return string(s)
	}
	tokens := benchTokens{AccessToken: text(1800), RefreshToken: text(900), IDToken: text(1200), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	ids := make([]string, benchSessions)
	for i := range ids {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		s, err := st.New(r, cookieName)
		if err != nil {
			b.Fatal(err)
		}
		s.Values["tokens"], s.Values["csrf"] = tokens, text(43)
		st.SetUserKey(s, fmt.Sprintf("tenant:user-%05d", i))
		if err := st.Save(r, httptest.NewRecorder(), s); err != nil {
			b.Fatal(err)
		}
		ids[i] = s.ID
	}
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(cookieFor(ids[rand.IntN(len(ids))]))
		w := httptest.NewRecorder()
		t0 := time.Now()
		s, err := st.New(r, cookieName)
		if err != nil || s.IsNew {
			b.Fatalf("load: err=%v new=%v", err, s.IsNew)
		}
		s.Values["csrf"] = "rotated"
		if err := st.Save(r, w, s); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Nanoseconds()), "p99-ns/op")
}

// BenchmarkCreateWrites is what a create writes on its request's path: the form key's claim
// before Graph is called, then the activity and the key's completion in one transaction.
func BenchmarkCreateWrites(b *testing.B) {
	db, err := Open(context.Background(), Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	detail := []byte(`{"upload":{"id":"` + strings.Repeat("d", 2100) + `"}}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		key := fmt.Sprintf("form-key-%09d", i)
		if ok, _, _, err := db.ClaimFormKey(ctx, key, "session", time.Hour); !ok || err != nil {
			b.Fatal(ok, err)
		}
		a := &Activity{TenantID: "tenant", ObjectID: "object", ActorName: "Megan Bowen", ActorUPN: "megan@contoso.example",
			Action: "create-upload", Target: "8d639524-9524-8d63-2495-638d2495638d", Outcome: "success",
			Summary: "Created upload 8d639524-9524-8d63-2495-638d2495638d with status pending.", StatusCode: 201,
			RequestID: "request-id", ClientRequestID: "client-request-id", Detail: detail}
		if err := db.RecordSubmission(ctx, a, key); err != nil {
			b.Fatal(err)
		}
	}
}

// largeTenant is a state database whose tenant t1 has 100,000 records: one in ten a device change
// (naming one of 5,000 serials), one in a thousand a failure, the rest successful creates.
func largeTenant(b *testing.B) *DB {
	db, err := Open(context.Background(), Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	ctx := context.Background()
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100000 {
		serial, target, outcome := "", fmt.Sprintf("upload-%06d", i), "success"
		if i%10 == 0 {
			serial, target = fmt.Sprintf("SN%05d", i%5000), fmt.Sprintf("device-%05d", i%5000)
		}
		if i%1000 == 7 {
			outcome = "failure"
		}
		a := &Activity{TenantID: "t1", ObjectID: "o", Action: "create-upload", Target: target, Serial: serial, Outcome: outcome, Detail: []byte(`{"upload":{}}`)}
		args, _ := db.activityRow(a)
		if _, err := tx.ExecContext(ctx, insertActivity, args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkDeviceHistory reads one device's history in a tenant with 100,000 records.
func BenchmarkDeviceHistory(b *testing.B) {
	db := largeTenant(b)
	for i := 0; b.Loop(); i++ {
		h, err := db.HistoryOfSerial(context.Background(), "t1", fmt.Sprintf("SN%05d", (i*10)%5000), 50)
		if err != nil || len(h.Activity) == 0 {
			b.Fatal(err, h)
		}
	}
}

// BenchmarkActivityFailures reads the first page of the activity page filtered to failures, in a
// tenant with 100,000 records of which 100 are failures.
func BenchmarkActivityFailures(b *testing.B) {
	db := largeTenant(b)
	for b.Loop() {
		page, _, err := db.ListActivity(context.Background(), ActivityFilter{TenantID: "t1", Outcome: "failure", Limit: 50})
		if err != nil || len(page) != 50 {
			b.Fatal(err, len(page))
		}
	}
}
