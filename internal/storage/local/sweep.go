package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/veloxhq/velox/internal/storage"
)

var _ storage.Sweeper = (*Store)(nil)

// Sweep implements storage.Sweeper: it removes temporary files of writes
// that a crash interrupted.
func (s *Store) Sweep(ctx context.Context, olderThan time.Time) error {
	dir := filepath.Join(s.dir, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("local storage: sweep: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("local storage: sweep: %w", err)
		}
		if fi.ModTime().Before(olderThan) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("local storage: sweep: %w", err)
			}
		}
	}
	return nil
}
