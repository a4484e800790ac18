package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/veloxhq/velox/auth"
)

var _ auth.Authenticator = (*Provider)(nil)

// Provider authenticates users against an LDAP directory and enumerates
// them for the sync. It is safe for concurrent use.
type Provider struct {
	cfg  Config
	tls  []*tls.Config // per URL
	urls []*url.URL

	// sem bounds the service connections in use; idle keeps bound ones.
	sem  chan struct{}
	idle chan *goldap.Conn

	closeOnce sync.Once
	closed    chan struct{}

	dials, binds, searches atomic.Int64
}

// Stats counts the LDAP operations a Provider sent, for tests and
// benchmarks. A paged search counts one per page.
type Stats struct {
	Dials    int64 // connections opened
	Binds    int64 // bind requests (service and user)
	Searches int64 // search requests, one per page
}

// Requests is the number of LDAP requests (binds and searches).
func (s Stats) Requests() int64 { return s.Binds + s.Searches }

// Sub returns s - o, the operations between two snapshots.
func (s Stats) Sub(o Stats) Stats {
	return Stats{s.Dials - o.Dials, s.Binds - o.Binds, s.Searches - o.Searches}
}

// New checks cfg and returns a Provider. It does not contact the server,
// so Velox starts while the directory is down.
func New(cfg Config) (*Provider, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:    c,
		sem:    make(chan struct{}, c.PoolSize),
		idle:   make(chan *goldap.Conn, c.PoolSize),
		closed: make(chan struct{}),
	}
	for _, raw := range c.URLs {
		u, _ := url.Parse(raw) // checked by withDefaults
		tc, err := c.tlsConfig(u.Hostname())
		if err != nil {
			return nil, err
		}
		p.urls = append(p.urls, u)
		p.tls = append(p.tls, tc)
	}
	return p, nil
}

// Stats returns the operations sent so far.
func (p *Provider) Stats() Stats {
	return Stats{p.dials.Load(), p.binds.Load(), p.searches.Load()}
}

// Close closes the idle service connections. In-flight calls finish.
func (p *Provider) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return nil
		}
	}
}

// unavailable wraps err as auth.ErrUnavailable.
func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", auth.ErrUnavailable, what, err)
}

// isConnError reports whether err means the connection or server failed,
// as opposed to an LDAP result about the request.
func isConnError(err error) bool {
	var le *goldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case goldap.ErrorNetwork, goldap.LDAPResultBusy, goldap.LDAPResultUnavailable,
			goldap.LDAPResultUnwillingToPerform, goldap.LDAPResultTimeLimitExceeded,
			goldap.LDAPResultOther, goldap.LDAPResultServerDown, goldap.LDAPResultTimeout,
			goldap.LDAPResultConnectError:
			return true
		}
		return false
	}
	return true // not an LDAP result at all: I/O, TLS, context
}

// dial opens a connection to the first URL that answers, with TLS set up
// (ldaps or StartTLS). The whole setup, including the TLS handshake that
// go-ldap's StartTLS does without a deadline, is bounded by DialTimeout.
func (p *Provider) dial(ctx context.Context) (*goldap.Conn, error) {
	var errs []error
	for i, u := range p.urls {
		c, err := p.dialOne(ctx, u, p.tls[i])
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u.Redacted(), err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, unavailable("connect", errors.Join(errs...))
}

func (p *Provider) dialOne(ctx context.Context, u *url.URL, tc *tls.Config) (*goldap.Conn, error) {
	p.dials.Add(1)
	port := u.Port()
	if port == "" {
		port = "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	raw.SetDeadline(deadline)
	var c *goldap.Conn
	if u.Scheme == "ldaps" {
		tlsConn := tls.Client(raw, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		c = goldap.NewConn(tlsConn, true)
	} else {
		c = goldap.NewConn(raw, false)
	}
	c.Start()
	c.SetTimeout(p.cfg.DialTimeout)
	if u.Scheme == "ldap" && p.cfg.StartTLS {
		if err := c.StartTLS(tc); err != nil {
			c.Close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	// From here on RequestTimeout bounds each request.
	raw.SetDeadline(time.Time{})
	c.SetTimeout(p.cfg.RequestTimeout)
	return c, nil
}

// getConn returns a service connection bound as BindDN, from the pool or
// new. Every successful getConn must be followed by putConn.
func (p *Provider) getConn(ctx context.Context) (*goldap.Conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, unavailable("wait for connection", ctx.Err())
	}
	for {
		select {
		case c := <-p.idle:
			if c.IsClosing() {
				c.Close()
				continue
			}
			return c, nil
		default:
		}
		break
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.sem
		return nil, err
	}
	p.binds.Add(1)
	if err := c.Bind(p.cfg.BindDN, p.cfg.BindPassword); err != nil {
		c.Close()
		<-p.sem
		// A refused service bind is a configuration error, but for a
		// user it means the same as a dead server: nobody can log in.
		return nil, unavailable("service bind as "+p.cfg.BindDN, err)
	}
	return c, nil
}

// putConn returns c to the pool, or closes it if err says it broke.
func (p *Provider) putConn(c *goldap.Conn, err error) {
	defer func() { <-p.sem }()
	if (err != nil && isConnError(err)) || c.IsClosing() {
		c.Close()
		return
	}
	select {
	case <-p.closed:
		c.Close()
		return
	default:
	}
	select {
	case p.idle <- c:
	default:
		c.Close()
	}
}

// withConn runs fn on a pooled service connection. A connection failure
// is retried once on a fresh connection, since pooled connections die
// silently when the server restarts or an idle timeout hits.
func (p *Provider) withConn(ctx context.Context, fn func(*goldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := p.getConn(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		p.putConn(c, err)
		if err == nil || !isConnError(err) {
			return err
		}
		if attempt == 1 || ctx.Err() != nil {
			return unavailable("request", err)
		}
	}
}

// search runs one non-paged search, counting it.
func (p *Provider) search(c *goldap.Conn, req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	p.searches.Add(1)
	return c.Search(req)
}

// searchPaged runs req with the paged-results control, calling fn for
// each page's entries, and stops early when ctx ends.
func (p *Provider) searchPaged(ctx context.Context, c *goldap.Conn, req *goldap.SearchRequest, fn func([]*goldap.Entry) error) error {
	paging := goldap.NewControlPaging(p.cfg.PageSize)
	req.Controls = append(req.Controls, paging)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := p.search(c, req)
		if err != nil {
			return err
		}
		if err := fn(res.Entries); err != nil {
			return err
		}
		ctrl, _ := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
		if ctrl == nil || len(ctrl.Cookie) == 0 {
			return nil
		}
		paging.SetCookie(ctrl.Cookie)
	}
}
