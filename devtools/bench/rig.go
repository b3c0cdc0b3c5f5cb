package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"autopilotdesk/devtools/deskrun"
	"autopilotdesk/devtools/testkit"
	"autopilotdesk/web/identity/demoidp"
)

// rig is the desk under load, a process of its own as in production, signed in through an
// identity provider and calling a Graph emulator served by another process of the bench's.
type rig struct {
	desk   *deskrun.Desk
	pair   *demoServer
	cookie string // the signed-in session's Cookie header
	csrf   string
	client *http.Client

	admin      string   // the desk's admin address, when it profiles
	profileOut string   // --desk-cpuprofile
	profiles   []string // profiles taken so far, to merge
}

// startRig serves the identity provider and the emulator, starts the desk binary against them
// and signs in as the Intune administrator.
func startRig(ctx context.Context, deskBin, profileOut string) (*rig, error) {
	return startRigWith(ctx, deskBin, profileOut, demoConfig{})
}

// startRigWith is startRig with an emulator configured by cfg.
func startRigWith(ctx context.Context, deskBin, profileOut string, cfg demoConfig) (_ *rig, err error) {
	b := &rig{profileOut: profileOut}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	addr, err := deskrun.FreeAddr()
	if err != nil {
		return nil, err
	}
	public, secret := "http://"+addr, rand.Text()
	if b.pair, err = startDemo(public, secret, cfg); err != nil {
		return nil, err
	}
	// One user sends every create: the rate limits stay on (their counting is part of what a
	// create costs) but are set high enough never to refuse one. The desk logs every request as
	// in production.
	args := []string{"--public-url", public,
		"--issuer-url", b.pair.Issuer, "--tenant-id", demoidp.DemoTenantID,
		"--client-id", benchClientID, "--client-secret", secret, "--graph-url", b.pair.Graph,
		"--rate-limit-create", "1000000/1m", "--rate-limit-signin", "1000000/1m"}
	if profileOut != "" {
		if b.admin, err = deskrun.FreeAddr(); err != nil {
			return nil, err
		}
		args = append(args, "--admin-addr", b.admin)
	}
	b.desk, err = deskrun.Start(ctx, deskBin, addr, args...)
	if err != nil {
		return nil, err
	}
	b.client = &http.Client{Jar: newBenchJar(), Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	if err := b.signIn(ctx); err != nil {
		return nil, fmt.Errorf("sign in: %w\n%s", err, b.desk.Output())
	}
	return b, nil
}

func (b *rig) close() {
	if b.client != nil {
		b.client.CloseIdleConnections() // the desk then has no connection left to wait for
	}
	if b.desk != nil {
		b.desk.Stop()
	}
	if b.pair != nil {
		b.pair.stop()
	}
}

// accepted is how many connections the emulator has accepted from the desk so far.
func (b *rig) accepted(ctx context.Context) int64 {
	body, err := b.control(ctx, "/accepted")
	n, _ := strconv.ParseInt(body, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// accessToken is the signed-in session's Graph token, as the identity provider issued it to the
// desk. It is used only as a request header and never printed.
func (b *rig) accessToken(ctx context.Context) (string, error) { return b.control(ctx, "/token") }

// controlClient asks the demo pair's control endpoint, on loopback, for what the bench needs.
var controlClient = &http.Client{Timeout: 10 * time.Second}

func (b *rig) control(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.pair.Control+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := controlClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", path, body)
	}
	return string(body), err
}

// signIn walks the sign-in as the Intune administrator, the way a browser does.
func (b *rig) signIn(ctx context.Context) error {
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, "admin")
		return nil
	}
	defer func() { b.client.CheckRedirect = nil }()
	body, final, err := b.get(ctx, "/auth/login?return_to=%2Fuploads%2Fnew")
	if err != nil {
		return err
	}
	if final != "/uploads/new" {
		return fmt.Errorf("sign-in ended on %s", final)
	}
	fields := formFields(body)
	if fields["_csrf"] == "" || fields["formKey"] == "" {
		return errors.New("the create form lacks its CSRF token or form key")
	}
	b.csrf = fields["_csrf"]
	u, _ := url.Parse(b.desk.URL)
	var parts []string
	for _, c := range b.client.Jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	b.cookie = strings.Join(parts, "; ")
	return nil
}

// get fetches a desk page with the signed-in session and returns its body and final path.
func (b *rig) get(ctx context.Context, path string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.desk.URL+path, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s answered %d", path, resp.StatusCode)
	}
	return body, resp.Request.URL.Path, nil
}

var (
	inputTag  = regexp.MustCompile(`<input\b[^>]*>`)
	nameAttr  = regexp.MustCompile(`\bname="([^"]*)"`)
	valueAttr = regexp.MustCompile(`\bvalue="([^"]*)"`)
)

// formFields reads the named inputs of a page (enough for the create form's hidden fields).
func formFields(page []byte) map[string]string {
	out := map[string]string{}
	for _, tag := range inputTag.FindAll(page, -1) {
		n, v := nameAttr.FindSubmatch(tag), valueAttr.FindSubmatch(tag)
		if n != nil && v != nil {
			out[string(n[1])] = string(v[1])
		}
	}
	return out
}

// formKeys fetches n create forms and returns their one-time keys.
func (b *rig) formKeys(ctx context.Context, n int) ([]string, error) {
	keys := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				body, _, err := b.get(ctx, "/uploads/new")
				if err == nil && formFields(body)["formKey"] == "" {
					err = errors.New("form without a key")
				}
				if err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
					return
				}
				keys[i] = formFields(body)["formKey"]
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return keys, first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// benchJar keeps cookies per host and port and ignores Secure: the bench reaches the desk over
// plain HTTP on loopback, where its __Host- cookie would otherwise never be sent back.
type benchJar struct {
	mu      sync.Mutex
	cookies map[string]map[string]*http.Cookie
}

func newBenchJar() *benchJar { return &benchJar{cookies: map[string]map[string]*http.Cookie{}} }

func (j *benchJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	host := j.cookies[u.Host]
	if host == nil {
		host = map[string]*http.Cookie{}
		j.cookies[u.Host] = host
	}
	for _, c := range cs {
		if c.MaxAge < 0 || c.Value == "" {
			delete(host, c.Name)
			continue
		}
		host[c.Name] = c
	}
}

func (j *benchJar) Cookies(u *url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.cookies[u.Host] {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}
