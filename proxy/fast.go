package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fastServer runs the HTTPS listener. It does the TLS handshakes itself and
// serves plain HTTP/1.1 GET and HEAD requests on routes to plain-HTTP pools
// in a loop of its own; every other connection (HTTP/2) or request (bodies,
// upgrades, unusual headers, errors answered by the proxy) goes to the
// net/http server, together with the rest of its connection.
//
// Why: small requests are most of what a file-sharing front end carries
// (listings, thumbnails, sync polls), and profiles put half of the proxy's
// CPU per request into net/http's general machinery: the request and
// header maps, the ReverseProxy's copies of them, a background read
// goroutine and its deadlines per request. This loop reads the head from
// its buffer, writes the upstream request straight from it and copies the
// response head line by line. The parsers in fasthead.go accept only the
// plain form of a message, so net/http's hardening still decides everything
// unusual. Setting http1_fast_path: false serves everything with net/http.
type fastServer struct {
	p       *Proxy
	l       net.Listener
	tlsCfg  *tls.Config
	handoff *handoffListener // HTTP/1.1 connections, to srv
	h2      *handoffListener // HTTP/2 connections, to h2srv

	readHeader time.Duration
	idle       time.Duration

	served   atomic.Int64 // requests answered by the fast path
	shutting atomic.Bool
	mu       sync.Mutex
	conns    map[*fastConn]struct{}
	done     chan struct{} // closed when the accept loop has returned
}

// Connection states for graceful shutdown: an idle connection waits for
// the next request and may be closed; an active one is finished first.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

type fastConn struct {
	s      *fastServer
	out    *batchedTLS // the TLS connection, its writes batched
	br     *bufio.Reader
	bw     *bufio.Writer
	remote netip.Addr
	state  atomic.Int32
	req    fastRequest
	resp   fastResponse
}

// fastReadBuffer is the read buffer per connection; a request head must fit
// in it to take the fast path (larger ones go to net/http, which applies
// max_header_bytes).
const fastReadBuffer = 4 << 10

var fastWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}

// newFastServer returns the listener's loop. Connections it hands over go
// to srv (HTTP/1.1) and h2srv (HTTP/2); both must be served on the
// fastServer's handoff and h2 listeners.
func newFastServer(p *Proxy, l net.Listener, tlsCfg *tls.Config, srv, h2srv *http.Server, limits LimitsConfig) *fastServer {
	s := &fastServer{
		p: p, l: l, tlsCfg: tlsCfg,
		handoff:    &handoffListener{addr: l.Addr(), ch: make(chan net.Conn), closed: make(chan struct{})},
		h2:         &handoffListener{addr: l.Addr(), ch: make(chan net.Conn), closed: make(chan struct{})},
		readHeader: limits.ReadHeaderTimeout,
		idle:       limits.IdleTimeout,
		conns:      map[*fastConn]struct{}{},
		done:       make(chan struct{}),
	}
	// Connections handed over are not *tls.Conn; their TLS state travels
	// in the connection's context. HTTP/2 connections come without a
	// ConnectionState method, which is what lets net/http serve them as
	// prior-knowledge HTTP/2 on a connection it did not set up itself
	// (see batchedTLS); h2srv serves nothing else, so a client that
	// negotiated h2 and sends anything but HTTP/2 is refused.
	withTLSState := func(ctx context.Context, c net.Conn) context.Context {
		if c, ok := c.(interface{ tlsState() *tls.ConnectionState }); ok { // batchedTLS, handoffConn
			return context.WithValue(ctx, tlsStateKey{}, c.tlsState())
		}
		return ctx
	}
	srv.ConnContext = withTLSState
	var h2only http.Protocols
	h2only.SetUnencryptedHTTP2(true)
	h2srv.Protocols = &h2only
	h2srv.ConnContext = withTLSState
	return s
}

type tlsStateKey struct{}

