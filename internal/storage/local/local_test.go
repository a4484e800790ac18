package local_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/local"
	"github.com/veloxhq/velox/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSweepRemovesOldTempFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "tmp", "abcd.123")
	fresh := filepath.Join(dir, "tmp", "abcd.456")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(context.Background(), time.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file still there (%v)", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file removed: %v", err)
	}
}

// TestCompleteMorePartsThanOpenFiles completes an upload with more parts
// than the process may hold open at once: parts are read one at a time.
func TestCompleteMorePartsThanOpenFiles(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const parts = 120
	id, key := storagetest.Key(), storagetest.Key()
	data := storagetest.Random(parts*storage.MinPartSize - 7)
	sizes := make([]int64, parts)
	for i := range parts {
		p := data[i*storage.MinPartSize : min(len(data), (i+1)*storage.MinPartSize)]
		sizes[i] = int64(len(p))
		if err := s.PutPart(ctx, id, i, bytes.NewReader(p), sizes[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Lower the limit below the number of parts for the completion only.
	low := lim
	low.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	err = s.CompleteParts(ctx, key, id, sizes)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("completing %d parts with at most 64 open files: %v", parts, err)
	}
	if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, data) {
		t.Fatal("completed blob differs from its parts")
	}
}
