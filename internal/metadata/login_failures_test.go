package metadata_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/metadata"
)

// wait3 lets two failures go free and then waits one second per failure.
func wait3(n int) time.Duration {
	if n < 3 {
		return 0
	}
	return time.Duration(n) * time.Second
}

func TestLoginFailures(t *testing.T) {
	eachDB(t, func(t *testing.T, open func(t *testing.T) *metadata.DB) {
		ctx := context.Background()
		db := open(t)
		now := time.Unix(1_000_000, 0)
		forget := now.Add(-time.Hour)
		record := func(user string, now, forget time.Time, want int) {
			t.Helper()
			if n, err := db.RecordLoginFailure(ctx, user, now, forget, wait3); err != nil || n != want {
				t.Fatalf("failure for %q: count %d, %v; want %d", user, n, err, want)
			}
		}
		until := func(user string) time.Time {
			t.Helper()
			u, err := db.LoginWaitUntil(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}

		// Usernames compare case-insensitively.
		for i, user := range []string{"Alice", "alice", "ALICE", "alice"} {
			record(user, now, forget, i+1)
			var want time.Time
			if d := wait3(i + 1); d > 0 {
				want = now.Add(d)
			}
			if got := until("aLiCe"); !got.Equal(want) {
				t.Fatalf("wait after %d failures: until %v, want %v", i+1, got, want)
			}
		}
		if got := until("bob"); !got.IsZero() {
			t.Fatalf("bob waits until %v", got)
		}

		// A failure after the last one was forgotten starts over.
		later := now.Add(2 * time.Hour)
		record("alice", later, later.Add(-time.Hour), 1)
		if got := until("alice"); !got.IsZero() {
			t.Fatalf("wait after starting over: until %v, want none", got)
		}

		for i := 1; i <= 3; i++ {
			record("bob", now, forget, i)
		}
		if err := db.ClearLoginFailures(ctx, "BOB"); err != nil {
			t.Fatal(err)
		}
		if got := until("bob"); !got.IsZero() {
			t.Fatalf("bob waits until %v after clearing", got)
		}
		record("bob", now, forget, 1)

		// Cleanup drops bob (last failure at now), not alice (at later).
		if err := db.DeleteLoginFailuresBefore(ctx, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		record("bob", now, time.Time{}, 1)
		record("alice", later, time.Time{}, 2)
	})
}

// TestLoginFailuresConcurrent records failures for one account from two
// goroutines at once, as two app nodes would: each must count once, and
// the wait left behind must be that of the final count.
func TestLoginFailuresConcurrent(t *testing.T) {
	eachDB(t, func(t *testing.T, open func(t *testing.T) *metadata.DB) {
		ctx := context.Background()
		db := open(t)
		now := time.Unix(1_000_000, 0)
		const each = 25
		counts := make(chan int, 2*each)
		errs := make(chan error, 2)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for range each {
					n, err := db.RecordLoginFailure(ctx, "alice", now, now.Add(-time.Hour), wait3)
					if err != nil {
						errs <- err
						return
					}
					counts <- n
				}
			})
		}
		wg.Wait()
		close(counts)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for n := range counts {
			if seen[n] || n < 1 || n > 2*each {
				t.Fatalf("count %d returned twice or out of range", n)
			}
			seen[n] = true
		}
		if len(seen) != 2*each {
			t.Fatalf("got %d distinct counts, want %d", len(seen), 2*each)
		}
		got, err := db.LoginWaitUntil(ctx, "alice")
		if want := now.Add(wait3(2 * each)); err != nil || !got.Equal(want) {
			t.Fatalf("until %v, %v; want %v", got, err, want)
		}
	})
}
