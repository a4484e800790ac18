package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the proxy's configuration file. Durations are Go durations
// ("5s", "2m"); sizes are bytes.
type Config struct {
	// Listen is the HTTPS address, e.g. ":443".
	Listen string `yaml:"listen"`
	// HTTPListen is the plain-HTTP address that redirects to HTTPS; empty
	// disables it.
	HTTPListen string `yaml:"http_listen"`
	// RedirectPort overrides the port put into HTTP->HTTPS redirects, for
	// when the HTTPS listener is published on another port (containers).
	RedirectPort int `yaml:"redirect_port"`
	// AdminListen serves /metrics, /healthz and /readyz; empty disables it.
	AdminListen string `yaml:"admin_listen"`
	// HealthPath is answered by the proxy itself on every listener.
	HealthPath string `yaml:"health_path"`
	// ShutdownTimeout bounds how long in-flight requests may run after a
	// shutdown was requested.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// HTTP1FastPath (default true) serves plain HTTP/1.1 GET and HEAD
	// requests in the proxy's own request loop instead of net/http's
	// general server; false sends everything through net/http. Read at
	// start only.
	HTTP1FastPath *bool `yaml:"http1_fast_path"`

	TLS            TLSConfig           `yaml:"tls"`
	HSTS           HSTSConfig          `yaml:"hsts"`
	TrustedProxies []string            `yaml:"trusted_proxies"`
	Limits         LimitsConfig        `yaml:"limits"`
	Log            LogConfig           `yaml:"log"`
	Upstreams      map[string]PoolSpec `yaml:"upstreams"`
	Routes         []RouteSpec         `yaml:"routes"`

	trusted []netip.Prefix
}

// TLSConfig lists certificates; the one whose names match the client's SNI
// is served, the first one otherwise.
type TLSConfig struct {
	Certificates []CertSpec `yaml:"certificates"`
	// ReloadInterval is how often certificate files are checked for changes.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// OCSPStapling fetches OCSP responses for certificates that name an
	// OCSP server.
	OCSPStapling *bool `yaml:"ocsp_stapling"`
}

// CertSpec is one certificate and key in PEM files. The certificate file may
// hold the chain after the leaf.
type CertSpec struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// Hosts overrides the names taken from the certificate (SANs).
	Hosts []string `yaml:"hosts"`
}

// HSTSConfig sets Strict-Transport-Security on HTTPS responses.
type HSTSConfig struct {
	MaxAge            time.Duration `yaml:"max_age"`
	IncludeSubdomains bool          `yaml:"include_subdomains"`
	Preload           bool          `yaml:"preload"`
}

// LimitsConfig protects the proxy from slow and greedy clients.
type LimitsConfig struct {
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// BodyMinRate is the slowest upload, in bytes per second, tolerated
	// after BodyGrace; slower bodies are cut off.
	BodyMinRate int64         `yaml:"body_min_rate"`
	BodyGrace   time.Duration `yaml:"body_grace"`
	// MaxConnsPerIP caps concurrent connections from one client address.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// RatePerIP is the sustained requests per second per client; BurstPerIP
	// the bucket size. Zero disables rate limiting.
	RatePerIP  float64 `yaml:"rate_per_ip"`
	BurstPerIP int     `yaml:"burst_per_ip"`
}

// LogConfig selects the log format.
type LogConfig struct {
	// Format is "json" (default) or "text".
	Format string `yaml:"format"`
	// Access turns the per-request access log on or off (default on).
	Access *bool `yaml:"access"`
}

// PoolSpec is a named pool of upstream targets.
type PoolSpec struct {
	Targets []string `yaml:"targets"`
	// Balance is "least_outstanding" (default) or "round_robin".
	Balance string `yaml:"balance"`
	// MaxRequestsPerTarget caps in-flight requests per target; when every
	// target is full the client gets 503. Zero means no cap.
	MaxRequestsPerTarget int               `yaml:"max_requests_per_target"`
	Retries              *int              `yaml:"retries"`
	HealthCheck          HealthCheckSpec   `yaml:"health_check"`
	Passive              PassiveSpec       `yaml:"passive"`
	Transport            TransportSpec     `yaml:"transport"`
	Headers              map[string]string `yaml:"headers"`
}

