package encrypt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/encrypt"
	"github.com/veloxhq/velox/internal/storage/local"
	"github.com/veloxhq/velox/internal/storage/storagetest"
)

const pkg = 64 << 10

func testRing(t testing.TB, ids ...string) *encrypt.Keyring {
	t.Helper()
	if len(ids) == 0 {
		ids = []string{"k1"}
	}
	var keys []encrypt.MasterKey
	for _, id := range ids {
		keys = append(keys, encrypt.MasterKey{ID: id, Key: storagetest.Random(32)})
	}
	kr, err := encrypt.NewKeyring(keys, "")
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newLocal(t testing.TB) (*local.Store, string) {
	dir := t.TempDir()
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestConformanceLocal(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		inner, _ := newLocal(t)
		return encrypt.New(inner, encrypt.NewMemKeys(), testRing(t), nil)
	})
}

// backend is one inner store under test, with a way to replace the raw
// bytes of an object behind the encrypting store's back.
type backend struct {
	inner   storage.Store
	raw     func(t *testing.T, key string) []byte // nil: read inner
	tamper  func(t *testing.T, key string, edit func([]byte) []byte)
	counter *countingStore
}

func localBackend(t *testing.T) backend {
	inner, dir := newLocal(t)
	c := &countingStore{Store: inner}
	return backend{inner: c, counter: c, tamper: func(t *testing.T, key string, edit func([]byte) []byte) {
		p := filepath.Join(dir, key[0:2], key[2:4], key)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, edit(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}}
}

func TestLocal(t *testing.T) {
	// Long reads decrypt in one goroutine or in parallel batches depending
	// on the cores; both ways are tested on any machine.
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("%dWorkers", workers), func(t *testing.T) {
			defer encrypt.ForceDecryptWorkers(workers)()
			runBackendTests(t, localBackend)
		})
	}
}

