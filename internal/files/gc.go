package files

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/veloxhq/velox/internal/storage"
)

// GCStats reports what a garbage collection did.
type GCStats struct {
	Scanned int // blobs in storage
	Deleted int // orphans removed
	Bytes   int64
	Young   int // orphans kept because they are younger than the grace period
}

// CollectGarbage deletes stored blobs that no metadata row references and
// that are older than grace. The grace period is what makes this safe
// while uploads run: an upload stores its blob before committing the row
// that references it, so a young unreferenced blob may be one in flight.
func (s *Service) CollectGarbage(ctx context.Context, grace time.Duration) (GCStats, error) {
	var st GCStats
	lister, ok := s.Blobs.(storage.Lister)
	if !ok {
		return st, errors.New("gc: this storage backend cannot list its blobs")
	}
	cutoff := s.DB.Now().Add(-grace)
	var batch []storage.Info
	flush := func() error {
		ids := make([]string, len(batch))
		for i, b := range batch {
			ids[i] = b.Key
		}
		known, err := s.DB.KnownBlobs(ctx, ids)
		if err != nil {
			return err
		}
		for _, b := range batch {
			if known[b.Key] {
				continue
			}
			if b.ModTime.After(cutoff) {
				st.Young++
				continue
			}
			// Re-check just before deleting: a commit may have landed
			// since the batch was read.
			if k, err := s.DB.KnownBlobs(ctx, []string{b.Key}); err != nil || k[b.Key] {
				continue
			}
			if err := s.Blobs.Delete(ctx, b.Key); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("gc: delete %s: %w", b.Key, err)
			}
			st.Deleted++
			st.Bytes += b.Size
		}
		batch = batch[:0]
		return nil
	}
	err := lister.List(ctx, func(info storage.Info) error {
		st.Scanned++
		batch = append(batch, info)
		if len(batch) == 500 {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	return st, err
}

// RunGC expires abandoned upload sessions, sweeps storage leftovers and
// collects garbage every interval on whichever app node holds the
// "gc" lease, until ctx ends.
func (s *Service) RunGC(ctx context.Context, holder string, interval, grace time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := s.DB.AcquireLease(ctx, "gc", holder, interval+time.Minute)
		if err != nil || !ok {
			continue
		}
		if n, err := s.ExpireUploads(ctx); err != nil {
			s.Logger.Warn("expiring upload sessions failed", "err", err)
		} else if n > 0 {
			s.Logger.Info("expired upload sessions removed", "count", n)
		}
		if sw, ok := s.Blobs.(storage.Sweeper); ok {
			if err := sw.Sweep(ctx, s.DB.Now().Add(-grace)); err != nil {
				s.Logger.Warn("storage sweep failed", "err", err)
			}
		}
		st, err := s.CollectGarbage(ctx, grace)
		if err != nil {
			s.Logger.Warn("garbage collection failed", "err", err)
			continue
		}
		if st.Deleted > 0 {
			s.Logger.Info("garbage collected", "deleted", st.Deleted, "bytes", st.Bytes, "scanned", st.Scanned)
		}
	}
}