// serve accepts connections until the listener is closed.
func (s *fastServer) serve() error {
	defer close(s.done)
	var delay time.Duration
	for {
		c, err := s.l.Accept()
		if err != nil {
			if s.shutting.Load() || errors.Is(err, net.ErrClosed) {
				return http.ErrServerClosed
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.p.log.Warn("accept failed; retrying", "err", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go s.serveConn(c)
	}
}

func (s *fastServer) serveConn(raw net.Conn) {
	bc := newBatchConn(raw)
	tc := tls.Server(bc, s.tlsCfg)
	if s.readHeader > 0 {
		tc.SetDeadline(time.Now().Add(s.readHeader))
	}
	if err := tc.Handshake(); err != nil {
		s.p.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	out := newBatchedTLS(tc, bc)
	if out.state.NegotiatedProtocol == "h2" {
		if !s.h2.give(out) {
			out.Close()
		}
		return
	}
	c := &fastConn{s: s, out: out, br: bufio.NewReaderSize(tc, fastReadBuffer)}
	if ap, err := netip.ParseAddrPort(raw.RemoteAddr().String()); err == nil {
		c.remote = ap.Addr().Unmap()
	}
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		tc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	handedOff := c.serve()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if handedOff {
		s.handOff(&handoffConn{batchedTLS: out, br: c.br})
	} else {
		tc.Close()
	}
}

func (s *fastServer) handOff(c net.Conn) {
	if !s.handoff.give(c) {
		c.Close()
	}
}

// serve runs the request loop. It returns true when the connection is to
// be handed to net/http, with the unread bytes still in c.br.
func (c *fastConn) serve() (handOff bool) {
	first := true
	for {
		if !first && c.br.Buffered() == 0 {
			// Between requests the idle timeout applies, as in net/http.
			if c.s.idle > 0 {
				c.out.SetReadDeadline(time.Now().Add(c.s.idle))
			}
			if _, err := c.br.Peek(1); err != nil {
				return false
			}
		}
		first = false
		if !c.state.CompareAndSwap(connIdle, connActive) {
			return false // shutdown closed it
		}
		if c.s.readHeader > 0 {
			c.out.SetReadDeadline(time.Now().Add(c.s.readHeader))
		}
		head, err := c.readHead()
		if err != nil {
			return errors.Is(err, errNotFast)
		}
		if err := parseFastRequest(head, &c.req); err != nil {
			return true
		}
		c.out.SetReadDeadline(time.Time{})
		keep, served := c.serveRequest()
		if !served {
			return true
		}
		c.br.Discard(c.req.head)
		if !keep || c.s.shutting.Load() {
			return false
		}
		c.state.Store(connIdle)
		if c.s.shutting.Load() && c.state.CompareAndSwap(connIdle, connClosed) {
			return false
		}
	}
}

// readHead returns the buffered bytes up to the end of the next request
// head, reading as needed; errNotFast when the head does not fit the
// buffer.
func (c *fastConn) readHead() ([]byte, error) {
	for {
		b, _ := c.br.Peek(c.br.Buffered())
		if n := findHeadEnd(b); n >= 0 {
			return b[:n], nil
		}
		if c.br.Buffered() >= c.br.Size() {
			return nil, errNotFast
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return nil, err // closed, or timed out: net/http would close too
		}
	}
}

// serveRequest proxies c.req. It returns served=false, having written
// nothing, when the request must go to net/http instead; keep reports
// whether the connection can carry another request.
func (c *fastConn) serveRequest() (keep, served bool) {
	start := time.Now()
	p := c.s.p
	st := p.state.Load()
	req := &c.req
	u, err := url.ParseRequestURI(string(req.target))
	if err != nil || !strings.HasPrefix(u.Path, "/") || u.Path == st.cfg.HealthPath || hasDotSegment(u.Path) {
		return false, false
	}
	host := string(req.host)
	rt := st.routes.match(host, u.Path)
	if rt == nil || !rt.pool.plainHTTP {
		return false, false
	}
	info := &reqInfo{route: rt, proto: "https", remote: c.remote}
	info.trusted = inPrefixes(c.remote, st.trusted)
	info.client = c.remote
	var xffPrior, fwdPrior, protoPrior, hostPrior, idPrior string
	if info.trusted {
		xffPrior, fwdPrior = joinHeader(req.headers, "X-Forwarded-For"), joinHeader(req.headers, "Forwarded")
		protoPrior, hostPrior = firstHeader(req.headers, "X-Forwarded-Proto"), firstHeader(req.headers, "X-Forwarded-Host")
		idPrior = firstHeader(req.headers, "X-Request-ID")
		info.client = clientFromXFF(xffPrior, c.remote, st.trusted)
	}
	if validRequestID(idPrior) {
		info.requestID = idPrior
	} else {
		info.requestID = p.newRequestID()
	}
	c.s.served.Add(1)
	bw := fastWriters.Get().(*bufio.Writer)
	bw.Reset(c.out)
	c.bw = bw
	defer func() {
		c.bw = nil
		bw.Reset(nil)
		fastWriters.Put(bw)
	}()
	status, bytesOut := 0, int64(0)
	if st.rate != nil && !st.rate.allow(info.client) {
		p.m.limited.WithLabelValues("rate").Inc()
		status, keep = c.writeError(st, info, http.StatusTooManyRequests, "rate_limited")
	} else {
		rt.m.inflight.Inc()
		rt.rewriteURL(u)
		fw := forwarding{
			uri: u.RequestURI(), xff: xffPrior, fwd: fwdPrior, proto: protoPrior, host: hostPrior,
		}
		status, bytesOut, keep = c.forward(st, rt, info, &fw)
		rt.m.inflight.Dec()
	}
	method := "GET"
	if string(req.method) == "HEAD" {
		method = "HEAD"
	}
	p.record(context.Background(), logRequest{method: method, host: host, path: u.Path, proto: "HTTP/1.1"},
		status, bytesOut, info, start)
	return keep && !req.close, true
}

// forwarding holds what the upstream request carries besides the client's
// own headers.
type forwarding struct {
	uri                   string
	xff, fwd, proto, host string // prior values from a trusted proxy
}

// forward sends the request to the route's pool, retrying on other targets
// by the pool's rules (pool.attempts; the fast path carries only bodiless
// GET and HEAD, which are always safe to repeat), and copies the response
// to the client. It returns the status sent, the body bytes sent, and
// whether the client connection is still usable.
func (c *fastConn) forward(st *state, rt *route, info *reqInfo, fw *forwarding) (status int, bytesOut int64, keep bool) {
	pl := rt.pool
	start := time.Now()
	var deadline time.Time
	if rt.Timeout > 0 {
		deadline = start.Add(rt.Timeout)
	}
	var t *target
	var uc *h1Conn
	err := pl.attempts(string(c.req.method), func(try *target, _ int) (err error) {
		info.target = try.url.Host
		t = try
		uc, err = c.exchange(try, rt, info, fw, deadline)
		return err
	}, func(error) (stop, counts bool) {
		expired := !deadline.IsZero() && !time.Now().Before(deadline)
		return expired, !expired
	})
	if err != nil {
		return c.failUpstream(st, info, err)
	}
	pl.answered(t, c.resp.status)
	status, bytesOut, keep = c.copyResponse(st, info, t, uc)
	t.release()
	return status, bytesOut, keep
}

// exchange writes the request to t and reads the response head into
// c.resp. A kept-alive connection that the target closed just as it was
// reused is replaced by a new one, as in h1Pool.RoundTrip.
func (c *fastConn) exchange(t *target, rt *route, info *reqInfo, fw *forwarding, deadline time.Time) (*h1Conn, error) {
	ctx := context.Background()
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	headDeadline := deadline
	now := time.Now()
	for _, d := range []time.Duration{rt.HeaderTimeout, t.fast.respHeaderTimeout} {
		if d > 0 && (headDeadline.IsZero() || now.Add(d).Before(headDeadline)) {
			headDeadline = now.Add(d)
		}
	}
	for {
		uc, reused, err := t.fast.get(ctx)
		if err != nil {
			return nil, err
		}
		uc.nc.SetWriteDeadline(deadline)
		uc.nc.SetReadDeadline(headDeadline)
		c.writeUpstreamRequest(uc.bw, t, rt, info, fw)
		err = uc.bw.Flush()
		if err == nil {
			err = c.readResponseHead(uc)
		}
		if err == nil {
			uc.nc.SetReadDeadline(deadline)
			return uc, nil
		}
		uc.nc.Close()
		if reused && uc.br.Buffered() == 0 && !isTimeout(err) && !errors.Is(err, errBadResponse) {
			continue
		}
		if isTimeout(err) {
			err = fmt.Errorf("%w: %w", errHeaderTimeout, err)
		}
		return nil, err
	}
}

func (c *fastConn) writeUpstreamRequest(bw *bufio.Writer, t *target, rt *route, info *reqInfo, fw *forwarding) {
	req := &c.req
	bw.Write(req.method)
	bw.WriteByte(' ')
	bw.WriteString(fw.uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	switch rt.HostHeader {
	case "", "preserve":
		bw.Write(req.host)
	case "upstream":
		bw.WriteString(t.url.Host)
	default:
		bw.WriteString(rt.HostHeader)
	}
	bw.WriteString("\r\n")
	extra := rt.pool.spec.Headers
	for _, h := range req.headers {
		if isForwardingHeader(h.name) || (len(extra) > 0 && inHeaderMap(extra, h.name)) {
			continue
		}
		bw.Write(h.name)
		bw.WriteString(": ")
		bw.Write(h.value)
		bw.WriteString("\r\n")
	}
	peer := info.remote.String()
	bw.WriteString("X-Forwarded-For: ")
	if fw.xff != "" {
		bw.WriteString(fw.xff)
		bw.WriteString(", ")
	}
	bw.WriteString(peer)
	bw.WriteString("\r\nForwarded: ")
	if fw.fwd != "" {
		bw.WriteString(fw.fwd)
		bw.WriteString(", ")
	}
	bw.WriteString(forwardedElement(info.remote, string(req.host), info.proto))
	bw.WriteString("\r\nX-Forwarded-Proto: ")
	if fw.proto != "" {
		bw.WriteString(fw.proto)
	} else {
		bw.WriteString(info.proto)
	}
	bw.WriteString("\r\nX-Forwarded-Host: ")
	if fw.host != "" {
		bw.WriteString(fw.host)
	} else {
		bw.Write(req.host)
	}
	bw.WriteString("\r\nX-Request-ID: ")
	bw.WriteString(info.requestID)
	bw.WriteString("\r\n")
	for k, v := range extra {
		bw.WriteString(http.CanonicalHeaderKey(k))
		bw.WriteString(": ")
		bw.WriteString(v)
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

// Request headers the proxy replaces with its own, and hop-by-hop ones.
var forwardingHeaders = [][]byte{
	[]byte("X-Forwarded-For"), []byte("Forwarded"), []byte("X-Forwarded-Proto"),
	[]byte("X-Forwarded-Host"), []byte("X-Request-ID"), []byte("Keep-Alive"),
	[]byte("Proxy-Connection"), []byte("Proxy-Authorization"), []byte("Proxy-Authenticate"),
}

func isForwardingHeader(name []byte) bool {
	for _, h := range forwardingHeaders {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	return false
}

func inHeaderMap(m map[string]string, name []byte) bool {
	for k := range m {
		if bytes.EqualFold(name, []byte(k)) {
			return true
		}
	}
	return false
}

// readResponseHead reads the final response head into c.resp, skipping
// informational (1xx) responses as h1Pool does.
func (c *fastConn) readResponseHead(uc *h1Conn) error {
	for {
		var b []byte
		for {
			b, _ = uc.br.Peek(uc.br.Buffered())
			if findHeadEnd(b) >= 0 {
				break
			}
			if uc.br.Buffered() >= uc.br.Size() {
				return errBadResponse // a head larger than the buffer
			}
			if _, err := uc.br.Peek(uc.br.Buffered() + 1); err != nil {
				return err
			}
		}
		if err := parseFastResponse(b, &c.resp); err != nil {
			return err
		}
		if c.resp.status >= 200 {
			return nil
		}
		if c.resp.status == http.StatusSwitchingProtocols {
			return errBadResponse // not asked for
		}
		uc.br.Discard(c.resp.head)
	}
}

// copyResponse writes the response head from c.resp and copies the body.
// The upstream connection goes back to its pool when the body was read to
// its end and the exchange left it clean.
func (c *fastConn) copyResponse(st *state, info *reqInfo, t *target, uc *h1Conn) (status int, bytesOut int64, keep bool) {
	resp := &c.resp
	bw := c.bw
	status = resp.status
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(resp.status))
	bw.WriteByte(' ')
	if len(resp.reason) > 0 {
		bw.Write(resp.reason)
	} else {
		bw.WriteString(http.StatusText(resp.status))
	}
	bw.WriteString("\r\n")
	c.writeOwnHeaders(st, info)
	hasDate := false
	for _, h := range resp.headers {
		if resp.skipHeader(h.name) {
			continue
		}
		hasDate = hasDate || bytes.EqualFold(h.name, []byte("Date"))
		bw.Write(h.name)
		bw.WriteString(": ")
		bw.Write(h.value)
		bw.WriteString("\r\n")
	}
	if !hasDate {
		// RFC 9110 6.6.1: a proxy adds Date where the origin sent none.
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	body := resp.hasBody(c.req.method)
	reframe := body && resp.length < 0 // chunked, or until the upstream closes
	switch {
	case resp.length >= 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(resp.length, 10))
		bw.WriteString("\r\n")
	case reframe:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	keep = !c.req.close && !c.s.shutting.Load()
	if !keep {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	uc.br.Discard(resp.head)

	flush := bw.Flush
	var err error
	if body {
		buf := c.s.p.bufPool.Get()
		switch {
		case resp.chunked:
			bytesOut, err = copyChunked(bw, uc.br, buf, flush)
		case resp.length >= 0:
			bytesOut, err = copyN(bw, uc.br, resp.length, buf, flush)
		default:
			bytesOut, err = copyUntilClose(bw, uc.br, buf, flush)
			resp.close = true
		}
		c.s.p.bufPool.Put(buf)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// Half a response was sent: the client must see the connection
		// end, not a response that looks complete.
		info.reason = "aborted"
		uc.nc.Close()
		return status, bytesOut, false
	}
	if !resp.close && uc.br.Buffered() == 0 {
		uc.nc.SetDeadline(time.Time{})
		t.fast.put(uc)
	} else {
		uc.nc.Close()
	}
	return status, bytesOut, keep
}

// copyUntilClose copies a body delimited by the upstream closing the
// connection, as chunks, since the client connection stays open.
func copyUntilClose(dst *bufio.Writer, src *bufio.Reader, buf []byte, flush func() error) (int64, error) {
	var total int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			dst.WriteString(strconv.FormatInt(int64(k), 16))
			dst.WriteString("\r\n")
			dst.Write(buf[:k])
			if _, werr := dst.WriteString("\r\n"); werr != nil {
				return total, werr
			}
			total += int64(k)
			if src.Buffered() == 0 {
				if werr := flush(); werr != nil {
					return total, werr
				}
			}
		}
		if err == io.EOF {
			_, err = dst.WriteString("0\r\n\r\n")
			return total, err
		}
		if err != nil {
			return total, err
		}
	}
}

// writeOwnHeaders adds the headers the proxy sets on every response.
func (c *fastConn) writeOwnHeaders(st *state, info *reqInfo) {
	c.bw.WriteString("X-Request-ID: ")
	c.bw.WriteString(info.requestID)
	c.bw.WriteString("\r\n")
	if st.hsts != "" {
		c.bw.WriteString("Strict-Transport-Security: ")
		c.bw.WriteString(st.hsts)
		c.bw.WriteString("\r\n")
	}
}

// failUpstream answers for a request no target answered, with the status
// and body proxyError gives on the net/http path.
func (c *fastConn) failUpstream(st *state, info *reqInfo, err error) (int, int64, bool) {
	code, reason := c.s.p.upstreamFailure(info, err)
	code, keep := c.writeError(st, info, code, reason)
	return code, 0, keep
}

// writeError writes the proxy's own error response, as Proxy.fail does.
func (c *fastConn) writeError(st *state, info *reqInfo, code int, reason string) (int, bool) {
	info.reason = reason
	bw := c.bw
	body := strconv.Itoa(code) + " " + http.StatusText(code) + "\n"
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	c.writeOwnHeaders(st, info)
	if ra := retryAfter(code); ra != "" {
		bw.WriteString("Retry-After: ")
		bw.WriteString(ra)
		bw.WriteString("\r\n")
	}
	bw.WriteString("Date: ")
	bw.WriteString(httpDate())
	bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(body)))
	bw.WriteString("\r\n")
	keep := !c.req.close && !c.s.shutting.Load()
	if !keep {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if string(c.req.method) != "HEAD" {
		bw.WriteString(body)
	}
	if bw.Flush() != nil {
		return code, false
	}
	return code, keep
}

// shutdown stops accepting, closes idle connections and waits for active
// ones to finish their request, until ctx ends; then it closes the rest.
func (s *fastServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	s.mu.Unlock()
	s.l.Close()
	<-s.done
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for c := range s.conns {
			if c.state.CompareAndSwap(connIdle, connClosed) {
				c.out.tc.NetConn().Close()
			}
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.out.tc.NetConn().Close()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// handoffListener feeds connections from the fast path to net/http's
// server.
type handoffListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

// handoffConn is a TLS connection whose first bytes the fast path has
// already read into br.
type handoffConn struct {
	*batchedTLS
	br *bufio.Reader // nil once drained
}

func (c *handoffConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil
	}
	return c.batchedTLS.Read(p)
}

// dateCache holds the Date header value of the current second.
var dateCache atomic.Pointer[cachedDate]

type cachedDate struct {
	sec int64
	val string
}

func httpDate() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.val
	}
	d := &cachedDate{sec: now.Unix(), val: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.val
}

// joinHeader joins the values of every header line called name, as
// strings.Join(h.Values(name), ", ") would.
func joinHeader(hs []headerLine, name string) string {
	var out []byte
	for _, h := range hs {
		if bytes.EqualFold(h.name, []byte(name)) {
			if out != nil {
				out = append(out, ", "...)
			}
			out = append(out, h.value...)
		}
	}
	return string(out)
}

func firstHeader(hs []headerLine, name string) string {
	for _, h := range hs {
		if bytes.EqualFold(h.name, []byte(name)) {
			return string(h.value)
		}
	}
	return ""
}
