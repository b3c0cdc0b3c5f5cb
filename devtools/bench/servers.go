package main

// The bench's own servers run as processes of their own, like the desk, so that no figure gains
// by sharing the load generator's process: the bare page server (the reference of the pages step),
// the identity provider with the Graph emulator (which the desk calls, and which the forwarding
// step also calls directly as its reference), and a bare reverse proxy to the emulator (the
// forwarding step's second reference: what any second hop costs on this machine). This program
// is started again as each.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity/demoidp"
)

const (
	serveBareCommand  = "serve-bare"
	serveDemoCommand  = "serve-demo"
	serveProxyCommand = "serve-proxy"
	// benchClientID is the desk's registration at the bench's identity provider.
	benchClientID = "autopilotdesk-bench"
	// benchGraphLatency is how long the emulator takes to answer every request.
	benchGraphLatency = 20 * time.Millisecond
)

// serveIfAsked serves, and never returns, when this program was started as one of its servers.
func serveIfAsked() {
	if len(os.Args) < 2 {
		return
	}
	var err error
	switch os.Args[1] {
	case serveBareCommand:
		err = serveBare(os.Args[2:])
	case serveDemoCommand:
		err = serveDemo(os.Args[2:])
	case serveProxyCommand:
		err = serveProxy(os.Args[2:])
	default:
		return
	}
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// server is one of the bench's servers, running as a process of its own.
type server struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startServer starts this program as the server command and decodes the first line it prints,
// which says where it serves, into where.
func startServer(where any, command string, args ...string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{command}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	line := make(chan []byte, 1)
	go func() {
		r := bufio.NewReader(out)
		b, _ := r.ReadBytes('\n')
		line <- b
		io.Copy(io.Discard, r)
		cmd.Wait()
		close(s.exited)
	}()
	select {
	case b := <-line:
		if err := json.Unmarshal(b, where); err != nil {
			s.stop()
			return nil, fmt.Errorf("%s did not say where it serves: %q", command, b)
		}
		return s, nil
	case <-time.After(10 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s did not start within 10 s", command)
	}
}

func (s *server) stop() {
	s.cmd.Process.Kill()
	<-s.exited
}

// bareServer is the pages step's reference.
type bareServer struct {
	*server
	url  string
	size int // the page's length in bytes
}

// startBare serves the bytes of the desk's signed-in create form, as the desk wrote them, at the
// form's URL from a plain net/http handler.
func (b *rig) startBare(ctx context.Context) (*bareServer, error) {
	page, _, err := b.get(ctx, "/uploads/new")
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "autopilotdesk-bench-page-*.html")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name()) // the server reads it at start
	_, err = f.Write(page)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	bare := &bareServer{size: len(page)}
	bare.server, err = startServer(&bare.url, serveBareCommand, f.Name())
	return bare, err
}

// serveBare serves the file named by args[0] as HTML on a loopback port: the limit of this machine.
func serveBare(args []string) error {
	if len(args) != 1 {
		return errors.New("serve-bare takes one file")
	}
	body, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	return serveLoopback("/uploads/new", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(body)
	}))
}

// serveLoopback serves h on a loopback port, after printing, as startServer reads it, the URL of
// path there.
func serveLoopback(path string, h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	json.NewEncoder(os.Stdout).Encode("http://" + ln.Addr().String() + path)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: h}
	return srv.Serve(ln)
}

// proxyServer is a bare reverse proxy: the forwarding step's second reference.
type proxyServer struct {
	*server
	url string
}

// startProxy serves a plain net/http/httputil reverse proxy to target.
func startProxy(target string) (*proxyServer, error) {
	p := &proxyServer{}
	var err error
	p.server, err = startServer(&p.url, serveProxyCommand, target)
	return p, err
}

// serveProxy forwards every request to the URL args[0] names, as a reverse proxy of the standard
// library does, with nothing else on the way.
func serveProxy(args []string) error {
	if len(args) != 1 {
		return errors.New("serve-proxy takes the URL to forward to")
	}
	target, err := url.Parse(args[0])
	if err != nil {
		return err
	}
	return serveLoopback("", httputil.NewSingleHostReverseProxy(target))
}

// demoServer is the identity provider and the Graph emulator, with a control port of the bench's.
type demoServer struct {
	*server
	Graph   string // where the desk reaches them; the issuer's origin and its Graph root
	Direct  string // the same, on a port of the bench's own requests
	Control string // GET /accepted: connections the Graph port accepted; GET /token: an access token the desk holds
	Issuer  string
}

// demoConfig is how the bench's emulator behaves beyond its defaults.
type demoConfig struct {
	ImportDelays emulator.ImportDelays // how long Intune takes over each imported device
	Throttle     string                // Intune's budget, as emulator.ParseThrottle reads it; empty: none
}

// startDemo serves the identity provider and the emulator for a desk at publicURL that
// authenticates with secret.
func startDemo(publicURL, secret string, cfg demoConfig) (*demoServer, error) {
	d := &demoServer{}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	d.server, err = startServer(d, serveDemoCommand, publicURL, secret, string(b))
	return d, err
}