// HealthCheckSpec configures active health checks; an empty path disables
// them.
type HealthCheckSpec struct {
	Path               string        `yaml:"path"`
	Interval           time.Duration `yaml:"interval"`
	Timeout            time.Duration `yaml:"timeout"`
	HealthyThreshold   int           `yaml:"healthy_threshold"`
	UnhealthyThreshold int           `yaml:"unhealthy_threshold"`
}

// PassiveSpec ejects a target after MaxFailures consecutive failures, for
// Cooldown. A failure is a connection that fails, or an answer whose status
// is listed in Statuses (for example 502, 503 and 504 from a Swift proxy
// node that lost its object servers). An answer never ejects the last
// target available: a pool where every target answers 503 passes those
// answers on, rather than replacing them with the proxy's own.
type PassiveSpec struct {
	MaxFailures int           `yaml:"max_failures"`
	Cooldown    time.Duration `yaml:"cooldown"`
	Statuses    []int         `yaml:"statuses"`
}

// failureStatus reports whether an answer with code counts as a failure.
func (p PassiveSpec) failureStatus(code int) bool {
	return slices.Contains(p.Statuses, code)
}

// TransportSpec tunes connections to the targets.
type TransportSpec struct {
	DialTimeout           time.Duration `yaml:"dial_timeout"`
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	MaxIdleConnsPerHost   int           `yaml:"max_idle_conns_per_host"`
	IdleConnTimeout       time.Duration `yaml:"idle_conn_timeout"`
	ExpectContinueTimeout time.Duration `yaml:"expect_continue_timeout"`
}

