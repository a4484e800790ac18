package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// reqInfo travels with a request through the ReverseProxy and the pool, and
// ends up in the access log.
type reqInfo struct {
	route     *route
	target    string // last upstream tried
	requestID string
	client    netip.Addr // client address after trusted-proxy resolution
	remote    netip.Addr // peer address
	trusted   bool       // peer is a trusted proxy
	proto     string     // "https" or "http"
	reason    string     // why the proxy answered with an error itself
	bodySlow  atomic.Bool
	bytesIn   atomic.Int64
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	info, _ := ctx.Value(infoKey{}).(*reqInfo)
	return info
}

// ServeHTTP implements http.Handler for the HTTPS listener.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := p.state.Load()
	if r.TLS == nil {
		// A connection the HTTP/1.1 fast path handed over (fast.go).
		if cs, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
			r.TLS = cs
		}
	}
	info := &reqInfo{proto: "http"}
	if r.TLS != nil {
		info.proto = "https"
	}
	info.remote, info.trusted, info.client = resolveClient(r, st.trusted)
	if id := r.Header.Get("X-Request-ID"); info.trusted && validRequestID(id) {
		info.requestID = id
	} else {
		info.requestID = p.newRequestID()
	}
	w.Header().Set("X-Request-ID", info.requestID)
	if st.hsts != "" && r.TLS != nil {
		w.Header().Set("Strict-Transport-Security", st.hsts)
	}
	rw := &responseWriter{ResponseWriter: w}
	defer func() {
		// The ReverseProxy aborts with http.ErrAbortHandler when a copy fails
		// mid-stream; log the request anyway and let the panic continue.
		rec := recover()
		if rec != nil {
			info.reason = "aborted"
			if rw.status == 0 {
				rw.status = 499
			}
		}
		p.finish(r, rw, info, start)
		if rec != nil {
			panic(rec)
		}
	}()

	if r.URL.Path == st.cfg.HealthPath {
		rw.Header().Set("Cache-Control", "no-store")
		io.WriteString(rw, "ok\n")
		return
	}
	if st.rate != nil && !st.rate.allow(info.client) {
		p.m.limited.WithLabelValues("rate").Inc()
		p.fail(rw, info, http.StatusTooManyRequests, "rate_limited")
		return
	}
	if hasDotSegment(r.URL.Path) || !strings.HasPrefix(r.URL.Path, "/") {
		p.fail(rw, info, http.StatusBadRequest, "bad_path")
		return
	}
	rt := st.routes.match(r.Host, r.URL.Path)
	if rt == nil {
		p.fail(rw, info, http.StatusNotFound, "no_route")
		return
	}
	info.route = rt
	if rt.MaxBodyBytes > 0 && r.ContentLength > rt.MaxBodyBytes {
		p.fail(rw, info, http.StatusRequestEntityTooLarge, "body_too_large")
		return
	}
	ctx := context.WithValue(r.Context(), infoKey{}, info)
	if rt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.Timeout)
		defer cancel()
	}
	// Wrap the body of a copy: the server inspects the original request's
	// body after the handler (for 100-continue and keep-alive decisions).
	r = r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		if rt.MaxBodyBytes > 0 {
			r.Body = http.MaxBytesReader(rw, r.Body, rt.MaxBodyBytes)
		}
		r.Body = &clientBody{
			r: r.Body, rc: http.NewResponseController(w), info: info,
			minRate: st.cfg.Limits.BodyMinRate, grace: st.cfg.Limits.BodyGrace,
		}
	}
	rt.m.inflight.Inc()
	defer rt.m.inflight.Dec()
	rt.rp.ServeHTTP(rw, r)
}

// finish writes the access log line and the request metrics.
func (p *Proxy) finish(r *http.Request, rw *responseWriter, info *reqInfo, start time.Time) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	p.record(r.Context(), logRequest{method: r.Method, host: r.Host, path: r.URL.Path, proto: r.Proto},
		rw.status, rw.bytes, info, start)
}

// logRequest is what the access log says of a request.
type logRequest struct{ method, host, path, proto string }

