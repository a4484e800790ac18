package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Proxy is a running reverse proxy. Its routing table, pools and limits can
// be replaced with Reload while requests are in flight: each request keeps
// the state it started with.
type Proxy struct {
	log    *slog.Logger
	access *slog.Logger // nil when access logging is off
	m      *metrics
	certs  *certStore
	conns  *connLimiter

	state atomic.Pointer[state]

	mu      sync.Mutex // serialises Reload and guards targets
	targets map[string]*target
	pending []*target // draining targets, reported until drained

	bufPool   httputil.BufferPool
	noRoute   *routeMetrics // requests answered before a route matched
	idPrefix  string
	idCounter atomic.Uint64

	servers   []*http.Server
	fast      *fastServer // nil when http1_fast_path is off
	listeners []net.Listener
	addrs     Addrs
	serveErr  chan error
}

// Addrs are the bound addresses of the proxy's listeners; empty when the
// listener is disabled.
type Addrs struct{ HTTPS, HTTP, Admin string }

// state is everything a request needs, swapped atomically on reload.
type state struct {
	cfg     *Config
	routes  *routeTable
	pools   map[string]*pool
	rate    *rateLimiter
	hsts    string
	trusted []netip.Prefix
}

// New builds a proxy from a validated config. logger receives operational
// messages, access one line per request (nil disables the access log).
func New(cfg *Config, logger, access *slog.Logger) (*Proxy, error) {
	p := &Proxy{
		log:     logger,
		access:  access,
		targets: map[string]*target{},
		bufPool: newBufferPool(),
	}
	p.m = newMetrics(p.allTargets)
	p.noRoute = p.m.forRoute("", "")
	var seed [8]byte
	rand.Read(seed[:])
	p.idPrefix = hex.EncodeToString(seed[:])
	p.conns = newConnLimiter(p.m)
	certs, err := newCertStore(cfg.TLS, logger)
	if err != nil {
		return nil, err
	}
	p.certs = certs
	if err := p.apply(cfg); err != nil {
		certs.close()
		return nil, err
	}
	return p, nil
}

// Reload switches to cfg. New requests use the new routes and pools at once;
// requests in flight finish on the targets they started on. Targets that
// left the config are drained. Listener addresses cannot change.
func (p *Proxy) Reload(cfg *Config) error {
	old := p.state.Load().cfg
	if cfg.Listen != old.Listen || cfg.HTTPListen != old.HTTPListen || cfg.AdminListen != old.AdminListen {
		p.log.Warn("listener addresses changed; restart the proxy to apply them")
	}
	if err := p.certs.update(cfg.TLS); err != nil {
		return err
	}
	return p.apply(cfg)
}

