package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	errNoHealthy = errors.New("no healthy upstream target")
	errSaturated = errors.New("all upstream targets are at their request limit")
)

// target is one upstream server. Its counters are shared by every request
// routed to it, across config reloads that keep it.
type target struct {
	url       *url.URL
	key       string // URL plus transport settings; equal keys are reused on reload
	pool      string
	transport *http.Transport
	fast      *h1Pool // bodiless GET/HEAD to plain-HTTP targets; nil for https
	log       *slog.Logger
	m         *metrics

	inflight     atomic.Int64
	healthy      atomic.Bool  // verdict of the active health check
	failures     atomic.Int64 // consecutive connection failures
	ejectedUntil atomic.Int64 // unix nanoseconds; passive ejection
	draining     atomic.Bool

	stopHealth context.CancelFunc
	codes      sync.Map // int -> prometheus.Counter of upstream responses
}

func (t *target) countResponse(code int) {
	v, ok := t.codes.Load(code)
	if !ok {
		v = t.m.upstreamResp.WithLabelValues(t.pool, t.url.Host, statusLabel(code))
		t.codes.Store(code, v)
	}
	v.(prometheus.Counter).Inc()
}

// available reports whether t may take a new request now.
func (t *target) available(now time.Time) bool {
	return t.healthy.Load() && !t.draining.Load() && now.UnixNano() >= t.ejectedUntil.Load()
}

// up is the state exported as the health gauge.
func (t *target) up() bool { return t.available(time.Now()) }

func (t *target) acquire(limit int) bool {
	n := t.inflight.Add(1)
	if limit > 0 && n > int64(limit) {
		t.inflight.Add(-1)
		return false
	}
	return true
}

func (t *target) release() { t.inflight.Add(-1) }

// pool balances requests over its targets and implements http.RoundTripper
// for the ReverseProxy.
type pool struct {
	name    string
	spec    PoolSpec
	targets []*target
	rr      atomic.Uint64
	m       *metrics
	// plainHTTP: every target speaks plain HTTP, so the HTTP/1.1 fast path
	// (fast.go) can serve the pool's bodiless GET and HEAD requests.
	plainHTTP bool
}

func transportKey(raw string, t TransportSpec) string {
	return fmt.Sprintf("%s|%v|%v|%d|%v|%v", raw, t.DialTimeout, t.ResponseHeaderTimeout,
		t.MaxIdleConnsPerHost, t.IdleConnTimeout, t.ExpectContinueTimeout)
}

func newTarget(poolName, raw string, spec PoolSpec, m *metrics, log *slog.Logger) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", raw, err)
	}
	ts := spec.Transport
	dialer := &net.Dialer{Timeout: ts.DialTimeout, KeepAlive: 30 * time.Second}
	t := &target{
		url:  u,
		key:  transportKey(raw, ts),
		pool: poolName,
		log:  log.With("pool", poolName, "target", u.Host),
		m:    m,
		transport: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConnsPerHost:   ts.MaxIdleConnsPerHost,
			IdleConnTimeout:       ts.IdleConnTimeout,
			ResponseHeaderTimeout: ts.ResponseHeaderTimeout,
			ExpectContinueTimeout: ts.ExpectContinueTimeout,
			TLSHandshakeTimeout:   ts.DialTimeout,
			// The client's Accept-Encoding is passed through untouched; the
			// proxy must never decompress on its behalf.
			DisableCompression: true,
			// Larger buffers mean fewer syscalls on multi-gigabyte transfers.
			WriteBufferSize: 64 << 10,
			ReadBufferSize:  64 << 10,
		},
	}
	if u.Scheme == "http" {
		t.fast = newH1Pool(u.Host, ts)
	}
	t.healthy.Store(true)
	return t, nil
}