// RouteSpec sends requests whose host and path prefix match to a pool.
type RouteSpec struct {
	// Host matches the request host (without port); empty matches any.
	Host string `yaml:"host"`
	// Path is the path prefix; the longest matching prefix wins.
	Path     string `yaml:"path"`
	Upstream string `yaml:"upstream"`
	// StripPrefix removes Path from the upstream request path.
	StripPrefix bool `yaml:"strip_prefix"`
	// Rewrite replaces Path with this prefix in the upstream request path.
	Rewrite string `yaml:"rewrite"`
	// HostHeader is "preserve" (default), "upstream" (the target's host) or
	// a literal host name.
	HostHeader string `yaml:"host_header"`
	// MaxBodyBytes answers 413 to larger request bodies; zero is unlimited.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Timeout bounds the whole exchange; zero (the default, right for file
	// transfers) is unlimited.
	Timeout time.Duration `yaml:"timeout"`
	// HeaderTimeout bounds the wait for the upstream's response headers.
	HeaderTimeout time.Duration `yaml:"header_timeout"`
	// FlushInterval: streaming responses (no Content-Length, or
	// text/event-stream) are always flushed at once; others are flushed
	// at least this often (zero means 100ms), so a pausing upstream never
	// leaves bytes stuck in the proxy; -1 flushes after every write.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// Defaults for keys left out of the file.
const (
	defaultHealthPath      = "/.velox-proxy/healthz"
	defaultShutdownTimeout = 30 * time.Second
	defaultReloadInterval  = 30 * time.Second
	defaultMaxHeaderBytes  = 64 << 10
	defaultReadHeader      = 10 * time.Second
	defaultIdle            = 120 * time.Second
	defaultBodyMinRate     = 1024
	defaultBodyGrace       = 30 * time.Second
	defaultHCInterval      = 5 * time.Second
	defaultHCTimeout       = 2 * time.Second
	defaultHCThreshold     = 2
	defaultPassiveFailures = 3
	defaultPassiveCooldown = 10 * time.Second
	defaultRetries         = 2
	defaultDialTimeout     = 5 * time.Second
	defaultMaxIdlePerHost  = 128
	defaultIdleConnTimeout = 90 * time.Second
	defaultExpectContinue  = 5 * time.Second
)

// LoadConfig reads, defaults and validates the file at path. Errors name the
// file, and the line for unknown keys.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

var unknownFieldRe = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// ParseConfig decodes, defaults and validates YAML. Unknown keys are errors
// so that a typo cannot silently disable a setting.
func ParseConfig(data []byte) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty config")
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = unknownFieldRe.ReplaceAllString(m, `line $1: unknown key "$2"`)
			}
			return nil, errors.New(strings.Join(msgs, "; "))
		}
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) setDefaults() {
	if c.HealthPath == "" {
		c.HealthPath = defaultHealthPath
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = defaultShutdownTimeout
	}
	if c.HTTP1FastPath == nil {
		on := true
		c.HTTP1FastPath = &on
	}
	if c.TLS.ReloadInterval == 0 {
		c.TLS.ReloadInterval = defaultReloadInterval
	}
	if c.TLS.OCSPStapling == nil {
		on := true
		c.TLS.OCSPStapling = &on
	}
	l := &c.Limits
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = defaultReadHeader
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = defaultIdle
	}
	if l.BodyMinRate == 0 {
		l.BodyMinRate = defaultBodyMinRate
	}
	if l.BodyGrace == 0 {
		l.BodyGrace = defaultBodyGrace
	}
	if l.RatePerIP > 0 && l.BurstPerIP == 0 {
		l.BurstPerIP = max(1, int(l.RatePerIP*2))
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Access == nil {
		on := true
		c.Log.Access = &on
	}
	for name, p := range c.Upstreams {
		if p.Balance == "" {
			p.Balance = "least_outstanding"
		}
		if p.Retries == nil {
			r := defaultRetries
			p.Retries = &r
		}
		h := &p.HealthCheck
		if h.Interval == 0 {
			h.Interval = defaultHCInterval
		}
		if h.Timeout == 0 {
			h.Timeout = defaultHCTimeout
		}
		if h.HealthyThreshold == 0 {
			h.HealthyThreshold = defaultHCThreshold
		}
		if h.UnhealthyThreshold == 0 {
			h.UnhealthyThreshold = defaultHCThreshold
		}
		if p.Passive.MaxFailures == 0 {
			p.Passive.MaxFailures = defaultPassiveFailures
		}
		if p.Passive.Cooldown == 0 {
			p.Passive.Cooldown = defaultPassiveCooldown
		}
		t := &p.Transport
		if t.DialTimeout == 0 {
			t.DialTimeout = defaultDialTimeout
		}
		if t.MaxIdleConnsPerHost == 0 {
			t.MaxIdleConnsPerHost = defaultMaxIdlePerHost
		}
		if t.IdleConnTimeout == 0 {
			t.IdleConnTimeout = defaultIdleConnTimeout
		}
		if t.ExpectContinueTimeout == 0 {
			t.ExpectContinueTimeout = defaultExpectContinue
		}
		c.Upstreams[name] = p
	}
}