func (p *Proxy) apply(cfg *Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := &state{cfg: cfg, pools: map[string]*pool{}, trusted: cfg.trusted}
	keep := map[string]*target{}
	var started []*target
	for _, name := range sortedKeys(cfg.Upstreams) {
		spec := cfg.Upstreams[name]
		pl := &pool{name: name, spec: spec, m: p.m}
		for _, raw := range spec.Targets {
			key := name + "|" + transportKey(raw, spec.Transport) + "|" + fmt.Sprint(spec.HealthCheck)
			t := p.targets[key]
			if t == nil {
				var err error
				if t, err = newTarget(name, raw, spec, p.m, p.log); err != nil {
					return err
				}
				started = append(started, t)
			}
			keep[key] = t
			pl.targets = append(pl.targets, t)
		}
		pl.plainHTTP = true
		for _, t := range pl.targets {
			pl.plainHTTP = pl.plainHTTP && t.fast != nil
		}
		next.pools[name] = pl
	}
	var routes []*route
	for _, rs := range cfg.Routes {
		r := &route{RouteSpec: rs, name: rs.Host + rs.Path, pool: next.pools[rs.Upstream]}
		routes = append(routes, r)
	}
	next.routes = newRouteTable(routes)
	for _, r := range routes {
		r.rp = p.newReverseProxy(r)
		r.m = p.m.forRoute(r.name, r.Upstream)
	}
	if cfg.Limits.RatePerIP > 0 {
		if prev := p.state.Load(); prev != nil && prev.rate != nil && prev.rate.sameAs(cfg.Limits) {
			next.rate = prev.rate
		} else {
			next.rate = newRateLimiter(cfg.Limits.RatePerIP, cfg.Limits.BurstPerIP)
		}
	}
	if h := cfg.HSTS; h.MaxAge > 0 {
		next.hsts = "max-age=" + strconv.FormatInt(int64(h.MaxAge/time.Second), 10)
		if h.IncludeSubdomains {
			next.hsts += "; includeSubDomains"
		}
		if h.Preload {
			next.hsts += "; preload"
		}
	}
	p.conns.setMax(cfg.Limits.MaxConnsPerIP)

	for _, t := range started {
		t.startHealth(cfg.Upstreams[t.pool].HealthCheck)
	}
	prev := p.state.Swap(next)
	for key, t := range p.targets {
		if keep[key] == nil {
			t.drain()
			p.pending = append(p.pending, t)
		}
	}
	p.targets = keep
	if prev != nil && prev.rate != nil && prev.rate != next.rate {
		prev.rate.close()
	}
	p.log.Info("configuration applied", "routes", len(cfg.Routes), "pools", len(cfg.Upstreams), "targets", len(keep))
	return nil
}

// allTargets lists live and still-draining targets for the metrics.
func (p *Proxy) allTargets() []*target {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*target, 0, len(p.targets)+len(p.pending))
	for _, k := range sortedKeys(p.targets) {
		out = append(out, p.targets[k])
	}
	live := p.pending[:0]
	for _, t := range p.pending {
		if t.inflight.Load() > 0 {
			live = append(live, t)
			out = append(out, t)
		}
	}
	p.pending = live
	return out
}

// Start binds the listeners and serves in the background. Use Shutdown to
// stop.
func (p *Proxy) Start() error {
	cfg := p.state.Load().cfg
	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.3 suites are not configurable and always preferred; for 1.2
		// only forward-secret AEAD suites are offered.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		GetCertificate: p.certs.get,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	errLog := slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
			IdleTimeout:       cfg.Limits.IdleTimeout,
			MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
			ErrorLog:          errLog,
		}
	}
	p.serveErr = make(chan error, 3)
	listen := func(addr string, limited bool) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			p.closeListeners()
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		p.listeners = append(p.listeners, l)
		if limited {
			return p.conns.wrap(l), nil
		}
		return l, nil
	}

	l, err := listen(cfg.Listen, true)
	if err != nil {
		return err
	}
	p.addrs.HTTPS = l.Addr().String()
	httpsSrv := newServer(p)
	httpsSrv.TLSConfig = tlsCfg
	p.servers = append(p.servers, httpsSrv)
	if *cfg.HTTP1FastPath {
		h2Srv := newServer(p)
		p.servers = append(p.servers, h2Srv)
		p.fast = newFastServer(p, l, tlsCfg, httpsSrv, h2Srv, cfg.Limits)
		p.serve("https", httpsSrv, p.fast.handoff)
		p.serve("https, HTTP/2", h2Srv, p.fast.h2)
		go func() {
			if err := p.fast.serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.serveErr <- fmt.Errorf("https listener: %w", err)
			}
		}()
	} else {
		p.serve("https", httpsSrv, tls.NewListener(l, tlsCfg))
	}

	if cfg.HTTPListen != "" {
		l, err := listen(cfg.HTTPListen, true)
		if err != nil {
			return err
		}
		p.addrs.HTTP = l.Addr().String()
		srv := newServer(http.HandlerFunc(p.serveRedirect))
		p.servers = append(p.servers, srv)
		p.serve("http", srv, l)
	}
	if cfg.AdminListen != "" {
		l, err := listen(cfg.AdminListen, false)
		if err != nil {
			return err
		}
		p.addrs.Admin = l.Addr().String()
		srv := newServer(p.adminHandler())
		p.servers = append(p.servers, srv)
		p.serve("admin", srv, l)
	}
	return nil
}