// startHealth runs active health checks until stopped.
func (t *target) startHealth(hc HealthCheckSpec) {
	if hc.Path == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.stopHealth = cancel
	checkURL := t.url.JoinPath(hc.Path).String()
	go func() {
		var ok, bad int
		tick := time.NewTicker(hc.Interval)
		defer tick.Stop()
		for {
			if err := t.check(ctx, checkURL, hc.Timeout); err != nil {
				if ctx.Err() != nil {
					return
				}
				ok, bad = 0, bad+1
				if bad >= hc.UnhealthyThreshold && t.healthy.Swap(false) {
					t.log.Warn("upstream unhealthy", "err", err)
				}
			} else {
				ok, bad = ok+1, 0
				if ok >= hc.HealthyThreshold && !t.healthy.Swap(true) {
					t.log.Info("upstream healthy")
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

func (t *target) check(ctx context.Context, checkURL string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, checkURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "velox-proxy-healthcheck")
	resp, err := t.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("health check: status %d", resp.StatusCode)
	}
	return nil
}

// drain stops sending new requests to t and closes its connections once
// the requests in flight have finished.
func (t *target) drain() {
	if t.draining.Swap(true) {
		return
	}
	if t.stopHealth != nil {
		t.stopHealth()
	}
	t.log.Info("draining upstream target", "in_flight", t.inflight.Load())
	go func() {
		for t.inflight.Load() > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		t.closeIdle(true)
		t.m.forgetTarget(t.pool, t.url.Host)
		t.log.Info("upstream target drained")
	}()
}

func (t *target) closeIdle(final bool) {
	t.transport.CloseIdleConnections()
	if t.fast != nil {
		t.fast.closeIdle(final)
	}
}

func (t *target) passiveFailure(p PassiveSpec) {
	if n := t.failures.Add(1); n >= int64(p.MaxFailures) {
		if t.ejectedUntil.Swap(time.Now().Add(p.Cooldown).UnixNano()) < time.Now().UnixNano() {
			t.log.Warn("upstream ejected", "consecutive_failures", n, "cooldown", p.Cooldown)
		}
	}
}

// othersAvailable reports whether a target other than t may take requests
// now, so that ejecting t for its answers still leaves the pool serving.
func (p *pool) othersAvailable(t *target) bool {
	now := time.Now()
	for _, o := range p.targets {
		if o != t && o.available(now) {
			return true
		}
	}
	return false
}

func (t *target) passiveSuccess() {
	if t.failures.Load() != 0 {
		t.failures.Store(0)
	}
}

// pick reserves the best available target not in tried.
func (p *pool) pick(tried []*target) (*target, error) {
	n := len(p.targets)
	start := int(p.rr.Add(1) % uint64(n))
	now := time.Now()
	limit := p.spec.MaxRequestsPerTarget
	saturated := false
	for {
		var best *target
		for i := range n {
			t := p.targets[(start+i)%n]
			if !t.available(now) || contains(tried, t) {
				continue
			}
			if limit > 0 && t.inflight.Load() >= int64(limit) {
				saturated = true
				continue
			}
			if p.spec.Balance == "round_robin" {
				best = t
				break
			}
			if best == nil || t.inflight.Load() < best.inflight.Load() {
				best = t
			}
		}
		if best == nil {
			if saturated {
				return nil, errSaturated
			}
			return nil, errNoHealthy
		}
		if best.acquire(limit) {
			return best, nil
		}
		// Lost a race for the last slot; look again.
		tried = append(tried[:len(tried):len(tried)], best)
	}
}

func contains(ts []*target, t *target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// RoundTrip implements http.RoundTripper. It sends req to a target and, when
// the exchange failed before a response arrived, retries on another target
// if that cannot duplicate a side effect: bodiless GET, HEAD and OPTIONS
// requests always, other requests only when the connection could not be
// opened and no byte of their body was consumed.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	info := infoFrom(req.Context())
	replayable := (req.Body == nil || req.Body == http.NoBody) &&
		(req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodOptions)
	var guard *bodyGuard
	if req.Body != nil && req.Body != http.NoBody {
		guard = &bodyGuard{r: req.Body}
		req.Body = guard
	}
	var resp *http.Response
	err := p.attempts(req.Method, func(t *target, attempt int) error {
		out := req
		if attempt > 0 {
			out = req.Clone(req.Context())
		}
		out.URL.Scheme = t.url.Scheme
		out.URL.Host = t.url.Host
		if info != nil && info.route != nil && info.route.HostHeader == "upstream" {
			out.Host = t.url.Host
		}
		if info != nil {
			info.target = t.url.Host
		}
		var err error
		resp, err = p.send(t, out, info)
		if err == nil {
			p.answered(t, resp.StatusCode)
		}
		return err
	}, func(err error) (stop, counts bool) {
		if req.Context().Err() != nil {
			return true, false // the client left, or the route's time ran out
		}
		repeatable := replayable || (guard != nil && guard.n.Load() == 0 && isDialError(err))
		return !repeatable, true
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// attempts runs try on a target picked from p and, while it fails and the
// retries allow, on other targets; the HTTP/2 path and the HTTP/1.1 fast
// path share these rules. On success the target is still acquired, for
// try's caller to release. After a failure, stop reports whether another
// target must not be tried (a request that cannot be repeated, a request
// out of time) and counts whether the failure counts against the target
// (not when the request ran out of time). The error is try's last one, or
// pick's when no target was left to try at all.
func (p *pool) attempts(method string, try func(t *target, attempt int) error, stop func(err error) (stop, counts bool)) error {
	var tried []*target
	var lastErr error
	for attempt := 0; ; attempt++ {
		t, err := p.pick(tried)
		if err != nil {
			if lastErr != nil {
				return lastErr
			}
			return err
		}
		err = try(t, attempt)
		if err == nil {
			return nil
		}
		t.release()
		halt, counts := stop(err)
		if counts {
			t.passiveFailure(p.spec.Passive)
			p.m.upstreamError(p.name, t.url.Host)
		}
		lastErr = err
		if halt || attempt >= *p.spec.Retries {
			return err
		}
		t.log.Debug("retrying on another target", "method", method, "err", err)
		tried = append(tried, t)
	}
}

// answered records that t answered with code, for passive ejection and
// the metrics.
func (p *pool) answered(t *target, code int) {
	if !p.spec.Passive.failureStatus(code) {
		t.passiveSuccess()
	} else if p.othersAvailable(t) {
		t.passiveFailure(p.spec.Passive)
	}
	t.countResponse(code)
}

// send performs one attempt on t, which the caller has acquired. On success
// the target is released when the response body is closed.
func (p *pool) send(t *target, req *http.Request, info *reqInfo) (*http.Response, error) {
	var cancel context.CancelFunc
	var timer *time.Timer
	if info != nil && info.route != nil && info.route.HeaderTimeout > 0 {
		// The timer only guards the wait for headers; once they are in, the
		// body may take as long as it takes.
		var ctx context.Context
		ctx, cancel = context.WithCancel(req.Context())
		timer = time.AfterFunc(info.route.HeaderTimeout, cancel)
		req = req.WithContext(ctx)
	}
	var rt http.RoundTripper = t.transport
	if t.fast != nil && fastPathOK(req) {
		rt = t.fast
	}
	resp, err := rt.RoundTrip(req)
	if timer != nil && !timer.Stop() && err != nil {
		err = fmt.Errorf("%w: %w", errHeaderTimeout, err)
	}
	if err != nil {
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	done := func() {
		t.release()
		if cancel != nil {
			cancel()
		}
	}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &releaseRWC{ReadWriteCloser: rwc, done: done}
	} else {
		resp.Body = &releaseBody{ReadCloser: resp.Body, done: done}
	}
	return resp, nil
}

var errHeaderTimeout = errors.New("upstream response header timeout")

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// bodyGuard counts bytes taken from a request body, so a retry can tell
// whether the body is still intact, and leaves closing the body to the
// server, so that a failed attempt does not destroy it.
type bodyGuard struct {
	r io.ReadCloser
	n atomic.Int64
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.n.Add(int64(n))
	return n, err
}

func (g *bodyGuard) Close() error { return nil }

// releaseBody runs done once when the response body is closed, which the
// ReverseProxy does after the last byte was copied or the client left.
type releaseBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// releaseRWC is releaseBody for upgraded (101) connections, which the
// ReverseProxy needs to write to.
type releaseRWC struct {
	io.ReadWriteCloser
	once sync.Once
	done func()
}

func (b *releaseRWC) Close() error {
	err := b.ReadWriteCloser.Close()
	b.once.Do(b.done)
	return err
}

func statusLabel(code int) string { return strconv.Itoa(code) }