// record writes the access log line and the request metrics of a request
// answered with status and bytesOut body bytes.
func (p *Proxy) record(ctx context.Context, r logRequest, status int, bytesOut int64, info *reqInfo, start time.Time) {
	d := time.Since(start)
	rm := p.noRoute
	if info.route != nil {
		rm = info.route.m
	}
	routeName, upstream := rm.route, rm.upstream
	rm.code(status).Inc()
	rm.duration.Observe(d.Seconds())
	if n := info.bytesIn.Load(); n > 0 {
		rm.bytesIn.Add(float64(n))
	}
	if bytesOut > 0 {
		rm.bytesOut.Add(float64(bytesOut))
	}
	if info.reason != "" {
		p.m.errors.WithLabelValues(routeName, upstream, info.reason).Inc()
	}
	if p.access == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.method),
		slog.String("host", r.host),
		slog.String("path", r.path),
		slog.String("proto", r.proto),
		slog.String("route", routeName),
		slog.String("upstream", upstream),
		slog.String("target", info.target),
		slog.Int("status", status),
		slog.Int64("bytes_in", info.bytesIn.Load()),
		slog.Int64("bytes_out", bytesOut),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("request_id", info.requestID),
		slog.String("client_ip", info.client.String()),
	}
	if info.reason != "" {
		attrs = append(attrs, slog.String("error", info.reason))
	}
	p.access.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// fail answers with an error status generated by the proxy itself.
func (p *Proxy) fail(w http.ResponseWriter, info *reqInfo, code int, reason string) {
	info.reason = reason
	if ra := retryAfter(code); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	http.Error(w, strconv.Itoa(code)+" "+http.StatusText(code), code)
}

// retryAfter is the Retry-After the proxy sends with its own answers: soon
// for a rate limit, a little later for a pool without capacity.
func retryAfter(code int) string {
	switch code {
	case http.StatusTooManyRequests:
		return "1"
	case http.StatusServiceUnavailable:
		return "5"
	}
	return ""
}

// upstreamFailure maps an exchange that got no answer from the pool to the
// proxy's own status and the reason it logs, and warns of the unexpected
// ones (not a full pool or a timeout).
func (p *Proxy) upstreamFailure(info *reqInfo, err error) (code int, reason string) {
	switch {
	case errors.Is(err, errSaturated):
		return http.StatusServiceUnavailable, "upstream_saturated"
	case errors.Is(err, errNoHealthy):
		return http.StatusServiceUnavailable, "no_healthy_upstream"
	case errors.Is(err, errHeaderTimeout) || errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "upstream_timeout"
	}
	p.log.Warn("upstream request failed", "request_id", info.requestID, "target", info.target, "err", err)
	return http.StatusBadGateway, "upstream_error"
}

// defaultFlushInterval bounds how long response bytes may wait in the
// proxy's buffers when the upstream pauses: without a periodic flush the
// tail of a stalled download (or of a slow upstream) would sit in the
// proxy until the upstream sent more.
const defaultFlushInterval = 100 * time.Millisecond

func (p *Proxy) newReverseProxy(rt *route) *httputil.ReverseProxy {
	flush := rt.FlushInterval
	if flush == 0 {
		flush = defaultFlushInterval
	}
	return &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { rewrite(pr, rt) },
		Transport:     rt.pool,
		FlushInterval: flush,
		BufferPool:    p.bufPool,
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ErrorHandler:  p.proxyError,
	}
}

// rewrite prepares the upstream request: path rewriting, forwarding
// headers, request ID and Host.
func rewrite(pr *httputil.ProxyRequest, rt *route) {
	info := infoFrom(pr.In.Context())
	out := pr.Out
	rt.rewriteURL(out.URL)

	// The ReverseProxy has already removed the client's forwarding headers
	// from Out; a trusted proxy's are carried over and extended.
	peer := info.remote.String()
	xff, fwd := peer, forwardedElement(info.remote, pr.In.Host, info.proto)
	proto, host := info.proto, pr.In.Host
	if info.trusted {
		if prior := strings.Join(pr.In.Header.Values("X-Forwarded-For"), ", "); prior != "" {
			xff = prior + ", " + xff
		}
		if prior := strings.Join(pr.In.Header.Values("Forwarded"), ", "); prior != "" {
			fwd = prior + ", " + fwd
		}
		if v := pr.In.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
		if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
	}
	out.Header.Set("X-Forwarded-For", xff)
	out.Header.Set("Forwarded", fwd)
	out.Header.Set("X-Forwarded-Proto", proto)
	out.Header.Set("X-Forwarded-Host", host)
	out.Header.Set("X-Request-ID", info.requestID)
	for k, v := range rt.pool.spec.Headers {
		out.Header.Set(k, v)
	}
	switch rt.HostHeader {
	case "", "preserve", "upstream":
		// "upstream" is set per attempt by the pool, which picks the target.
	default:
		out.Host = rt.HostHeader
	}
}