// serveDemo is startDemo's server: args are the desk's public URL, its client secret and the
// demoConfig as JSON.
func serveDemo(args []string) error {
	var cfg demoConfig
	if len(args) != 3 || json.Unmarshal([]byte(args[2]), &cfg) != nil {
		return errors.New("serve-demo takes the desk's public URL, its client secret and its configuration")
	}
	faults := emulator.Faults{LatencyMin: benchGraphLatency, LatencyMax: benchGraphLatency}
	if cfg.Throttle != "" {
		var err error
		if faults.ThrottleWrites, faults.ThrottleRequests, faults.ThrottleWindow, err = emulator.ParseThrottle(cfg.Throttle); err != nil {
			return err
		}
		faults.PunishEarlyRetry = true
	}
	var lns [3]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns[i] = ln
	}
	graph := &countingListener{Listener: lns[0]}
	pair, err := demo.New("http://"+graph.Addr().String(), demo.Options{ClientID: benchClientID, ClientSecret: args[1],
		RedirectURIs: []string{args[0] + "/auth/callback"}, PostLogoutRedirectURIs: []string{args[0] + "/auth/signed-out"},
		Emulator: emulator.Options{Faults: faults, ImportDelays: cfg.ImportDelays}})
	if err != nil {
		return err
	}
	counts := &requestCounts{by: map[string]map[string]int{}}
	control := http.NewServeMux()
	control.HandleFunc("GET /accepted", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strconv.FormatInt(graph.accepted.Load(), 10))
	})
	control.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		for _, tok := range pair.IdP.IssuedTokens() {
			if _, err := pair.IdP.VerifyAccessToken(tok); err == nil {
				io.WriteString(w, tok)
				return
			}
		}
		http.Error(w, "no access token issued yet", http.StatusNotFound)
	})
	control.HandleFunc("GET /requests", func(w http.ResponseWriter, r *http.Request) {
		counts.mu.Lock()
		defer counts.mu.Unlock()
		json.NewEncoder(w).Encode(counts.by)
	})
	control.HandleFunc("GET /imports", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(summarise(pair.Emulator.ImportRecords(demoidp.DemoTenantID), r.URL.Query().Get("prefix")))
	})
	json.NewEncoder(os.Stdout).Encode(demoServer{Graph: pair.URL, Direct: "http://" + lns[1].Addr().String(),
		Control: "http://" + lns[2].Addr().String(), Issuer: pair.IdP.IssuerURL()})
	quiet := slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	errs := make(chan error, 3)
	for _, s := range []struct {
		ln net.Listener
		h  http.Handler
	}{{graph, counts.count("desk", pair.Handler)}, {lns[1], counts.count("direct", pair.Handler)}, {lns[2], control}} {
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: quiet}
		go func() { errs <- srv.Serve(s.ln) }()
	}
	return <-errs
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// requestCounts counts the Graph requests each listener received, by kind, as Intune would
// see them: a JSON batch counts once as "batch" and once per request inside it as
// "batch-inner", and every answer 429 once more as "throttled".
type requestCounts struct {
	mu sync.Mutex
	by map[string]map[string]int // listener -> kind -> requests
}

func (c *requestCounts) add(listener, kind string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by[listener] == nil {
		c.by[listener] = map[string]int{}
	}
	c.by[listener][kind] += n
}

func (c *requestCounts) count(listener string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := requestKind(r)
		if kind == "" {
			h.ServeHTTP(w, r) // the identity provider
			return
		}
		c.add(listener, kind, 1)
		if kind == "batch" {
			body, _ := io.ReadAll(r.Body)
			var b struct{ Requests []json.RawMessage }
			if json.Unmarshal(body, &b) == nil {
				c.add(listener, "batch-inner", len(b.Requests))
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == http.StatusTooManyRequests {
			c.add(listener, "throttled", 1)
		}
	})
}

// requestKind names a Graph request: import (the import action), create (one device), get
// (one imported device), list (a page of imported devices), lookup (imported devices by
// serial), registered (registered devices), batch, sync, other; "" for the identity provider.
func requestKind(r *http.Request) string {
	p, ok := strings.CutPrefix(r.URL.Path, "/v1.0")
	if !ok {
		if p, ok = strings.CutPrefix(r.URL.Path, "/beta"); !ok {
			return ""
		}
	}
	const devices = "/deviceManagement/importedWindowsAutopilotDeviceIdentities"
	switch {
	case p == "/$batch":
		return "batch"
	case strings.HasSuffix(p, "/windowsAutopilotSettings/sync"):
		return "sync"
	case p == devices+"/import":
		return "import"
	case p == devices && r.Method == http.MethodPost:
		return "create"
	case p == devices && r.URL.Query().Has("$filter"):
		return "lookup"
	case p == devices:
		return "list"
	case strings.HasPrefix(p, devices+"/"):
		return "get"
	case strings.HasPrefix(p, "/deviceManagement/windowsAutopilotDeviceIdentities"):
		return "registered"
	}
	return "other"
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// importSummary is what the emulator holds of the imported devices whose serial starts with a
// prefix.
type importSummary struct {
	Records, Serials int       // import records, and distinct serial numbers among them
	First, LastFinal time.Time // the first import's arrival; when Intune is done with the last device
	LastArrived      time.Time // the last import's arrival
}

func summarise(records []emulator.ImportRecord, prefix string) importSummary {
	var s importSummary
	seen := map[string]bool{}
	for _, r := range records {
		if !strings.HasPrefix(r.SerialNumber, prefix) {
			continue
		}
		s.Records++
		if !seen[r.SerialNumber] {
			seen[r.SerialNumber] = true
			s.Serials++
		}
		if s.First.IsZero() || r.Arrived.Before(s.First) {
			s.First = r.Arrived
		}
		if r.Arrived.After(s.LastArrived) {
			s.LastArrived = r.Arrived
		}
		if r.Final.After(s.LastFinal) {
			s.LastFinal = r.Final
		}
	}
	return s
}