// Validate checks the configuration after defaults were applied. It
// reports every problem, one per line.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Listen == "" {
		bad("listen: required")
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: bad address %q", c.Listen)
	}
	for _, a := range [][2]string{{"http_listen", c.HTTPListen}, {"admin_listen", c.AdminListen}} {
		if a[1] == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a[1]); err != nil {
			bad("%s: bad address %q", a[0], a[1])
		}
	}
	if c.RedirectPort < 0 || c.RedirectPort > 65535 {
		bad("redirect_port: must be a port number, not %d", c.RedirectPort)
	}
	if !strings.HasPrefix(c.HealthPath, "/") {
		bad("health_path: must start with /")
	}
	if len(c.TLS.Certificates) == 0 {
		bad("tls.certificates: at least one certificate is required")
	}
	for i, cs := range c.TLS.Certificates {
		if cs.Cert == "" || cs.Key == "" {
			bad("tls.certificates[%d]: cert and key are required", i)
			continue
		}
		for _, f := range []string{cs.Cert, cs.Key} {
			if _, err := os.Stat(f); err != nil {
				bad("tls.certificates[%d]: %s: file not found", i, f)
			}
		}
	}
	c.trusted = c.trusted[:0]
	for i, s := range c.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			bad("trusted_proxies[%d]: bad CIDR %q", i, s)
			continue
		}
		c.trusted = append(c.trusted, p)
	}
	l := c.Limits
	if l.MaxHeaderBytes < 0 || l.BodyMinRate < 0 || l.MaxConnsPerIP < 0 || l.RatePerIP < 0 || l.BurstPerIP < 0 {
		bad("limits: values must not be negative")
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format: must be json or text, not %q", c.Log.Format)
	}

	if len(c.Upstreams) == 0 {
		bad("upstreams: at least one pool is required")
	}
	for _, name := range sortedKeys(c.Upstreams) {
		p := c.Upstreams[name]
		if len(p.Targets) == 0 {
			bad("upstreams.%s: targets: at least one target is required", name)
		}
		seen := map[string]bool{}
		for i, t := range p.Targets {
			if err := checkTargetURL(t); err != nil {
				bad("upstreams.%s: targets[%d]: %v", name, i, err)
			}
			if seen[t] {
				bad("upstreams.%s: targets[%d]: duplicate target %q", name, i, t)
			}
			seen[t] = true
		}
		if p.Balance != "least_outstanding" && p.Balance != "round_robin" {
			bad("upstreams.%s: balance: must be least_outstanding or round_robin, not %q", name, p.Balance)
		}
		if p.HealthCheck.Path != "" && !strings.HasPrefix(p.HealthCheck.Path, "/") {
			bad("upstreams.%s: health_check.path: must start with /", name)
		}
		if *p.Retries < 0 || p.MaxRequestsPerTarget < 0 || p.HealthCheck.HealthyThreshold < 0 ||
			p.HealthCheck.UnhealthyThreshold < 0 || p.Passive.MaxFailures < 0 {
			bad("upstreams.%s: values must not be negative", name)
		}
		for i, code := range p.Passive.Statuses {
			if code < 500 || code > 599 {
				bad("upstreams.%s: passive.statuses[%d]: %d is not a 5xx status", name, i, code)
			}
		}
	}

	if len(c.Routes) == 0 {
		bad("routes: at least one route is required")
	}
	type key struct{ host, path string }
	routes := map[key]int{}
	for i, r := range c.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		if err := checkRoutePath(r.Path); err != nil {
			bad("%s: path: %v", where, err)
			continue
		}
		k := key{strings.ToLower(r.Host), r.Path}
		if j, dup := routes[k]; dup {
			bad("%s: duplicate route (host %q, path %q) already defined at routes[%d]", where, r.Host, r.Path, j)
		} else {
			routes[k] = i
		}
		if strings.ContainsAny(r.Host, "/:@ ") {
			bad("%s: host: must be a bare host name, not %q", where, r.Host)
		}
		if r.Upstream == "" {
			bad("%s: upstream: required", where)
		} else if _, ok := c.Upstreams[r.Upstream]; !ok {
			bad("%s: upstream: unknown pool %q", where, r.Upstream)
		}
		if r.StripPrefix && r.Rewrite != "" {
			bad("%s: strip_prefix and rewrite are mutually exclusive", where)
		}
		if r.Rewrite != "" {
			if err := checkRoutePath(r.Rewrite); err != nil {
				bad("%s: rewrite: %v", where, err)
			}
		}
		if r.MaxBodyBytes < 0 || r.Timeout < 0 || r.HeaderTimeout < 0 {
			bad("%s: limits must not be negative", where)
		}
		if r.FlushInterval < -1 {
			bad("%s: flush_interval: must be -1, 0 or positive", where)
		}
	}
	return errors.Join(errs...)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked(), nil
}

func checkTargetURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bad URL %q: want http(s)://host:port", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("bad URL %q: only scheme, host and port are allowed", s)
	}
	return nil
}

// checkRoutePath accepts absolute, clean URL path prefixes.
func checkRoutePath(p string) error {
	if p == "" {
		return errors.New("required")
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with /", p)
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || r == '?' || r == '#' || r == '%' || r == '\\' {
			return fmt.Errorf("%q contains a character that is not allowed", p)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%q must not contain . or .. segments", p)
		}
	}
	if strings.Contains(p, "//") {
		return fmt.Errorf("%q must not contain //", p)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
