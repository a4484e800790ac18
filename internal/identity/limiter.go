package identity

import (
	"strings"
	"sync"
	"time"
)

// Limiter slows down password guessing: once an account (or a client
// address, which is allowed more) has used up its free failures, the next
// attempt is not even checked before a wait, and each further failure
// doubles the wait, up to Max. A success clears the account's count; the
// address count decays on its own.
//
// The counts live in memory on each app node: with N nodes an attacker
// gets at most N times the attempts, which still caps guessing at a few
// per hour per node once the backoff saturates.
type Limiter struct {
	// AccountFree and IPFree are the failures allowed before backoff.
	AccountFree, IPFree int
	// Base is the first wait; Max bounds it.
	Base, Max time.Duration
	Now       func() time.Time

	mu sync.Mutex
	m  map[string]*limit
}

type limit struct {
	fails int
	until time.Time
	last  time.Time
}

// NewLimiter returns a Limiter with defaults: 5 failures per account and
// 20 per address, then 1s, 2s, 4s, ... up to 15 minutes.
func NewLimiter() *Limiter {
	return &Limiter{AccountFree: 5, IPFree: 20, Base: time.Second, Max: 15 * time.Minute, Now: time.Now, m: map[string]*limit{}}
}

func accountKey(username string) string { return "u:" + strings.ToLower(username) }
func ipKey(ip string) string            { return "ip:" + ip }

// Wait returns how long the caller must wait before an attempt for
// username from ip is checked; 0 means go ahead.
func (l *Limiter) Wait(username, ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	var wait time.Duration
	for _, k := range []string{accountKey(username), ipKey(ip)} {
		if e := l.m[k]; e != nil && e.until.After(now) {
			wait = max(wait, e.until.Sub(now))
		}
	}
	return wait
}

// Fail records a failed attempt.
func (l *Limiter) Fail(username, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	if len(l.m) > 100000 {
		l.prune(now)
	}
	l.fail(accountKey(username), l.AccountFree, now)
	if ip != "" {
		l.fail(ipKey(ip), l.IPFree, now)
	}
}

func (l *Limiter) fail(k string, free int, now time.Time) {
	e := l.m[k]
	if e == nil || now.Sub(e.last) > l.Max*2 {
		// Long quiet periods start over.
		e = &limit{}
		l.m[k] = e
	}
	e.fails++
	e.last = now
	if over := e.fails - free; over >= 0 {
		d := l.Base << min(over, 30)
		if d > l.Max || d <= 0 {
			d = l.Max
		}
		e.until = now.Add(d)
	}
}

// Succeed clears the account's failures after a correct password.
func (l *Limiter) Succeed(username string) {
	l.mu.Lock()
	delete(l.m, accountKey(username))
	l.mu.Unlock()
}

func (l *Limiter) prune(now time.Time) {
	for k, e := range l.m {
		if now.Sub(e.last) > l.Max*2 {
			delete(l.m, k)
		}
	}
}
