package identity

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/veloxhq/velox/internal/metadata"
)

// Limiter slows down password guessing: once an account (or a client
// address, which is allowed more) has used up its free failures, the next
// attempt is not even checked before a wait, and each further failure
// doubles the wait, up to Max. A success clears the account's count; the
// address count decays on its own.
//
// Account counts go to Accounts, which New sets to the metadata database,
// so every app node sees the same count and adding nodes gives an attacker
// no more guesses per account. Address counts stay in memory on each node:
// they are a coarse first line, not worth a database write per request.
// Without Accounts, account counts are kept in memory like address ones.
// A call to Accounts that fails is served from this node's memory
// instead, so a database outage never locks users out, and failures the
// database could not take still count, on this node. (If only reads fail
// while writes succeed, this node sees no account counts until reads work
// again.) An outage is logged when it starts, then at most once a minute
// with the number of failed calls not logged, and once when it ends: every
// sign-in attempt makes calls, and a log line for each would bury the rest.
type Limiter struct {
	// AccountFree and IPFree are the failures allowed before backoff.
	AccountFree, IPFree int
	// Base is the first wait; Max bounds it.
	Base, Max time.Duration
	Now       func() time.Time
	// Accounts keeps the account counts; nil keeps them in memory.
	Accounts AccountStore
	// Logger reports failing Accounts calls; nil means slog.Default().
	Logger *slog.Logger

	mem memCounts

	// outage throttles the warnings about a failing Accounts.
	outage struct {
		sync.Mutex
		failing  bool
		lastLog  time.Time
		unlogged int
	}
}

// AccountStore keeps a Limiter's per-account failure counts; usernames
// compare case-insensitively. *metadata.DB implements it, sharing the
// counts between app nodes. Implementations must be safe for concurrent
// use.
type AccountStore interface {
	// LoginWaitUntil returns until when attempts for username must wait;
	// the zero time, or one past, means they need not.
	LoginWaitUntil(ctx context.Context, username string) (time.Time, error)
	// RecordLoginFailure counts a failure at now, starting over if the
	// previous one was before forgetBefore, makes attempts wait until
	// now+wait(count) and returns the new count. Concurrent calls must
	// all count.
	RecordLoginFailure(ctx context.Context, username string, now, forgetBefore time.Time, wait func(count int) time.Duration) (int, error)
	// ClearLoginFailures forgets username's failures.
	ClearLoginFailures(ctx context.Context, username string) error
	// DeleteLoginFailuresBefore forgets accounts whose last failure was
	// before t.
	DeleteLoginFailuresBefore(ctx context.Context, t time.Time) error
}

var (
	_ AccountStore = (*metadata.DB)(nil)
	_ AccountStore = (*memCounts)(nil)
)

const (
	// storeTimeout bounds a call to Accounts before falling back to memory.
	storeTimeout = 5 * time.Second
	// One failure in cleanupEvery also deletes idle rows from Accounts.
	cleanupEvery = 100
	// memLimit is how many in-memory counts trigger pruning idle ones.
	memLimit = 100000
	// outageLogEvery is the least time between warnings about a failing
	// Accounts.
	outageLogEvery = time.Minute
)

// NewLimiter returns a Limiter with defaults: 5 failures per account and
// 20 per address, then 1s, 2s, 4s, ... up to 15 minutes. It keeps account
// counts in memory until Accounts is set.
func NewLimiter() *Limiter {
	return &Limiter{AccountFree: 5, IPFree: 20, Base: time.Second, Max: 15 * time.Minute, Now: time.Now}
}

func accountKey(username string) string { return "u:" + strings.ToLower(username) }
func ipKey(ip string) string            { return "ip:" + ip }

// Wait returns how long the caller must wait before an attempt for
// username from ip is checked; 0 means go ahead.
func (l *Limiter) Wait(ctx context.Context, username, ip string) time.Duration {
	now := l.Now()
	until := l.mem.until(ipKey(ip))
	l.accounts(ctx, "read", func(ctx context.Context, s AccountStore) error {
		u, err := s.LoginWaitUntil(ctx, username)
		if err == nil && u.After(until) {
			until = u
		}
		return err
	})
	if !until.After(now) {
		return 0
	}
	return until.Sub(now)
}