func runBackendTests(t *testing.T, newBackend func(t *testing.T) backend) {
	ctx := context.Background()
	t.Run("RawIsCiphertext", func(t *testing.T) {
		b := newBackend(t)
		s := encrypt.New(b.inner, encrypt.NewMemKeys(), testRing(t), nil)
		for _, size := range []int64{1, 100, pkg + 1, 3<<20 + 5} {
			key := storagetest.Key()
			data := bytes.Repeat([]byte("contract: the party of the first part "), int(size/38)+1)[:size]
			if err := s.Put(ctx, key, bytes.NewReader(data), size); err != nil {
				t.Fatal(err)
			}
			var raw []byte
			if b.raw != nil {
				raw = b.raw(t, key)
			} else {
				raw = storagetest.ReadAll(t, b.inner, key)
			}
			if bytes.Equal(raw, data) || int64(len(raw)) == size {
				t.Fatalf("size %d: raw object is the plaintext or has its size", size)
			}
			if size >= 16 && bytes.Contains(raw, data[:16]) {
				t.Errorf("size %d: raw object contains a plaintext prefix", size)
			}
			if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, data) {
				t.Errorf("size %d: decrypted differs", size)
			}
			storagetest.Cleanup(t, s, key)
		}
	})

	t.Run("PackageBoundaries", func(t *testing.T) {
		b := newBackend(t)
		s := encrypt.New(b.inner, encrypt.NewMemKeys(), testRing(t), nil)
		size := int64(5*pkg + 333)
		data := storagetest.Random(size)
		key := storagetest.Key()
		if err := s.Put(ctx, key, bytes.NewReader(data), size); err != nil {
			t.Fatal(err)
		}
		defer storagetest.Cleanup(t, s, key)
		checkRanges(t, s, key, data, boundaries(size, pkg))
	})

	t.Run("PartBoundaries", func(t *testing.T) {
		b := newBackend(t)
		p, ok := encrypt.New(b.inner, encrypt.NewMemKeys(), testRing(t), nil).(storage.Parts)
		if !ok {
			t.Fatal("the encrypting store must offer Parts over a store that has them")
		}
		s := p.(storage.Store)
		id, key := storagetest.Key(), storagetest.Key()
		parts := [][]byte{storagetest.Random(storage.MinPartSize + 5), storagetest.Random(storage.MinPartSize), storagetest.Random(pkg + 1)}
		// Out of order, and part 1 retried with other bytes first.
		if err := p.PutPart(ctx, id, 1, bytes.NewReader(storagetest.Random(storage.MinPartSize)), storage.MinPartSize); err != nil {
			t.Fatal(err)
		}
		var sizes []int64
		for _, i := range []int{2, 0, 1} {
			if err := p.PutPart(ctx, id, i, bytes.NewReader(parts[i]), int64(len(parts[i]))); err != nil {
				t.Fatal(err)
			}
		}
		for _, part := range parts {
			sizes = append(sizes, int64(len(part)))
		}
		if err := p.CompleteParts(ctx, key, id, sizes); err != nil {
			t.Fatal(err)
		}
		defer storagetest.Cleanup(t, s, key)
		data := bytes.Join(parts, nil)
		if info, err := s.Stat(ctx, key); err != nil || info.Size != int64(len(data)) {
			t.Fatalf("Stat = %v, %v; want size %d", info, err, len(data))
		}
		offs := boundaries(int64(len(data)), pkg)
		var start int64
		for _, n := range sizes {
			start += n
			for _, d := range []int64{-pkg - 1, -pkg, -1, 0, 1, pkg, pkg + 1} {
				if o := start + d; o >= 0 && o < int64(len(data)) {
					offs = append(offs, o)
				}
			}
		}
		checkRanges(t, s, key, data, offs)
		checkNext(t, s, key, data)
	})

	t.Run("OneByteRangeReadsOnePackage", func(t *testing.T) {
		b := newBackend(t)
		if b.counter == nil {
			// Swift has no byte counter here; TestSwiftOneByteRangeIsOneRequest
			// counts its requests instead.
			return
		}
		s := encrypt.New(b.inner, encrypt.NewMemKeys(), testRing(t), nil)
		size := int64(40 * pkg)
		data := storagetest.Random(size)
		key := storagetest.Key()
		if err := s.Put(ctx, key, bytes.NewReader(data), size); err != nil {
			t.Fatal(err)
		}
		defer storagetest.Cleanup(t, s, key)
		obj, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		b.counter.read.Store(0)
		if _, err := obj.Seek(0, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		off := int64(23*pkg + 77)
		if _, err := obj.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		one := make([]byte, 1)
		if _, err := io.ReadFull(obj, one); err != nil || one[0] != data[off] {
			t.Fatalf("read 1 byte: %v", err)
		}
		if n := b.counter.read.Load(); n > pkg+32 {
			t.Errorf("a 1-byte range read %d bytes from storage, want at most one package (%d)", n, pkg+32)
		}
	})

	t.Run("LongReads", func(t *testing.T) {
		// Reads long enough to be decrypted ahead on several cores, from
		// aligned and unaligned offsets, across part boundaries, with
		// small and large read sizes.
		b := newBackend(t)
		p := encrypt.New(b.inner, encrypt.NewMemKeys(), testRing(t), nil).(storage.Parts)
		s := p.(storage.Store)
		id, key := storagetest.Key(), storagetest.Key()
		parts := [][]byte{storagetest.Random(3<<20 + 7), storagetest.Random(9<<19 + 77)}
		var sizes []int64
		for i, part := range parts {
			if err := p.PutPart(ctx, id, i, bytes.NewReader(part), int64(len(part))); err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, int64(len(part)))
		}
		if err := p.CompleteParts(ctx, key, id, sizes); err != nil {
			t.Fatal(err)
		}
		defer storagetest.Cleanup(t, s, key)
		data := bytes.Join(parts, nil)
		for _, off := range []int64{0, 1, pkg - 1, 12345, 3<<20 + 5, int64(len(parts[0])) - 2<<20 + 3} {
			for _, bufSize := range []int{1000, 1 << 20} {
				obj, err := s.Open(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := obj.Seek(off, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				_, err = io.CopyBuffer(struct{ io.Writer }{&got}, struct{ io.Reader }{obj}, make([]byte, bufSize))
				obj.Close()
				if err != nil || !bytes.Equal(got.Bytes(), data[off:]) {
					t.Fatalf("read from %d in %d-byte reads: %d bytes, err %v", off, bufSize, got.Len(), err)
				}
			}
		}
		// Closing in the middle of a long read stops cleanly.
		obj, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, obj, 3<<20); err != nil {
			t.Fatal(err)
		}
		obj.Close()
	})

	// Tampering is tested on a blob read in one go and on one long enough
	// to be decrypted ahead in parallel batches (past readAheadAfter).
	t.Run("Tamper", func(t *testing.T) {
		for _, size := range []int64{3*pkg + 10, 40*pkg + 10} {
			t.Run(fmt.Sprint(size), func(t *testing.T) {
				b := newBackend(t)
				s := encrypt.New(b.inner, encrypt.NewMemKeys(), testRing(t), nil)
				for _, tc := range []struct {
					name string
					edit func([]byte) []byte
				}{
					{"FlippedByte", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
					{"FlippedLastByte", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
					{"LastPackagesSwapped", func(b []byte) []byte {
						p := pkg + 32
						n := len(b) / p // full packages; the last, short one follows
						out := append([]byte{}, b[:(n-2)*p]...)
						out = append(out, b[(n-1)*p:n*p]...)
						out = append(out, b[(n-2)*p:(n-1)*p]...)
						return append(out, b[n*p:]...)
					}},
					{"FlippedHeader", func(b []byte) []byte { b[3] ^= 0x40; return b }},
					{"TruncatedAtPackage", func(b []byte) []byte { return b[:2*(pkg+32)] }},
					{"TruncatedMidPackage", func(b []byte) []byte { return b[:len(b)-5] }},
					{"Emptied", func(b []byte) []byte { return b[:0] }},
					{"PackagesSwapped", func(b []byte) []byte {
						p := pkg + 32
						out := append([]byte{}, b[p:2*p]...)
						out = append(out, b[:p]...)
						return append(out, b[2*p:]...)
					}},
				} {
					t.Run(tc.name, func(t *testing.T) {
						key := storagetest.Key()
						data := storagetest.Random(size)
						if err := s.Put(ctx, key, bytes.NewReader(data), size); err != nil {
							t.Fatal(err)
						}
						defer storagetest.Cleanup(t, s, key)
						b.tamper(t, key, tc.edit)
						obj, err := s.Open(ctx, key)
						if err == nil {
							var got []byte
							got, err = io.ReadAll(obj)
							obj.Close()
							if err == nil {
								t.Fatalf("read of a tampered blob succeeded (equal to original: %v)", bytes.Equal(got, data))
							}
						}
						if !errors.Is(err, storage.ErrCorrupt) {
							t.Fatalf("error = %v, want ErrCorrupt", err)
						}
						if !bytes.Contains([]byte(err.Error()), []byte(key)) {
							t.Errorf("error %q does not name the blob", err)
						}
					})
				}
			})
		}
	})

	t.Run("PlaintextBlobsStillRead", func(t *testing.T) {
		b := newBackend(t)
		s := encrypt.New(b.inner, encrypt.NewMemKeys(), testRing(t), nil)
		key := storagetest.Key()
		data := storagetest.Random(pkg + 3)
		if err := b.inner.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		defer storagetest.Cleanup(t, s, key)
		if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, data) {
			t.Error("plaintext blob written before encryption reads back differently")
		}
	})
}

// boundaries returns offsets around every multiple of step below size.
// checkNext reads key whole through the objects' Next, which hands out
// the read-ahead's own buffers: every slice must hold the right bytes when
// it is returned, for any size asked, from the start and after seeks.
func checkNext(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	for _, max := range []int{1 << 20, pkg + 7, 1000} {
		for _, from := range []int64{0, 3*pkg + 5} {
			o, err := s.Open(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			nx, ok := o.(interface{ Next(int) ([]byte, error) })
			if !ok {
				t.Fatal("encrypted objects should offer Next")
			}
			if _, err := o.Seek(from, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			pos := from
			for {
				b, err := nx.Next(max)
				if len(b) > max || !bytes.Equal(b, data[pos:pos+int64(len(b))]) {
					t.Fatalf("Next(%d) at %d returned %d wrong bytes", max, pos, len(b))
				}
				pos += int64(len(b))
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Next(%d) at %d: %v", max, pos, err)
				}
			}
			o.Close()
			if pos != int64(len(data)) {
				t.Fatalf("Next(%d) from %d ended at %d of %d", max, from, pos, len(data))
			}
		}
	}
}

func boundaries(size, step int64) []int64 {
	var offs []int64
	for b := int64(0); b <= size; b += step {
		for _, d := range []int64{-1, 0, 1} {
			if o := b + d; o >= 0 && o < size {
				offs = append(offs, o)
			}
		}
	}
	return append(offs, size-1)
}

// checkRanges reads 1 byte, and a run crossing the next boundary, at
// every offset, the way http.ServeContent does: seek to the end first.
func checkRanges(t *testing.T, s storage.Store, key string, data []byte, offs []int64) {
	t.Helper()
	size := int64(len(data))
	obj, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	for _, off := range offs {
		for _, n := range []int64{1, 2, pkg + 2} {
			n = min(n, size-off)
			if _, err := obj.Seek(0, io.SeekEnd); err != nil {
				t.Fatal(err)
			}
			if _, err := obj.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
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
}

func TestSweepRemovesOrphanKeys(t *testing.T) {
	ctx := context.Background()
	inner, _ := newLocal(t)
	keys := encrypt.NewMemKeys()
	s := encrypt.New(inner, keys, testRing(t), nil)
	kept := storagetest.Key()
	if err := s.Put(ctx, kept, bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	orphan := storagetest.Key()
	keys.PutBlobKey(ctx, orphan, encrypt.BlobKey{KeyID: "k1", Size: -1})
	if err := s.(storage.Parts).PutPart(ctx, "up1", 0, bytes.NewReader([]byte("y")), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.(storage.Sweeper).Sweep(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{kept: true, orphan: false, "upload:up1": true} {
		if _, err := keys.GetBlobKey(ctx, id); (err == nil) != want {
			t.Errorf("after Sweep, key row %s present = %v, want %v", id, err == nil, want)
		}
	}
}

// TestTruncationWithUnknownSize cuts an object at a package boundary when
// its key row has no size (a crash after the object was written but before
// the size was recorded): the missing final package is still detected.
func TestTruncationWithUnknownSize(t *testing.T) {
	// A blob cut at a package boundary, when the size was not recorded:
	// only the missing final package tells. The long one is read in
	// parallel batches past its first MiB.
	defer encrypt.ForceDecryptWorkers(3)()
	for _, size := range []int64{3*pkg + 10, 40*pkg + 10} {
		ctx := context.Background()
		b := localBackend(t)
		keys := encrypt.NewMemKeys()
		s := encrypt.New(b.inner, keys, testRing(t), nil)
		key := storagetest.Key()
		if err := s.Put(ctx, key, bytes.NewReader(storagetest.Random(size)), -1); err != nil {
			t.Fatal(err)
		}
		keys.SetBlobKeySize(ctx, key, -1)
		b.tamper(t, key, func(raw []byte) []byte { return raw[:(size/pkg-1)*(pkg+32)] })
		obj, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(obj); !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("size %d: reading a blob cut at a package boundary: %v, want ErrCorrupt", size, err)
		}
		obj.Close()
	}
}
