package swift

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/veloxhq/velox/internal/storage/storagetest"
	"github.com/veloxhq/velox/internal/testenv"
)

// BenchmarkPutGet compares Store.Put and Open+Read with plain HTTP PUT and
// GET of one object on the same cluster, which is what curl would reach:
//
//	go test -run XXX -bench PutGet -benchtime 3x ./internal/storage/swift/
func BenchmarkPutGet(b *testing.B) {
	env := testenv.Swift(b)
	ctx := context.Background()
	s, err := New(ctx, Config{AuthURL: env.AuthURL, User: env.User, Key: env.Key, ContainerPrefix: testPrefix()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dropTestContainers(b, s) })
	storageURL, token := rawAuth(b, env)
	rawContainer := storageURL + "/" + testPrefix() + "-raw"
	if err := rawDo("PUT", rawContainer, token, nil, 0); err != nil {
		b.Fatal(err)
	}

	for _, size := range []int64{64 << 20, 256 << 20} {
		name := fmt.Sprintf("%dMiB", size>>20)
		key := storagetest.Key()
		b.Run("store/put/"+name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if err := s.Put(ctx, key, newPattern(size), size); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("store/get/"+name, func(b *testing.B) { benchReads(b, s, key, size) })
		if err := s.Delete(ctx, key); err != nil {
			b.Fatal(err)
		}
		obj := rawContainer + "/" + key
		b.Run("raw/put/"+name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if err := rawDo("PUT", obj, token, newPattern(size), size); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/get/"+name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if err := rawDo("GET", obj, token, nil, size); err != nil {
					b.Fatal(err)
				}
			}
		})
		rawDo("DELETE", obj, token, nil, 0)
	}
	rawDo("DELETE", rawContainer, token, nil, 0)
}

// benchReads reads the blob key of size bytes whole, once per iteration.
func benchReads(b *testing.B, s *Store, key string, size int64) {
	b.SetBytes(size)
	for b.Loop() {
		obj, err := s.Open(context.Background(), key)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, obj); err != nil || n != size {
			b.Fatalf("read %d, %v", n, err)
		}
		obj.Close()
	}
}

func rawAuth(b testing.TB, env testenv.SwiftEnv) (storageURL, token string) {
	req, _ := http.NewRequest("GET", env.AuthURL, nil)
	req.Header.Set("X-Auth-User", env.User)
	req.Header.Set("X-Auth-Key", env.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Storage-Url"), resp.Header.Get("X-Auth-Token")
}

// rawDo sends one request; for GET it reads and checks size bytes.
func rawDo(method, url, token string, body io.Reader, size int64) error {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", token)
	if method == "PUT" {
		req.ContentLength = size
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	if method == "GET" && n != size {
		return fmt.Errorf("GET %s: %d bytes, want %d", url, n, size)
	}
	return nil
}

// BenchmarkSegmentedGet reads a Static Large Object of 16 MiB segments
// whole: through Store with and without the next segment's GET started
// early, and, as baselines in the same run, with one plain GET of the
// manifest (Swift joins the segments) and of a single object of the same
// size:
//
//	go test -run XXX -bench SegmentedGet -benchtime 5x ./internal/storage/swift/
func BenchmarkSegmentedGet(b *testing.B) {
	const size, segment = 256 << 20, 16 << 20
	env := testenv.Swift(b)
	ctx := context.Background()
	s, err := New(ctx, Config{AuthURL: env.AuthURL, User: env.User, Key: env.Key, ContainerPrefix: testPrefix(),
		SegmentSize: segment, LargeObjectThreshold: segment})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dropTestContainers(b, s) })
	key := storagetest.Key()
	if err := s.Put(ctx, key, newPattern(size), size); err != nil {
		b.Fatal(err)
	}
	storageURL, token := rawAuth(b, env)
	rawContainer := storageURL + "/" + testPrefix() + "-raw"
	single := rawContainer + "/" + key
	if err := rawDo("PUT", rawContainer, token, nil, 0); err != nil {
		b.Fatal(err)
	}
	if err := rawDo("PUT", single, token, newPattern(size), size); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		rawDo("DELETE", single, token, nil, 0)
		rawDo("DELETE", rawContainer, token, nil, 0)
	})
	read := func(b *testing.B, within int64) {
		defer func(old int64) { prefetchWithin = old }(prefetchWithin)
		prefetchWithin = within
		benchReads(b, s, key, size)
	}
	raw := func(b *testing.B, url string) {
		b.SetBytes(size)
		for b.Loop() {
			if err := rawDo("GET", url, token, nil, size); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("store/prefetch", func(b *testing.B) { read(b, prefetchWithin) })
	b.Run("store/sequential", func(b *testing.B) { read(b, -1) })
	b.Run("raw/manifest", func(b *testing.B) { raw(b, storageURL+"/"+s.container(key)+"/"+key) })
	b.Run("raw/single", func(b *testing.B) { raw(b, single) })
}