// Fail records a failed attempt.
func (l *Limiter) Fail(ctx context.Context, username, ip string) {
	now := l.Now()
	// Long quiet periods start over.
	forget := now.Add(-2 * l.Max)
	if ip != "" {
		l.mem.fail(ipKey(ip), now, forget, l.backoff(l.IPFree))
	}
	l.accounts(ctx, "record failure", func(ctx context.Context, s AccountStore) error {
		_, err := s.RecordLoginFailure(ctx, username, now, forget, l.backoff(l.AccountFree))
		return err
	})
	if l.Accounts != nil && rand.IntN(cleanupEvery) == 0 {
		// Every row was made by a failure, so cleaning up at a rate set
		// by failures keeps the table about as small as the recent ones.
		l.accounts(ctx, "clean up", func(ctx context.Context, s AccountStore) error {
			return s.DeleteLoginFailuresBefore(ctx, forget)
		})
	}
}

// Succeed clears the account's failures after a correct password.
func (l *Limiter) Succeed(ctx context.Context, username string) {
	// Also what this node counted while Accounts was failing.
	l.mem.clear(accountKey(username))
	l.accounts(ctx, "clear", func(ctx context.Context, s AccountStore) error {
		return s.ClearLoginFailures(ctx, username)
	})
}

// backoff returns the wait after count failures when free are allowed:
// none, then Base, 2×Base, ... up to Max.
func (l *Limiter) backoff(free int) func(count int) time.Duration {
	return func(count int) time.Duration {
		over := count - free
		if over < 0 {
			return 0
		}
		d := l.Base << min(over, 30)
		if d > l.Max || d <= 0 {
			d = l.Max
		}
		return d
	}
}

// accounts runs fn on Accounts, and on the in-memory counts if there is
// no Accounts or fn fails there. Calls to Accounts outlive a client that
// hangs up: otherwise hanging up right after a wrong guess would keep it
// out of the shared count.
func (l *Limiter) accounts(ctx context.Context, op string, fn func(ctx context.Context, s AccountStore) error) {
	if l.Accounts != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		err := fn(sctx, l.Accounts)
		cancel()
		l.noteStore(op, err)
		if err == nil {
			return
		}
	}
	fn(ctx, &l.mem)
}

// noteStore logs the start and end of a run of failing Accounts calls,
// and the failures in between at most once per outageLogEvery.
func (l *Limiter) noteStore(op string, err error) {
	o := &l.outage
	o.Lock()
	defer o.Unlock()
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	switch now := l.Now(); {
	case err == nil:
		if o.failing {
			logger.Info("sign-in limiter: shared account counts work again", "failed_calls_not_logged", o.unlogged)
			o.failing, o.unlogged = false, 0
		}
	case !o.failing || now.Sub(o.lastLog) >= outageLogEvery:
		logger.Warn("sign-in limiter: shared account counts failed; using this node's",
			"op", op, "err", err, "failed_calls_not_logged", o.unlogged)
		o.failing, o.lastLog, o.unlogged = true, now, 0
	default:
		o.unlogged++
	}
}

// memCounts keeps failure counts in memory, keyed by accountKey or ipKey.
// As an AccountStore it holds a Limiter's account counts when there is no
// other store, or the other store fails; its methods never fail.
type memCounts struct {
	mu sync.Mutex
	m  map[string]*limit
}

type limit struct {
	fails int
	until time.Time
	last  time.Time
}

func (c *memCounts) until(k string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil {
		return e.until
	}
	return time.Time{}
}

func (c *memCounts) fail(k string, now, forgetBefore time.Time, wait func(int) time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*limit{}
	}
	if len(c.m) > memLimit {
		c.prune(forgetBefore)
	}
	e := c.m[k]
	if e == nil || e.last.Before(forgetBefore) {
		e = &limit{}
		c.m[k] = e
	}
	e.fails++
	e.last = now
	if d := wait(e.fails); d > 0 {
		e.until = now.Add(d)
	}
	return e.fails
}

func (c *memCounts) clear(k string) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// prune drops counts last failed before t; c.mu must be held.
func (c *memCounts) prune(t time.Time) {
	for k, e := range c.m {
		if e.last.Before(t) {
			delete(c.m, k)
		}
	}
}

// LoginWaitUntil implements AccountStore.
func (c *memCounts) LoginWaitUntil(ctx context.Context, username string) (time.Time, error) {
	return c.until(accountKey(username)), nil
}

// RecordLoginFailure implements AccountStore.
func (c *memCounts) RecordLoginFailure(ctx context.Context, username string, now, forgetBefore time.Time, wait func(int) time.Duration) (int, error) {
	return c.fail(accountKey(username), now, forgetBefore, wait), nil
}

// ClearLoginFailures implements AccountStore.
func (c *memCounts) ClearLoginFailures(ctx context.Context, username string) error {
	c.clear(accountKey(username))
	return nil
}

// DeleteLoginFailuresBefore implements AccountStore.
func (c *memCounts) DeleteLoginFailuresBefore(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	c.prune(t)
	c.mu.Unlock()
	return nil
}
