// Package storagetest is the conformance suite every storage.Store must
// pass. Backends call Run from their own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t) })
//	}
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/veloxhq/velox/internal/storage"
)

// Options tune the suite for slow backends.
type Options struct {
	// LargeSize is the size of the biggest blob written; 0 means 3 MiB+17.
	// Backends with a large-object path should set it above their threshold.
	LargeSize int64
}

// Run runs the conformance suite. newStore is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	RunWithOptions(t, newStore, Options{})
}

// RunWithOptions is Run with tuning.
func RunWithOptions(t *testing.T, newStore func(t *testing.T) storage.Store, opt Options) {
	if opt.LargeSize == 0 {
		opt.LargeSize = 3<<20 + 17
	}
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		for _, size := range []int64{0, 1, 100, 64<<10 - 1, 64 << 10, 64<<10 + 1, opt.LargeSize} {
			for _, declared := range []bool{true, false} {
				key := Key()
				data := Random(size)
				d := int64(-1)
				if declared {
					d = size
				}
				if err := s.Put(ctx, key, bytes.NewReader(data), d); err != nil {
					t.Fatalf("Put(size=%d, declared=%v): %v", size, declared, err)
				}
				got := ReadAll(t, s, key)
				if !bytes.Equal(got, data) {
					t.Fatalf("size=%d declared=%v: read back %d bytes that differ from the %d written", size, declared, len(got), len(data))
				}
				info, err := s.Stat(ctx, key)
				if err != nil {
					t.Fatalf("Stat: %v", err)
				}
				if info.Size != size {
					t.Errorf("Stat size = %d, want %d", info.Size, size)
				}
				Cleanup(t, s, key)
			}
		}
	})

	t.Run("Ranges", func(t *testing.T) {
		s := newStore(t)
		size := opt.LargeSize
		data := Random(size)
		key := Key()
		if err := s.Put(ctx, key, bytes.NewReader(data), size); err != nil {
			t.Fatal(err)
		}
		defer Cleanup(t, s, key)
		obj, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		if obj.Size() != size {
			t.Fatalf("Size() = %d, want %d", obj.Size(), size)
		}
		// Offsets around the 64 KiB boundaries encryption uses, the 1 MiB
		// boundary, and the very end.
		offsets := []int64{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1 << 20, size - 100, size - 1}
		for _, off := range offsets {
			for _, n := range []int64{1, 10, 70 << 10} {
				if off+n > size {
					n = size - off
				}
				if _, err := obj.Seek(off, io.SeekStart); err != nil {
					t.Fatalf("Seek(%d): %v", off, err)
				}
				buf := make([]byte, n)
				if _, err := io.ReadFull(obj, buf); err != nil {
					t.Fatalf("read %d at %d: %v", n, off, err)
				}
				if !bytes.Equal(buf, data[off:off+n]) {
					t.Fatalf("range [%d,%d) differs", off, off+n)
				}
			}
		}
		// SeekEnd is what http.ServeContent uses to learn the size.
		if end, err := obj.Seek(0, io.SeekEnd); err != nil || end != size {
			t.Fatalf("Seek(0, SeekEnd) = %d, %v; want %d", end, err, size)
		}
		if _, err := obj.Seek(-5, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		tail, err := io.ReadAll(obj)
		if err != nil || !bytes.Equal(tail, data[size-5:]) {
			t.Fatalf("tail read = %x, %v; want %x", tail, err, data[size-5:])
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		key := Key()
		if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open(missing) error = %v, want ErrNotFound", err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(missing) error = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Delete(missing) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		key := Key()
		if err := s.Put(ctx, key, bytes.NewReader([]byte("hello")), 5); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open after Delete error = %v, want ErrNotFound", err)
		}
	})

	t.Run("SizeMismatchStoresNothing", func(t *testing.T) {
		s := newStore(t)
		for _, tc := range []struct {
			name     string
			actual   int64
			declared int64
		}{{"short", 10, 11}, {"long", 12, 11}} {
			key := Key()
			err := s.Put(ctx, key, bytes.NewReader(Random(tc.actual)), tc.declared)
			if err == nil {
				t.Errorf("%s: Put with %d bytes declared as %d succeeded", tc.name, tc.actual, tc.declared)
				Cleanup(t, s, key)
				continue
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: after a failed Put, Stat error = %v, want ErrNotFound", tc.name, err)
			}
		}
	})

	t.Run("ReaderErrorStoresNothing", func(t *testing.T) {
		s := newStore(t)
		key := Key()
		boom := errors.New("client went away")
		r := io.MultiReader(bytes.NewReader(Random(100<<10)), errReader{boom})
		if err := s.Put(ctx, key, r, -1); err == nil {
			t.Fatal("Put succeeded although the reader failed")
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("after a failed Put, Stat error = %v, want ErrNotFound", err)
		}
	})

	t.Run("CancelledContextStoresNothing", func(t *testing.T) {
		s := newStore(t)
		key := Key()
		cctx, cancel := context.WithCancel(ctx)
		r := &cancelAfter{r: bytes.NewReader(Random(1 << 20)), n: 256 << 10, cancel: cancel}
		if err := s.Put(cctx, key, r, 1<<20); err == nil {
			t.Fatal("Put succeeded although its context was cancelled mid-way")
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("after a cancelled Put, Stat error = %v, want ErrNotFound", err)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := newStore(t)
		key := Key()
		for _, v := range []string{"first version", "second"} {
			if err := s.Put(ctx, key, bytes.NewReader([]byte(v)), int64(len(v))); err != nil {
				t.Fatal(err)
			}
			if got := string(ReadAll(t, s, key)); got != v {
				t.Fatalf("read %q, want %q", got, v)
			}
		}
		Cleanup(t, s, key)
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		s := newStore(t)
		for _, key := range []string{"", "../etc/passwd", "a/b", "UPPER", ".hidden", "a\x00b"} {
			if err := s.Put(ctx, key, bytes.NewReader([]byte("x")), 1); err == nil {
				t.Errorf("Put(%q) succeeded, want an error", key)
				_ = s.Delete(ctx, key)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := Key()
				data := Random(200<<10 + int64(i))
				if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
					errs <- err
					return
				}
				obj, err := s.Open(ctx, key)
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(obj)
				obj.Close()
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, data) {
					errs <- fmt.Errorf("concurrent blob %s read back differently", key)
				}
				errs <- s.Delete(ctx, key)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		s := newStore(t)
		l, ok := s.(storage.Lister)
		if !ok {
			t.Log("store does not implement storage.Lister")
			return
		}
		want := map[string]bool{}
		for i := 0; i < 3; i++ {
			key := Key()
			if err := s.Put(ctx, key, bytes.NewReader([]byte("x")), 1); err != nil {
				t.Fatal(err)
			}
			want[key] = true
			defer Cleanup(t, s, key)
		}
		err := l.List(ctx, func(info storage.Info) error {
			delete(want, info.Key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(want) > 0 {
			t.Errorf("List missed keys %v", want)
		}
	})

	t.Run("Parts", func(t *testing.T) {
		s := newStore(t)
		if _, ok := s.(storage.Parts); !ok {
			t.Log("store does not implement storage.Parts")
			return
		}
		runParts(t, s)
	})
}

// runParts checks storage.Parts.
func runParts(t *testing.T, s storage.Store) {
	ctx := context.Background()
	p := s.(storage.Parts)
	const min = storage.MinPartSize
	putParts := func(t *testing.T, id string, parts [][]byte, order []int) {
		t.Helper()
		for _, i := range order {
			if err := p.PutPart(ctx, id, i, bytes.NewReader(parts[i]), int64(len(parts[i]))); err != nil {
				t.Fatalf("PutPart(%d): %v", i, err)
			}
		}
	}
	sizesOf := func(parts [][]byte) []int64 {
		var sizes []int64
		for _, b := range parts {
			sizes = append(sizes, int64(len(b)))
		}
		return sizes
	}
	notVisible := func(t *testing.T, key string) {
		t.Helper()
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%s) after a failed CompleteParts: error = %v, want ErrNotFound", key, err)
		}
	}

	t.Run("OutOfOrderWithRetriedPart", func(t *testing.T) {
		id, key := Key(), Key()
		parts := [][]byte{Random(min), Random(min + 7), Random(1000)}
		// Part 1 is first stored with the wrong bytes, as a client that
		// retries after a broken connection might, then replaced.
		if err := p.PutPart(ctx, id, 1, bytes.NewReader(Random(min+7)), min+7); err != nil {
			t.Fatal(err)
		}
		putParts(t, id, parts, []int{2, 0, 1})
		if err := p.CompleteParts(ctx, key, id, sizesOf(parts)); err != nil {
			t.Fatalf("CompleteParts: %v", err)
		}
		defer Cleanup(t, s, key)
		want := bytes.Join(parts, nil)
		if got := ReadAll(t, s, key); !bytes.Equal(got, want) {
			t.Fatalf("completed blob: read %d bytes that differ from the %d uploaded", len(got), len(want))
		}
		// A range that spans the first part boundary.
		obj, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		if _, err := obj.Seek(min-10, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 20)
		if _, err := io.ReadFull(obj, buf); err != nil || !bytes.Equal(buf, want[min-10:min+10]) {
			t.Errorf("range across parts: %v, bytes equal %v", err, bytes.Equal(buf, want[min-10:min+10]))
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete of completed blob: %v", err)
		}
	})

	t.Run("UnknownSizePart", func(t *testing.T) {
		id, key := Key(), Key()
		data := Random(min + 3)
		if err := p.PutPart(ctx, id, 0, bytes.NewReader(data), -1); err != nil {
			t.Fatal(err)
		}
		if err := p.CompleteParts(ctx, key, id, []int64{min + 3}); err != nil {
			t.Fatal(err)
		}
		defer Cleanup(t, s, key)
		if got := ReadAll(t, s, key); !bytes.Equal(got, data) {
			t.Error("blob from one part of unknown size differs")
		}
	})

	t.Run("Empty", func(t *testing.T) {
		for _, sizes := range [][]int64{nil, {0}} {
			id, key := Key(), Key()
			for i := range sizes {
				if err := p.PutPart(ctx, id, i, bytes.NewReader(nil), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.CompleteParts(ctx, key, id, sizes); err != nil {
				t.Fatalf("CompleteParts(%v): %v", sizes, err)
			}
			if got := ReadAll(t, s, key); len(got) != 0 {
				t.Errorf("empty upload read back %d bytes", len(got))
			}
			Cleanup(t, s, key)
		}
	})

	t.Run("WrongSizes", func(t *testing.T) {
		id, key := Key(), Key()
		parts := [][]byte{Random(min), Random(10)}
		putParts(t, id, parts, []int{0, 1})
		defer p.AbortParts(ctx, id)
		for _, sizes := range [][]int64{{min, 11}, {min + 1, 10}} {
			err := p.CompleteParts(ctx, key, id, sizes)
			if !errors.Is(err, storage.ErrSizeMismatch) {
				t.Errorf("CompleteParts(%v) error = %v, want ErrSizeMismatch", sizes, err)
			}
			notVisible(t, key)
		}
	})

	t.Run("MissingPart", func(t *testing.T) {
		id, key := Key(), Key()
		parts := [][]byte{Random(min), Random(min), Random(10)}
		putParts(t, id, parts, []int{0, 2})
		defer p.AbortParts(ctx, id)
		err := p.CompleteParts(ctx, key, id, sizesOf(parts))
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CompleteParts with a missing part: error = %v, want ErrNotFound", err)
		}
		notVisible(t, key)
	})

	t.Run("PartTooSmall", func(t *testing.T) {
		id, key := Key(), Key()
		parts := [][]byte{Random(100), Random(min)}
		putParts(t, id, parts, []int{0, 1})
		defer p.AbortParts(ctx, id)
		err := p.CompleteParts(ctx, key, id, sizesOf(parts))
		if !errors.Is(err, storage.ErrPartTooSmall) {
			t.Errorf("CompleteParts with a small first part: error = %v, want ErrPartTooSmall", err)
		}
		notVisible(t, key)
	})

	t.Run("PartSizeMismatch", func(t *testing.T) {
		id, key := Key(), Key()
		if err := p.PutPart(ctx, id, 0, bytes.NewReader(Random(10)), 11); err == nil {
			t.Error("PutPart with 10 bytes declared as 11 succeeded")
		}
		boom := errors.New("client went away")
		if err := p.PutPart(ctx, id, 0, io.MultiReader(bytes.NewReader(Random(100<<10)), errReader{boom}), -1); err == nil {
			t.Error("PutPart succeeded although its reader failed")
		}
		if err := p.CompleteParts(ctx, key, id, []int64{10}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CompleteParts after failed PutParts: error = %v, want ErrNotFound", err)
		}
		notVisible(t, key)
	})

	t.Run("Abort", func(t *testing.T) {
		id, key := Key(), Key()
		parts := [][]byte{Random(min), Random(10)}
		putParts(t, id, parts, []int{0, 1})
		if err := p.AbortParts(ctx, id); err != nil {
			t.Fatalf("AbortParts: %v", err)
		}
		if err := p.CompleteParts(ctx, key, id, sizesOf(parts)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CompleteParts after AbortParts: error = %v, want ErrNotFound", err)
		}
		notVisible(t, key)
		if err := p.AbortParts(ctx, id); err != nil {
			t.Errorf("second AbortParts: %v", err)
		}
		if err := p.AbortParts(ctx, Key()); err != nil {
			t.Errorf("AbortParts of an unknown upload: %v", err)
		}
	})

	t.Run("InvalidIDs", func(t *testing.T) {
		for _, id := range []string{"", "../x", "a/b", "UPPER"} {
			if err := p.PutPart(ctx, id, 0, bytes.NewReader([]byte("x")), 1); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("PutPart(%q) error = %v, want ErrInvalidKey", id, err)
			}
		}
	})
}

// Key returns a fresh random blob key.
func Key() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Random returns n random bytes.
func Random(n int64) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// ReadAll reads a whole blob.
func ReadAll(t testing.TB, s storage.Store, key string) []byte {
	t.Helper()
	obj, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if int64(len(b)) != obj.Size() {
		t.Fatalf("read %d bytes of %s, Size() says %d", len(b), key, obj.Size())
	}
	return b
}

// Cleanup deletes key, failing the test on errors other than ErrNotFound.
func Cleanup(t testing.TB, s storage.Store, key string) {
	t.Helper()
	if err := s.Delete(context.Background(), key); err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Delete(%s): %v", key, err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// cancelAfter cancels its context once n bytes were read.
type cancelAfter struct {
	r      io.Reader
	n      int
	read   int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.read >= c.n {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}
