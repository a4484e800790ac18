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
	s, _ := swiftStoreP(t, env, storageURL)
	return s
}

// swiftStoreP is swiftStore that also returns the container prefix.
func swiftStoreP(t testing.TB, env testenv.SwiftEnv, storageURL string) (*swift.Store, string) {
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
	return s, prefix
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
	s, prefix := swiftStoreP(t, env, "")
	c := &countingStore{Store: s}
	api := newSwiftAPI(t, env)
	return backend{inner: c, counter: c,
		raw: func(t *testing.T, key string) []byte {
			_, b := api.find(t, prefix, key)
			return b
		},
		tamper: func(t *testing.T, key string, edit func([]byte) []byte) {
			// Straight to the cluster with the Swift API: the edited
			// bytes replace the object (a large object's manifest too).
			path, b := api.find(t, prefix, key)
			api.do(t, http.MethodPut, path, edit(b), http.StatusCreated)
		}}
}

// swiftAPI speaks the Swift API with no code of the store's.
type swiftAPI struct {
	url, token string
}

func newSwiftAPI(t *testing.T, env testenv.SwiftEnv) *swiftAPI {
	req, _ := http.NewRequest(http.MethodGet, env.AuthURL, nil)
	req.Header.Set("X-Auth-User", env.User)
	req.Header.Set("X-Auth-Key", env.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a := &swiftAPI{url: resp.Header.Get("X-Storage-Url"), token: resp.Header.Get("X-Auth-Token")}
	if a.url == "" || a.token == "" {
		t.Fatalf("swift auth: %s", resp.Status)
	}
	return a
}

func (a *swiftAPI) do(t *testing.T, method, path string, body []byte, want int) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest(method, a.url+path, bytes.NewReader(body))
	req.Header.Set("X-Auth-Token", a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want != 0 && resp.StatusCode != want {
		t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
	return b, resp.StatusCode
}

// find returns the path and bytes of key in one of the prefix's containers.
func (a *swiftAPI) find(t *testing.T, prefix, key string) (string, []byte) {
	t.Helper()
	list, _ := a.do(t, http.MethodGet, "?format=plain&prefix="+url.QueryEscape(prefix), nil, 0)
	for _, c := range strings.Fields(string(list)) {
		path := "/" + c + "/" + key
		if b, code := a.do(t, http.MethodGet, path, nil, 0); code == http.StatusOK {
			return path, b
		}
	}
	t.Fatalf("object %s not found under containers %s*", key, prefix)
	return "", nil
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
		t.Fatal("the test cluster reported no storage URL")
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
