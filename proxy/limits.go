package proxy

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// connLimiter caps concurrent connections per client address. Excess
// connections are closed right after accept: before the TLS handshake there
// is no way to send an HTTP status.
type connLimiter struct {
	max    atomic.Int64
	mu     sync.Mutex
	counts map[netip.Addr]int
	m      *metrics
}

func newConnLimiter(m *metrics) *connLimiter {
	return &connLimiter{counts: map[netip.Addr]int{}, m: m}
}

func (c *connLimiter) setMax(n int) { c.max.Store(int64(n)) }

func (c *connLimiter) wrap(l net.Listener) net.Listener { return &limitListener{Listener: l, c: c} }

func (c *connLimiter) acquire(a netip.Addr) bool {
	max := int(c.max.Load())
	c.mu.Lock()
	defer c.mu.Unlock()
	if max > 0 && c.counts[a] >= max {
		return false
	}
	c.counts[a]++
	return true
}

func (c *connLimiter) release(a netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[a]--; c.counts[a] <= 0 {
		delete(c.counts, a)
	}
}

type limitListener struct {
	net.Listener
	c *connLimiter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(conn.RemoteAddr().String())
		if err != nil {
			return conn, nil
		}
		a := ap.Addr().Unmap()
		if !l.c.acquire(a) {
			l.c.m.limited.WithLabelValues("connections").Inc()
			conn.Close()
			continue
		}
		return &limitConn{Conn: conn, release: sync.OnceFunc(func() { l.c.release(a) })}, nil
	}
}

type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// rateLimiter is a token bucket per client address. Idle buckets are
// forgotten after a while so the map stays small.
type rateLimiter struct {
	r     rate.Limit
	burst int
	mu    sync.Mutex
	ips   map[netip.Addr]*bucket
	stop  chan struct{}
	once  sync.Once
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	l := &rateLimiter{r: rate.Limit(perSecond), burst: burst, ips: map[netip.Addr]*bucket{}, stop: make(chan struct{})}
	go l.sweep()
	return l
}

func (l *rateLimiter) sameAs(c LimitsConfig) bool {
	return l.r == rate.Limit(c.RatePerIP) && l.burst == c.BurstPerIP
}

func (l *rateLimiter) allow(a netip.Addr) bool {
	now := time.Now()
	l.mu.Lock()
	b := l.ips[a]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.r, l.burst)}
		l.ips[a] = b
	}
	b.seen = now
	l.mu.Unlock()
	return b.lim.AllowN(now, 1)
}

// idleAfter is how long a bucket must be unused before it is dropped; by
// then it has refilled for any sensible rate, so dropping it changes nothing.
const idleAfter = 5 * time.Minute

func (l *rateLimiter) sweep() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-t.C:
			l.mu.Lock()
			for a, b := range l.ips {
				if now.Sub(b.seen) > idleAfter {
					delete(l.ips, a)
				}
			}
			l.mu.Unlock()
		}
	}
}

func (l *rateLimiter) close() { l.once.Do(func() { close(l.stop) }) }