func (p *Proxy) serve(name string, srv *http.Server, l net.Listener) {
	p.log.Info("listening", "listener", name, "addr", l.Addr().String())
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.serveErr <- fmt.Errorf("%s listener: %w", name, err)
		}
	}()
}

func (p *Proxy) closeListeners() {
	for _, l := range p.listeners {
		l.Close()
	}
}

// Addrs returns the bound listener addresses after Start.
func (p *Proxy) Addrs() Addrs { return p.addrs }

// Shutdown stops accepting connections and waits for requests in flight,
// until ctx ends; then it closes what is left.
func (p *Proxy) Shutdown(ctx context.Context) error {
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	if p.fast != nil {
		wg.Go(func() {
			if err := p.fast.shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	for _, srv := range p.servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	p.closeListeners()
	p.certs.close()
	p.mu.Lock()
	for _, t := range p.targets {
		if t.stopHealth != nil {
			t.stopHealth()
		}
		t.closeIdle(true)
	}
	if s := p.state.Load(); s.rate != nil {
		s.rate.close()
	}
	p.mu.Unlock()
	return errors.Join(errs...)
}

// Run serves until ctx is cancelled, then shuts down gracefully within the
// configured shutdown timeout.
func (p *Proxy) Run(ctx context.Context) error {
	if err := p.Start(); err != nil {
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-p.serveErr:
	}
	p.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), p.state.Load().cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, p.Shutdown(sctx))
}

func (p *Proxy) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.m.reg, promhttp.HandlerOpts{}))
	// Profiles help when tuning under real load; the admin listener is
	// private by configuration.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	// readyz is 503 while some pool has no target able to take requests.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := p.state.Load()
		for _, name := range sortedKeys(st.pools) {
			ok := false
			for _, t := range st.pools[name].targets {
				ok = ok || t.up()
			}
			if !ok {
				http.Error(w, "pool "+name+" has no healthy target", http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}

// serveRedirect answers the plain-HTTP listener: health checks and ACME
// HTTP-01 challenges are served, everything else goes to HTTPS.
func (p *Proxy) serveRedirect(w http.ResponseWriter, r *http.Request) {
	st := p.state.Load()
	if r.URL.Path == st.cfg.HealthPath || strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		p.ServeHTTP(w, r)
		return
	}
	host := normalizeHost(r.Host)
	if host == "" {
		http.Error(w, "missing Host header", http.StatusBadRequest)
		return
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := st.cfg.RedirectPort
	if port == 0 {
		_, ps, _ := net.SplitHostPort(p.addrs.HTTPS)
		port, _ = strconv.Atoi(ps)
	}
	if port != 443 && port != 0 {
		host += ":" + strconv.Itoa(port)
	}
	target := "https://" + host + r.URL.RequestURI()
	// 308 keeps the method and body, unlike 301.
	http.Redirect(w, r, target, http.StatusPermanentRedirect)
}

// newRequestID returns a unique ID: a random per-process prefix and a
// counter. IDs need to be unique, not secret, and this avoids a system call
// per request.
func (p *Proxy) newRequestID() string {
	var b [32]byte
	copy(b[:16], p.idPrefix)
	n := p.idCounter.Add(1)
	const digits = "0123456789abcdef"
	for i := 31; i >= 16; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// validRequestID accepts IDs from trusted proxies that are short and
// printable, so they cannot inject anything into logs or headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return false
		}
	}
	return true
}

// logDefault is the logger used when none is given.
func logDefault(w io.Writer, format string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
