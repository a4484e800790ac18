package encrypt_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/encrypt"
	"github.com/veloxhq/velox/internal/storage/storagetest"
	"github.com/veloxhq/velox/internal/testenv"
)

// benchSize is the blob size of the throughput benchmarks.
const benchSize = 64 << 20

// benchPutGet measures Put and Get of one store, plain and encrypted, in
// the same run so that the ratio means something on a shared machine.
func benchPutGet(b *testing.B, inner storage.Store) {
	ctx := context.Background()
	data := storagetest.Random(benchSize)
	stores := []struct {
		name string
		s    storage.Store
	}{
		{"plain", inner},
		{"encrypted", encrypt.New(inner, encrypt.NewMemKeys(), testRing(b), nil)},
	}
	for _, st := range stores {
		b.Run("Put/"+st.name, func(b *testing.B) {
			b.SetBytes(benchSize)
			for i := 0; i < b.N; i++ {
				key := storagetest.Key()
				if err := st.s.Put(ctx, key, bytes.NewReader(data), benchSize); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st.s.Delete(ctx, key)
				b.StartTimer()
			}
		})
	}
	// Long reads decrypt on GOMAXPROCS/2 workers; "encrypted-2workers"
	// forces two, as a machine with four cores would use.
	stores = append(stores, struct {
		name string
		s    storage.Store
	}{"encrypted-2workers", stores[1].s})
	for _, st := range stores {
		b.Run("Get/"+st.name, func(b *testing.B) {
			if st.name == "encrypted-2workers" {
				defer encrypt.ForceDecryptWorkers(2)()
			}
			key := storagetest.Key()
			if err := st.s.Put(ctx, key, bytes.NewReader(data), benchSize); err != nil {
				b.Fatal(err)
			}
			defer st.s.Delete(ctx, key)
			buf := make([]byte, 1<<20)
			b.SetBytes(benchSize)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				obj, err := st.s.Open(ctx, key)
				if err != nil {
					b.Fatal(err)
				}
				// Not io.Copy: a *os.File would use sendfile and measure
				// nothing of the plain read path.
				if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{obj}, buf); err != nil {
					b.Fatal(err)
				}
				obj.Close()
			}
		})
	}
}

func BenchmarkLocal(b *testing.B) {
	inner, _ := newLocal(b)
	benchPutGet(b, inner)
}

func BenchmarkSwift(b *testing.B) {
	env := testenv.Swift(b)
	benchPutGet(b, swiftStore(b, env, ""))
}

// zeroReader yields n zero bytes without holding them in memory.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.n)]
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// BenchmarkRange1GiB serves a 1-byte range from a 1 GiB encrypted blob
// the way http.ServeContent does: Open, Seek to the end, Seek to the
// offset, read.
func BenchmarkRange1GiB(b *testing.B) {
	ctx := context.Background()
	inner, _ := newLocal(b)
	s := encrypt.New(inner, encrypt.NewMemKeys(), testRing(b), nil)
	const size = 1 << 30
	key := storagetest.Key()
	start := time.Now()
	if err := s.Put(ctx, key, &zeroReader{n: size}, size); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote 1 GiB encrypted in %v", time.Since(start))
	b.ResetTimer()
	one := make([]byte, 1)
	for i := 0; i < b.N; i++ {
		obj, err := s.Open(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		off := int64(i) * 7919 * 4099 % size
		obj.Seek(0, io.SeekEnd)
		obj.Seek(off, io.SeekStart)
		if _, err := io.ReadFull(obj, one); err != nil {
			b.Fatal(err)
		}
		obj.Close()
	}
}
