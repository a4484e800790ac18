package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// h1Pool sends bodiless GET and HEAD requests to one plain-HTTP target over
// pooled keep-alive connections, reading the response in the calling
// goroutine.
//
// Why not only http.Transport: it runs a reader and a writer goroutine per
// connection and hands every request and response across them, which on
// small responses costs more than the proxying itself (profiles show the
// goroutine wake-ups dominating). Requests with bodies, upgrades and TLS
// targets still use http.Transport, which handles early responses,
// 100-continue and protocol switches; for bodiless GET/HEAD none of that
// applies. Requests are written and responses parsed by net/http itself
// (Request.Write, ReadResponse), so framing is the standard library's.
type h1Pool struct {
	addr              string
	dialer            *net.Dialer
	maxIdle           int
	idleTimeout       time.Duration
	respHeaderTimeout time.Duration

	mu     sync.Mutex
	idle   []*h1Conn // most recently used last
	closed bool
}

type h1Conn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

func newH1Pool(addr string, ts TransportSpec) *h1Pool {
	return &h1Pool{
		addr:              addr,
		dialer:            &net.Dialer{Timeout: ts.DialTimeout, KeepAlive: 30 * time.Second},
		maxIdle:           ts.MaxIdleConnsPerHost,
		idleTimeout:       ts.IdleConnTimeout,
		respHeaderTimeout: ts.ResponseHeaderTimeout,
	}
}

// fastPathOK reports whether req can take the h1Pool path.
func fastPathOK(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
		(req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0 &&
		req.Header.Get("Upgrade") == "" && len(req.Trailer) == 0
}

func (p *h1Pool) get(ctx context.Context) (c *h1Conn, reused bool, err error) {
	now := time.Now()
	p.mu.Lock()
	for len(p.idle) > 0 {
		c = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if p.idleTimeout > 0 && now.Sub(c.lastUsed) > p.idleTimeout {
			c.nc.Close()
			c = nil
			continue
		}
		break
	}
	p.mu.Unlock()
	if c != nil {
		return c, true, nil
	}
	nc, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, err
	}
	return &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, false, nil
}

func (p *h1Pool) put(c *h1Conn) {
	c.lastUsed = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		c.nc.Close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// closeIdle closes idle connections; with final set, connections returned
// later are closed too.
func (p *h1Pool) closeIdle(final bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = p.closed || final
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip implements http.RoundTripper for requests fastPathOK accepts.
func (p *h1Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for {
		c, reused, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := p.exchange(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		c.nc.Close()
		// A kept-alive connection may have been closed by the target just
		// as we reused it; GET and HEAD may be sent again on a new one.
		if !reused || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
	}
}

func (p *h1Pool) exchange(ctx context.Context, c *h1Conn, req *http.Request) (*http.Response, error) {
	// Cancellation (client gone, route timeout) unblocks reads and writes.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	if p.respHeaderTimeout > 0 {
		c.nc.SetReadDeadline(time.Now().Add(p.respHeaderTimeout))
	}
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	var resp *http.Response
	for err == nil {
		resp, err = http.ReadResponse(c.br, req)
		// Informational responses (103 Early Hints) carry no body; they are
		// not forwarded on this path, only the final response is.
		if err != nil || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	if p.respHeaderTimeout > 0 {
		c.nc.SetReadDeadline(time.Time{})
		if ctx.Err() != nil {
			c.nc.SetDeadline(aLongTimeAgo)
		}
	}
	resp.Body = &h1Body{rc: resp.Body, c: c, pool: p, stop: stop, keep: !resp.Close, sawEOF: resp.Body == http.NoBody}
	return resp, nil
}

// h1Body returns the connection to the pool once the body was read to the
// end, and closes it otherwise: draining an abandoned download would read
// the rest of it from the target.
type h1Body struct {
	rc     io.ReadCloser
	c      *h1Conn
	pool   *h1Pool
	stop   func() bool
	keep   bool
	sawEOF bool
	once   sync.Once
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if errors.Is(err, io.EOF) {
		b.sawEOF = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.once.Do(func() {
		if !b.sawEOF {
			b.c.nc.Close()
			b.rc.Close()
			b.stop()
			return
		}
		b.rc.Close()
		// Bytes after the end of the response mean the target does not
		// frame its responses the way we think; never reuse such a connection.
		if b.stop() && b.keep && b.c.br.Buffered() == 0 {
			b.pool.put(b.c)
		} else {
			b.c.nc.Close()
		}
	})
	return nil
}