// forwardedElement is one RFC 7239 element for this hop.
func forwardedElement(client netip.Addr, host, proto string) string {
	forNode := client.String()
	if client.Is6() {
		forNode = `"[` + forNode + `]"`
	}
	return "for=" + forNode + ";host=" + quoteIfNeeded(host) + ";proto=" + proto
}

func quoteIfNeeded(v string) string {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return strconv.Quote(v)
		}
	}
	return v
}

// resolveClient returns the peer address, whether it is a trusted proxy,
// and the client address: for trusted peers the right-most address in
// X-Forwarded-For that is not itself a trusted proxy.
func resolveClient(r *http.Request, trusted []netip.Prefix) (remote netip.Addr, isTrusted bool, client netip.Addr) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false, netip.Addr{}
	}
	remote = ap.Addr().Unmap()
	isTrusted = inPrefixes(remote, trusted)
	if !isTrusted {
		return remote, false, remote
	}
	return remote, true, clientFromXFF(strings.Join(r.Header.Values("X-Forwarded-For"), ","), remote, trusted)
}

// clientFromXFF returns the right-most address in the X-Forwarded-For
// values xff (joined with commas) that is not itself a trusted proxy,
// starting from the trusted peer remote.
func clientFromXFF(xff string, remote netip.Addr, trusted []netip.Prefix) netip.Addr {
	client := remote
	hops := strings.Split(xff, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap()
		if !inPrefixes(client, trusted) {
			break
		}
	}
	return client
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// proxyError maps a failed upstream exchange to a status.
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	info := infoFrom(r.Context())
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		p.fail(w, info, http.StatusRequestEntityTooLarge, "body_too_large")
	case info.bodySlow.Load():
		p.fail(w, info, http.StatusRequestTimeout, "body_too_slow")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this, but the log should say so.
		info.reason = "client_gone"
		w.WriteHeader(499)
	default:
		code, reason := p.upstreamFailure(info, err)
		p.fail(w, info, code, reason)
	}
}

// responseWriter records the status and body size. Unwrap lets
// http.ResponseController reach Flush and Hijack underneath.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the zero-copy path of the underlying writer, if any.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

func (w *responseWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// clientBody counts the request body and enforces a minimum upload rate:
// after the grace period the client must have sent minRate bytes per second
// on average, measured from the first read (so waiting for the upstream's
// 100 Continue does not count against it). This cuts off slowloris bodies.
type clientBody struct {
	r       io.ReadCloser
	rc      *http.ResponseController
	info    *reqInfo
	minRate int64
	grace   time.Duration
	start   time.Time
	done    bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.minRate > 0 {
		if b.start.IsZero() {
			b.start = time.Now()
		}
		n := b.info.bytesIn.Load()
		deadline := b.start.Add(b.grace + time.Duration(n*int64(time.Second)/b.minRate))
		b.rc.SetReadDeadline(deadline)
	}
	n, err := b.r.Read(p)
	b.info.bytesIn.Add(int64(n))
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
			b.info.bodySlow.Store(true)
		}
		if err == io.EOF {
			b.done = true
			if b.minRate > 0 {
				// The server reads ahead on the connection once the body is
				// done; our deadline must not cut the response short.
				b.rc.SetReadDeadline(time.Time{})
			}
		}
	}
	return n, err
}

func (b *clientBody) Close() error { return b.r.Close() }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bufferPool reuses the ReverseProxy's copy buffers, so streaming large
// bodies allocates nothing per request.
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 64 << 10

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}}
}

func (b *bufferPool) Get() []byte { return *(b.p.Get().(*[]byte)) }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == copyBufferSize {
		b.p.Put(&buf)
	}
}
