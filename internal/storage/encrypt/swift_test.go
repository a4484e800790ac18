package encrypt_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/encrypt"
	"github.com/veloxhq/velox/internal/storage/storagetest"
	"github.com/veloxhq/velox/internal/storage/swift"
	"github.com/veloxhq/velox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// swiftSegment is small so that test blobs span several SLO segments.
const swiftSegment = 1 << 20

// swiftStore returns a Swift store on the real cluster, under a test-only
// container prefix whose containers are deleted afterwards. With
// storageURL set, requests go there (a counting proxy).
func swiftStore(t testing.TB, env testenv.SwiftEnv, storageURL string) *swift.Store {
	t.Helper()
	prefix := "velox-test-" + storagetest.Key()[:8]
	s, err := swift.New(context.Background(), swift.Config{
		AuthURL: env.AuthURL, User: env.User, Key: env.Key, StorageURL: storageURL,
		ContainerPrefix: prefix, SegmentSize: swiftSegment, LargeObjectThreshold: swiftSegment, Concurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropContainers(t, s, env, prefix) })
	return s
}

// dropContainers deletes what a test left and, with the swift command,
// its containers.
func dropContainers(t testing.TB, s *swift.Store, env testenv.SwiftEnv, prefix string) {
	ctx := context.Background()
	var keys []string
	s.List(ctx, func(i storage.Info) error { keys = append(keys, i.Key); return nil })
	for _, k := range keys {
		s.Delete(ctx, k)
	}
	if _, err := exec.LookPath("swift"); err != nil {
		return
	}
	args := []string{"-A", env.AuthURL, "-U", env.User, "-K", env.Key}
	out, err := exec.Command("swift", append(args, "list", "--prefix", prefix)...).Output()
	if err != nil {
		return
	}
	for _, c := range strings.Fields(string(out)) {
		if strings.HasPrefix(c, "velox-test-") {
			exec.Command("swift", append(args, "delete", c)...).Run()
		}
	}
}

func swiftBackend(t *testing.T) backend {
	env := testenv.Swift(t)
	s := swiftStore(t, env, "")
	c := &countingStore{Store: s}
	return backend{inner: c, counter: c, tamper: func(t *testing.T, key string, edit func([]byte) []byte) {
		// Straight to the cluster, bypassing encryption.
		raw := storagetest.ReadAll(t, s, key)
		b := edit(raw)
		if err := s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}}
}

func TestConformanceSwift(t *testing.T) {
	env := testenv.Swift(t)
	storagetest.RunWithOptions(t, func(t *testing.T) storage.Store {
		return encrypt.New(swiftStore(t, env, ""), encrypt.NewMemKeys(), testRing(t), nil)
	}, storagetest.Options{LargeSize: 5*swiftSegment/2 + 17})
}

func TestSwift(t *testing.T) { runBackendTests(t, swiftBackend) }

// TestSwiftSegmentBoundaries reads around every SLO segment boundary of a
// blob written by Put (segments are cut from ciphertext, so they fall
// inside packages).
func TestSwiftSegmentBoundaries(t *testing.T) {
	env := testenv.Swift(t)
	s := encrypt.New(swiftStore(t, env, ""), encrypt.NewMemKeys(), testRing(t), nil)
	ctx := context.Background()
	size := int64(3*swiftSegment + 12345)
	data := storagetest.Random(size)
	key := storagetest.Key()
	if err := s.Put(ctx, key, bytes.NewReader(data), size); err != nil {
		t.Fatal(err)
	}
	defer storagetest.Cleanup(t, s, key)
	var offs []int64
	for seg := int64(1); seg <= 3; seg++ {
		c := seg * swiftSegment // ciphertext offset of the boundary
		p := c/(pkg+32)*pkg + max(c%(pkg+32)-16, 0)
		for d := int64(-2); d <= 2; d++ {
			if o := p + d; o >= 0 && o < size {
				offs = append(offs, o)
			}
		}
	}
	checkRanges(t, s, key, data, append(offs, boundaries(size, 8*pkg)...))
}

// TestSwiftOneByteRangeIsOneRequest counts the requests a 1-byte range of
// a multi-segment encrypted blob makes, through a proxy.
func TestSwiftOneByteRangeIsOneRequest(t *testing.T) {
	env := testenv.Swift(t)
	if env.StorageURL == "" {
		t.Skip("external cluster: storage URL unknown")
	}
	target, _ := url.Parse(env.StorageURL)
	var gets atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := encrypt.New(swiftStore(t, env, srv.URL+target.Path), encrypt.NewMemKeys(), testRing(t), nil)
	ctx := context.Background()
	size := int64(3*swiftSegment + 5)
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
	gets.Store(0)
	off := int64(2*swiftSegment + 100)
	obj.Seek(0, io.SeekEnd)
	obj.Seek(off, io.SeekStart)
	b := make([]byte, 1)
	if _, err := io.ReadFull(obj, b); err != nil || b[0] != data[off] {
		t.Fatalf("1-byte read: %v", err)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("a 1-byte range made %d GET requests after Open, want 1", n)
	}
}
