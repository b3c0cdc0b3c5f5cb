// Package demo pairs the demo identity provider with the Graph emulator, which trusts the tokens
// the provider issues. Demo mode serves the pair beside the desk, `autopilotdesk emulator` serves
// it on its own, and the tests and the benchmark start one for a desk of their own.
package demo

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
)

// Options describe the pair.
type Options struct {
	// ClientID and ClientSecret are the desk's registration at the identity provider; the
	// redirect URIs are the ones it accepts.
	ClientID, ClientSecret               string
	RedirectURIs, PostLogoutRedirectURIs []string
	// WithoutTenantClaims makes the provider answer like a generic OpenID Connect provider: ID
	// tokens without tid and oid claims.
	WithoutTenantClaims bool
	// Emulator configures the Graph emulator; its token verifier is the identity provider.
	Emulator emulator.Options
	// Repeatable, when set, gives both the pair's clock and numbered ids, and paces time by the
	// requests Graph receives.
	Repeatable *Repeatable
}

// Services are the demo identity provider and the Graph emulator behind one handler: the emulator
// under Graph's version prefixes (/v1.0 and /beta), the provider everywhere else.
type Services struct {
	URL                    string // where both are reached: the issuer's origin and the Graph root
	ClientID, ClientSecret string
	IdP                    *demoidp.Provider
	Emulator               *emulator.Emulator
	Handler                http.Handler
	srv                    *http.Server
}

// New builds the pair for clients that reach it at url (scheme://host:port, no path).
func New(url string, o Options) (*Services, error) {
	idpOpts := demoidp.Options{Issuer: url, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		RedirectURIs: o.RedirectURIs, PostLogoutRedirectURIs: o.PostLogoutRedirectURIs,
		WithoutTenantClaims: o.WithoutTenantClaims}
	emu := o.Emulator
	if r := o.Repeatable; r != nil {
		idpOpts.Now, emu.Now, emu.NewID = r.Now, r.Now, r.NewID
		// An import is final at the first look after it (a millisecond later); a sync ends with the next change.
		emu.ImportDelays = emulator.ImportDelays{Unknown: 400 * time.Microsecond, Pending: 400 * time.Microsecond}
		emu.SyncDuration = time.Second
	} else if emu.Now != nil {
		idpOpts.Now = emu.Now
	}
	idp, err := demoidp.New(idpOpts)
	if err != nil {
		return nil, fmt.Errorf("demo identity provider: %w", err)
	}
	emu.Verify = Verifier(idp)
	s := &Services{URL: url, ClientID: o.ClientID, ClientSecret: o.ClientSecret, IdP: idp, Emulator: emulator.New(emu)}
	s.Emulator.SeedAutopilotDevices(demoidp.DemoTenantID)
	s.Emulator.SeedAutopilotSync(demoidp.DemoTenantID, 3*time.Hour)
	var graph http.Handler = s.Emulator
	if o.Repeatable != nil {
		graph = o.Repeatable.Pace(graph)
	}
	s.Handler = Mux(idp, graph)
	return s, nil
}

// Mux serves graph under Graph's version prefixes (/v1.0 and /beta) and idp everywhere else.
func Mux(idp, graph http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1.0/", graph)
	mux.Handle("/beta/", graph)
	mux.Handle("/", idp)
	return mux
}

// Start builds the pair and serves it on a loopback port of its own until Close.
func Start(o Options, log *slog.Logger) (*Services, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo services: %w", err)
	}
	s, err := New("http://"+ln.Addr().String(), o)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.srv = &http.Server{Handler: s.Handler, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops serving the pair Start started, at once.
func (s *Services) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// Verifier lets the emulator check bearer tokens against the demo identity provider.
func Verifier(idp *demoidp.Provider) emulator.TokenVerifier {
	return func(token string) (emulator.Principal, error) {
		info, err := idp.VerifyAccessToken(token)
		switch {
		case errors.Is(err, demoidp.ErrTokenExpired):
			return emulator.Principal{}, emulator.ErrTokenExpired
		case err != nil:
			return emulator.Principal{}, emulator.ErrTokenUnknown
		}
		return emulator.Principal{AppID: info.AppID, TenantID: info.TenantID, ObjectID: info.ObjectID, UPN: info.UPN, Scopes: info.Scopes, Groups: info.Groups, IntuneReadOnly: info.IntuneReadOnly}, nil
	}
}
