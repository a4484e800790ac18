package swift

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ncw "github.com/ncw/swift/v2"
	"github.com/ncw/swift/v2/swifttest"

	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/storagetest"
	"github.com/veloxhq/velox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Tests use 2 MiB segments so that multi-segment paths are cheap.
const testSegment = 2 << 20

// testPrefix returns a container prefix no real deployment uses, so tests
// against a shared cluster never touch real data.
func testPrefix() string { return "velox-test-" + storagetest.Key()[:8] }

// fakeStore returns a Store on the in-memory swifttest server. The fake
// handles large objects only partly (ranges starting past the first
// segment are wrong), so it keeps the default threshold (5 GiB).
func fakeStore(t *testing.T) *Store {
	t.Helper()
	srv, err := swifttest.NewSwiftServer("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	s, err := New(context.Background(), Config{
		AuthURL: srv.AuthURL, User: swifttest.TEST_ACCOUNT, Key: swifttest.TEST_ACCOUNT,
		ContainerPrefix: testPrefix(), Shards: 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The fake updates its container table without locking, so
	// containers created by concurrent Puts would race in it: create
	// them all up front.
	for i := 0; i < s.shards; i++ {
		for _, c := range []string{s.prefix + "-", s.prefix + "-segments-"} {
			if err := s.ensureContainer(context.Background(), fmt.Sprintf("%s%x", c, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

func TestConformanceFake(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return fakeStore(t) })
}

// realStore returns a Store on the real cluster with small segments.
func realStore(t testing.TB, env testenv.SwiftEnv, prefix string) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{
		AuthURL: env.AuthURL, User: env.User, Key: env.Key,
		ContainerPrefix: prefix, SegmentSize: testSegment, LargeObjectThreshold: testSegment,
		Concurrency: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dropTestContainers deletes every container of s, and what is left in
// them, so that tests against a long-lived cluster leave nothing behind.
// It refuses prefixes that are not clearly a test's.
func dropTestContainers(t testing.TB, s *Store) {
	t.Helper()
	if !strings.HasPrefix(s.prefix, "velox-test-") {
		t.Fatalf("refusing to delete containers with prefix %q", s.prefix)
	}
	ctx := context.Background()
	var containers []string
	if err := s.list(ctx, "", s.prefix+"-", func(e listEntry) error {
		containers = append(containers, e.Name)
		return nil
	}); err != nil {
		t.Errorf("listing test containers: %v", err)
		return
	}
	for _, c := range containers {
		var names []string
		s.list(ctx, c, "", func(e listEntry) error {
			names = append(names, e.Name)
			return nil
		})
		s.deleteObjects(ctx, c, names)
		_, _, err := s.call(ctx, ncw.RequestOpts{Container: c, Operation: "DELETE", NoResponse: true})
		switch {
		case isStatus(err, http.StatusConflict):
			// Listings are eventually consistent, and test clusters
			// run no updaters: after a fault test a container may
			// count objects that are gone. An empty container is
			// harmless.
			t.Logf("test container %s not deleted: %v", c, err)
		case err != nil && !isStatus(err, http.StatusNotFound):
			t.Errorf("deleting test container %s: %v", c, err)
		}
	}
}

func TestConformanceReal(t *testing.T) {
	env := testenv.Swift(t)
	prefix := testPrefix()
	t.Cleanup(func() { dropTestContainers(t, realStore(t, env, prefix)) })
	storagetest.RunWithOptions(t, func(t *testing.T) storage.Store {
		return realStore(t, env, prefix)
	}, storagetest.Options{LargeSize: 5*testSegment/2 + 17})
}

// swiftCLI runs the python-swiftclient command line against env, to check
// what the store wrote with a client that shares no code with it.
func swiftCLI(t *testing.T, env testenv.SwiftEnv, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("swift"); err != nil {
		testenv.Unavailable(t, "swift command (python3-swiftclient)", err)
	}
	out, err := exec.Command("swift", append([]string{"-A", env.AuthURL, "-U", env.User, "-K", env.Key}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("swift %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestLayoutSeenFromSwiftCLI(t *testing.T) {
	env := testenv.Swift(t)
	prefix := testPrefix()
	s := realStore(t, env, prefix)
	t.Cleanup(func() { dropTestContainers(t, s) })
	ctx := context.Background()

	small, large := storagetest.Key(), storagetest.Key()
	if err := s.Put(ctx, small, strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	data := storagetest.Random(2*testSegment + 1000)
	if err := s.Put(ctx, large, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}

	containers := swiftCLI(t, env, "list", "--prefix", prefix)
	for _, key := range []string{small, large} {
		if c := s.container(key); !strings.Contains(containers, c+"\n") {
			t.Errorf("container %s of %s not in listing:\n%s", c, key, containers)
		}
		if !s.isShardContainer(s.container(key)) || len(s.container(key)) != len(prefix)+3 {
			t.Errorf("container %s is not <prefix>-<2 hex digits>", s.container(key))
		}
	}
	if got := swiftCLI(t, env, "list", s.container(small)); !strings.Contains(got, small) {
		t.Errorf("small blob %s not listed in %s:\n%s", small, s.container(small), got)
	}
	stat := swiftCLI(t, env, "stat", s.container(large), large)
	if !strings.Contains(stat, "X-Static-Large-Object: True") {
		t.Errorf("large blob is not a Static Large Object:\n%s", stat)
	}
	if !strings.Contains(stat, fmt.Sprintf("Content Length: %d", len(data))) {
		t.Errorf("large blob stat does not show its size %d:\n%s", len(data), stat)
	}
	segs := swiftCLI(t, env, "list", s.segmentContainer(large), "--prefix", large+"/")
	if n := len(strings.Fields(segs)); n != 3 {
		t.Errorf("large blob has %d segments, want 3:\n%s", n, segs)
	}

	for _, key := range []string{small, large} {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if got := swiftCLI(t, env, "list", s.container(small)); strings.Contains(got, small) {
		t.Errorf("small blob still listed after Delete:\n%s", got)
	}
	if got := swiftCLI(t, env, "list", s.container(large)); strings.Contains(got, large) {
		t.Errorf("large blob still listed after Delete:\n%s", got)
	}
	if got := swiftCLI(t, env, "list", s.segmentContainer(large), "--prefix", large+"/"); strings.TrimSpace(got) != "" {
		t.Errorf("segments left after Delete:\n%s", got)
	}
}

// TestPartsSegments checks that a completed resumable upload is a manifest
// over the uploaded parts (nothing copied) and that Delete and AbortParts
// leave no part behind.
func TestPartsSegments(t *testing.T) {
	env := testenv.Swift(t)
	s := realStore(t, env, testPrefix())
	t.Cleanup(func() { dropTestContainers(t, s) })
	ctx := context.Background()
	id, key := storagetest.Key(), storagetest.Key()
	parts := [][]byte{storagetest.Random(storage.MinPartSize), storagetest.Random(5)}
	for i, p := range parts {
		if err := s.PutPart(ctx, id, i, bytes.NewReader(p), int64(len(p))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CompleteParts(ctx, key, id, []int64{storage.MinPartSize, 5}); err != nil {
		t.Fatal(err)
	}
	if stat := swiftCLI(t, env, "stat", s.container(key), key); !strings.Contains(stat, "X-Static-Large-Object: True") {
		t.Errorf("completed upload is not a Static Large Object:\n%s", stat)
	}
	if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Error("completed upload reads back differently")
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := swiftCLI(t, env, "list", s.segmentContainer(id), "--prefix", s.partPrefix(id)); strings.TrimSpace(got) != "" {
		t.Errorf("parts left after deleting the completed blob:\n%s", got)
	}

	id = storagetest.Key()
	for i, p := range parts {
		if err := s.PutPart(ctx, id, i, bytes.NewReader(p), int64(len(p))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AbortParts(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := swiftCLI(t, env, "list", s.segmentContainer(id), "--prefix", s.partPrefix(id)); strings.TrimSpace(got) != "" {
		t.Errorf("parts left after AbortParts:\n%s", got)
	}
}

// TestServeContentRange serves a multi-segment blob through
// http.ServeContent, which seeks to the end first to learn the size.
func TestServeContentRange(t *testing.T) {
	env := testenv.Swift(t)
	s := realStore(t, env, testPrefix())
	t.Cleanup(func() { dropTestContainers(t, s) })
	ctx := context.Background()
	key := storagetest.Key()
	data := storagetest.Random(3*testSegment + 5)
	if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	defer storagetest.Cleanup(t, s, key)
	obj, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	lo, hi := testSegment-3, 2*testSegment+3 // spans two segment boundaries
	req := httptest.NewRequest("GET", "/blob", nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", lo, hi))
	w := httptest.NewRecorder()
	http.ServeContent(w, req, "blob", time.Time{}, obj)
	if w.Code != http.StatusPartialContent {
		t.Fatalf("status = %d, want 206", w.Code)
	}
	if !bytes.Equal(w.Body.Bytes(), data[lo:hi+1]) {
		t.Errorf("range body differs (%d bytes, want %d)", w.Body.Len(), hi+1-lo)
	}
}

func TestReauthenticatesWhenTokenExpires(t *testing.T) {
	env := testenv.OwnSwift(t)
	env.AuthURL = env.ShortTokenAuthURL(t)
	s := realStore(t, env, testPrefix())
	t.Cleanup(func() { dropTestContainers(t, s) })
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	first := s.conn.AuthToken
	expire := func() { time.Sleep((testenv.SwiftShortTokenLife + 1) * time.Second) }
	expire()

	// A streamed upload: ncw gets 401 before sending the body (Expect:
	// 100-continue), re-authenticates and replays it.
	key := storagetest.Key()
	data := storagetest.Random(100 << 10)
	if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put with an expired token: %v", err)
	}
	if s.conn.AuthToken == first {
		t.Fatal("token unchanged after it expired")
	}
	expire()
	if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, data) {
		t.Error("read back differs")
	}
	expire()
	large := storagetest.Key()
	big := storagetest.Random(2*testSegment + 1)
	if err := s.Put(ctx, large, bytes.NewReader(big), -1); err != nil {
		t.Fatalf("large Put with an expired token: %v", err)
	}
	expire()
	for _, k := range []string{key, large} {
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("Delete with an expired token: %v", err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Config{
		AuthURL: fmt.Sprintf("http://127.0.0.1:%d/auth/v1.0", port), User: "test:tester", Key: "x",
		Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	if err := s.Put(ctx, "abcd", strings.NewReader("x"), 1); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Put error = %v, want ErrUnavailable", err)
	}
	if _, err := s.Open(ctx, "abcd"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Open error = %v, want ErrUnavailable", err)
	}
	if err := s.Check(ctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Check error = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("three failed calls took %v", d)
	}
}

// TestRetriesServerErrors makes the first PUT and GET of every object fail
// with 503 and checks that the store retries them.
func TestRetriesServerErrors(t *testing.T) {
	srv, err := swifttest.NewSwiftServer("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	failed := map[string]bool{}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		id := r.Method + " " + r.URL.Path
		fail := !failed[id] && (r.Method == "PUT" || r.Method == "GET") && strings.Count(r.URL.Path, "/") >= 4
		failed[id] = true
		mu.Unlock()
		if fail {
			io.Copy(io.Discard, r.Body)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		proxy(w, r, srv.URL)
	}))
	defer front.Close()
	s, err := New(context.Background(), Config{
		AuthURL: srv.AuthURL, User: swifttest.TEST_ACCOUNT, Key: swifttest.TEST_ACCOUNT,
		StorageURL: front.URL + "/v1/AUTH_" + swifttest.TEST_ACCOUNT, ContainerPrefix: testPrefix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := storagetest.Key()
	data := storagetest.Random(1000)
	// Unknown size: the body is in memory, so a failed PUT can be sent again.
	if err := s.Put(ctx, key, bytes.NewReader(data), -1); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, data) {
		t.Error("read back differs")
	}
}

// proxy forwards r to base, the fake's storage root.
func proxy(w http.ResponseWriter, r *http.Request, base string) {
	u := strings.TrimSuffix(base, "/v1") + r.URL.RequestURI()
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u, r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	req.Header = r.Header.Clone()
	req.ContentLength = r.ContentLength
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), 502)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// TestObjectServerDown stops one of the four object servers while blobs
// are being written and read by several goroutines, and while a large
// download is in flight: with three replicas every operation must still
// succeed with the right bytes, and again after the server is back.
func TestObjectServerDown(t *testing.T) {
	env := testenv.OwnSwift(t)
	s := realStore(t, env, testPrefix())
	t.Cleanup(func() { dropTestContainers(t, s) })
	ctx := context.Background()

	type blob struct {
		key  string
		data []byte
	}
	var (
		mu    sync.Mutex
		blobs []blob
		ops   int
	)
	roundTrip := func(size int) error {
		b := blob{storagetest.Key(), storagetest.Random(int64(size))}
		if err := s.Put(ctx, b.key, bytes.NewReader(b.data), int64(size)); err != nil {
			return fmt.Errorf("Put(%d bytes): %w", size, err)
		}
		obj, err := s.Open(ctx, b.key)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			return err
		}
		if !bytes.Equal(got, b.data) {
			return fmt.Errorf("blob %s (%d bytes) reads back differently", b.key, size)
		}
		mu.Lock()
		blobs = append(blobs, b)
		ops++
		mu.Unlock()
		return nil
	}
	opsDone := func() int {
		mu.Lock()
		defer mu.Unlock()
		return ops
	}
	waitOps := func(n int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for opsDone() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d operations done, waiting for %d", opsDone(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	checkAll := func() {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for _, b := range blobs {
			if got := storagetest.ReadAll(t, s, b.key); !bytes.Equal(got, b.data) {
				t.Fatalf("blob %s (%d bytes) reads back differently", b.key, len(b.data))
			}
		}
	}

	big := blob{storagetest.Key(), storagetest.Random(6 * testSegment)}
	if err := s.Put(ctx, big.key, bytes.NewReader(big.data), int64(len(big.data))); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				size := 100<<10 + i
				if i%2 == 1 {
					size = 2*testSegment + 100 + i // a large object
				}
				if err := roundTrip(size); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	waitOps(4)

	obj, err := s.Open(ctx, big.key)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, testSegment)
	if _, err := io.ReadFull(obj, head); err != nil {
		t.Fatal(err)
	}
	victim := 1
	env.StopObjectServer(t, victim)
	before := opsDone()
	restarted := false
	defer func() {
		if !restarted {
			env.StartObjectServer(t, victim)
		}
	}()
	rest, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || !bytes.Equal(append(head, rest...), big.data) {
		t.Fatalf("download across the server stop: err=%v, equal=%v", err, bytes.Equal(append(head, rest...), big.data))
	}
	waitOps(before + 8)
	close(stop)
	wg.Wait()
	during := opsDone() - before
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Errorf("with object server %d down: %v", victim, err)
		}
	}
	checkAll()
	mu.Lock()
	for _, b := range blobs[:4] {
		if err := s.Delete(ctx, b.key); err != nil {
			t.Errorf("Delete with a server down: %v", err)
		}
	}
	blobs = blobs[4:]
	mu.Unlock()

	env.StartObjectServer(t, victim)
	restarted = true
	checkAll()
	if err := roundTrip(2*testSegment + 1); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	t.Logf("%d round trips, at least %d of them with object server %d down", opsDone(), during, victim)
}

// patternReader yields n pseudo-random bytes without holding them.
type patternReader struct {
	rng *rand.ChaCha8
	n   int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	p.rng.Read(b)
	p.n -= int64(len(b))
	return len(b), nil
}

func newPattern(n int64) *patternReader {
	return &patternReader{rng: rand.NewChaCha8([32]byte{7}), n: n}
}

// TestHugeRoundTrip stores 300 MiB and a bit as a Static Large Object of
// 64 MiB segments, streaming both ways. It runs under -race too (CI's mode):
// the issue asks for this size on the real cluster.
func TestHugeRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("300 MiB round trip skipped with -short")
	}
	env := testenv.Swift(t)
	s, err := New(context.Background(), Config{AuthURL: env.AuthURL, User: env.User, Key: env.Key, ContainerPrefix: testPrefix(),
		SegmentSize: 64 << 20, LargeObjectThreshold: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTestContainers(t, s) })
	ctx := context.Background()
	const size = 300<<20 + 12345
	for _, declared := range []int64{size, -1} {
		key := storagetest.Key()
		want := sha256.New()
		start := time.Now()
		if err := s.Put(ctx, key, io.TeeReader(newPattern(size), want), declared); err != nil {
			t.Fatalf("Put(declared %d): %v", declared, err)
		}
		putTime := time.Since(start)
		obj, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.New()
		start = time.Now()
		n, err := io.Copy(got, obj)
		obj.Close()
		if err != nil || n != size {
			t.Fatalf("read %d bytes, %v; want %d", n, err, size)
		}
		if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Fatal("SHA-256 of the blob read back differs")
		}
		t.Logf("declared %d: put %.0f MB/s, get %.0f MB/s", declared, size/putTime.Seconds()/1e6, size/time.Since(start).Seconds()/1e6)
		if stat := swiftCLI(t, env, "stat", s.container(key), key); !strings.Contains(stat, "X-Static-Large-Object: True") {
			t.Errorf("huge blob is not a Static Large Object:\n%s", stat)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFailedLargePutLeavesNoSegments breaks the source of a large upload
// after some segments went up, and cancels another: neither the key nor any
// segment may remain.
func TestFailedLargePutLeavesNoSegments(t *testing.T) {
	env := testenv.Swift(t)
	s := realStore(t, env, testPrefix())
	t.Cleanup(func() { dropTestContainers(t, s) })
	ctx := context.Background()
	boom := errors.New("client went away")
	for _, tc := range []struct {
		name string
		put  func(key string) error
	}{
		{"reader error", func(key string) error {
			r := io.MultiReader(newPattern(3*testSegment+5), errorReader{boom})
			return s.Put(ctx, key, r, 5*testSegment)
		}},
		{"short reader", func(key string) error {
			return s.Put(ctx, key, newPattern(3*testSegment+5), 4*testSegment)
		}},
		{"cancelled", func(key string) error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			r := io.MultiReader(newPattern(3*testSegment), cancelReader{cancel}, newPattern(2*testSegment))
			return s.Put(cctx, key, r, -1)
		}},
	} {
		key := storagetest.Key()
		if err := tc.put(key); err == nil {
			t.Errorf("%s: Put succeeded", tc.name)
			continue
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: Stat after failed Put: %v, want ErrNotFound", tc.name, err)
		}
		var left []string
		err := s.list(ctx, s.segmentContainer(key), key+"/", func(e listEntry) error {
			left = append(left, e.Name)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("%s: segments left behind: %v", tc.name, left)
		}
	}
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// cancelReader cancels a context when read, and yields nothing.
type cancelReader struct{ cancel func() }

func (c cancelReader) Read([]byte) (int, error) {
	c.cancel()
	return 0, io.EOF
}

// TestSeekDoesNotDownloadSkippedBytes counts the bytes the fake sends while
// a reader seeks to the end of a blob and reads its tail.
func TestSeekDoesNotDownloadSkippedBytes(t *testing.T) {
	srv, err := swifttest.NewSwiftServer("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	var sent int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		proxy(cw, r, srv.URL)
		mu.Lock()
		sent += cw.n
		mu.Unlock()
	}))
	defer front.Close()
	s, err := New(context.Background(), Config{
		AuthURL: srv.AuthURL, User: swifttest.TEST_ACCOUNT, Key: swifttest.TEST_ACCOUNT,
		StorageURL: front.URL + "/v1/AUTH_" + swifttest.TEST_ACCOUNT, ContainerPrefix: testPrefix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := storagetest.Key()
	data := storagetest.Random(8 << 20)
	if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	sent = 0
	mu.Unlock()
	obj, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if _, err := obj.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Seek(-100, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(tail, data[len(data)-100:]) {
		t.Fatalf("tail: %v, equal=%v", err, bytes.Equal(tail, data[len(data)-100:]))
	}
	mu.Lock()
	defer mu.Unlock()
	if sent > 100 {
		t.Errorf("the server sent %d body bytes for a 100-byte tail", sent)
	}
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// TestTLSWithCACert reaches the storage URL over HTTPS with a private CA.
func TestTLSWithCACert(t *testing.T) {
	srv, err := swifttest.NewSwiftServer("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxy(w, r, srv.URL)
	}))
	defer front.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		caFile string
		ok     bool
	}{{"trusted CA", caFile, true}, {"system CAs", "", false}} {
		s, err := New(context.Background(), Config{
			AuthURL: srv.AuthURL, User: swifttest.TEST_ACCOUNT, Key: swifttest.TEST_ACCOUNT,
			StorageURL: front.URL + "/v1/AUTH_" + swifttest.TEST_ACCOUNT, ContainerPrefix: testPrefix(),
			CACertFile: tc.caFile, Retries: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Check(context.Background())
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check error = %v, want success %v", tc.name, err, tc.ok)
		}
	}
}

// testSweep leaves segments without a manifest (an upload that died) and
// extra segments next to a live blob's (a blob overwritten), then checks
// that Sweep removes exactly those.
func testSweep(t *testing.T, s *Store) {
	ctx := context.Background()
	live := storagetest.Key()
	data := storagetest.Random(2*s.segmentSize + 10)
	if err := s.Put(ctx, live, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	dead := storagetest.Key()
	// Not a map keyed by container: both keys may fall in one shard.
	orphans := []struct{ container, name string }{
		{s.segmentContainer(dead), dead + "/0123456789abcdef/00000000"},
		{s.segmentContainer(dead), dead + "/0123456789abcdef/00000001"},
		{s.segmentContainer(live), live + "/0123456789abcdef/00000000"},
	}
	for _, o := range orphans {
		if err := s.putBytes(ctx, o.container, o.name, []byte("orphan"), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Part of an upload session: not Sweep's business.
	if err := s.PutPart(ctx, dead, 0, strings.NewReader("part"), 4); err != nil {
		t.Fatal(err)
	}
	segments := func(c, key string) []string {
		var names []string
		if err := s.list(ctx, c, key+"/", func(e listEntry) error {
			names = append(names, e.Name)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return names
	}

	if err := s.Sweep(ctx, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := segments(s.segmentContainer(dead), dead); len(got) != 2 {
		t.Errorf("Sweep of old leftovers only removed new ones: %v left", got)
	}

	if err := s.Sweep(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := segments(s.segmentContainer(dead), dead); len(got) != 0 {
		t.Errorf("orphan segments left: %v", got)
	}
	if got := segments(s.segmentContainer(live), live); len(got) != 3 {
		t.Errorf("live blob has segments %v, want its 3", got)
	}
	if got := storagetest.ReadAll(t, s, live); !bytes.Equal(got, data) {
		t.Error("live blob damaged by Sweep")
	}
	if got := segments(s.segmentContainer(dead), "parts/"+dead); len(got) != 1 {
		t.Errorf("Sweep touched an upload's parts: %v left", got)
	}
	s.AbortParts(ctx, dead)
	storagetest.Cleanup(t, s, live)
}

func TestSweepFake(t *testing.T) {
	s := fakeStore(t)
	// The fake serves whole large objects correctly, which is all this needs.
	s.segmentSize, s.threshold = testSegment, testSegment
	testSweep(t, s)
}

func TestSweepReal(t *testing.T) {
	env := testenv.Swift(t)
	s := realStore(t, env, testPrefix())
	t.Cleanup(func() { dropTestContainers(t, s) })
	testSweep(t, s)
}

// TestKeystoneV3 checks that the Keystone settings reach the token request
// and pick the right endpoint, against a fake Keystone and storage server.
func TestKeystoneV3(t *testing.T) {
	const token = "gAAAAtoken"
	var storageHits int
	var mu sync.Mutex
	storageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		storageHits++
		mu.Unlock()
		if r.Header.Get("X-Auth-Token") != token || r.URL.Path != "/v1/AUTH_proj" {
			http.Error(w, "wrong token or account", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer storageSrv.Close()
	var got struct {
		Auth struct {
			Identity struct {
				Password struct {
					User struct {
						Name, Password string
						Domain         struct{ Name string }
					}
				}
			}
			Scope struct {
				Project struct {
					Name   string
					Domain struct{ Name string }
				}
			}
		}
	}
	keystone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v3/auth/tokens" {
			http.NotFound(w, r)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Subject-Token", token)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token": {"expires_at": %q, "catalog": [{"type": "object-store", "endpoints": [
			{"interface": "public", "region": "Other", "url": "http://127.0.0.1:1/v1/AUTH_proj"},
			{"interface": "public", "region": "RegionTwo", "url": "%s/v1/AUTH_proj"}]}]}}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339), storageSrv.URL)
	}))
	defer keystone.Close()

	s, err := New(context.Background(), Config{
		AuthURL: keystone.URL + "/v3", AuthVersion: 3,
		User: "velox", Key: "secret", Domain: "UserDomain",
		Project: "proj", ProjectDomain: "ProjDomain", Region: "RegionTwo",
		Retries: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	u := got.Auth.Identity.Password.User
	if u.Name != "velox" || u.Password != "secret" || u.Domain.Name != "UserDomain" {
		t.Errorf("token request user = %+v", u)
	}
	if p := got.Auth.Scope.Project; p.Name != "proj" || p.Domain.Name != "ProjDomain" {
		t.Errorf("token request project = %+v", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if storageHits != 1 {
		t.Errorf("storage server got %d requests, want 1", storageHits)
	}
}

func TestContainerNames(t *testing.T) {
	for _, tc := range []struct {
		shards int
		name   string
		want   bool
	}{
		{256, "velox-00", true},
		{256, "velox-ff", true},
		{256, "velox-FF", false}, // not a name the store makes
		{256, "velox-0", false},
		{256, "velox-100", false},
		{256, "velox-segments-00", false},
		{256, "other-00", false},
		{16, "velox-f", true},
		{16, "velox-0f", false},
		{4096, "velox-fff", true},
		{1000, "velox-3e8", false}, // shard 1000 of 0..999
	} {
		s, err := New(context.Background(), Config{AuthURL: "http://127.0.0.1:1/auth/v1.0", User: "u", Shards: tc.shards})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.isShardContainer(tc.name); got != tc.want {
			t.Errorf("shards=%d: isShardContainer(%q) = %v, want %v", tc.shards, tc.name, got, tc.want)
		}
		seg := "velox-segments-" + strings.TrimPrefix(tc.name, "velox-")
		if got := s.isSegmentContainer(seg); got != tc.want {
			t.Errorf("shards=%d: isSegmentContainer(%q) = %v, want %v", tc.shards, seg, got, tc.want)
		}
	}
	s, _ := New(context.Background(), Config{AuthURL: "http://127.0.0.1:1/auth/v1.0", User: "u"})
	seen := map[string]bool{}
	for i := 0; i < 5000; i++ {
		c := s.container(storagetest.Key())
		if !s.isShardContainer(c) {
			t.Fatalf("container(%q) = %q is not a shard container", c, c)
		}
		seen[c] = true
	}
	if len(seen) < 250 {
		t.Errorf("5000 random keys fell into only %d of 256 shards", len(seen))
	}
}

// TestTwoUnauthorizedInARow answers the first two requests for an object
// with 401, as tempauth does when re-authentication returned a token that
// expired a moment later: the store must get through.
func TestTwoUnauthorizedInARow(t *testing.T) {
	srv, err := swifttest.NewSwiftServer("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	rejected := map[string]int{}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		id := r.Method + " " + r.URL.Path
		reject := strings.Count(r.URL.Path, "/") >= 4 && rejected[id] < 2
		if reject {
			rejected[id]++
		}
		mu.Unlock()
		if reject {
			// Like tempauth, answer without reading the body, so a
			// client that sent "Expect: 100-continue" still has it.
			http.Error(w, "token expired", http.StatusUnauthorized)
			return
		}
		proxy(w, r, srv.URL)
	}))
	defer front.Close()
	s, err := New(context.Background(), Config{
		AuthURL: srv.AuthURL, User: swifttest.TEST_ACCOUNT, Key: swifttest.TEST_ACCOUNT,
		StorageURL: front.URL + "/v1/AUTH_" + swifttest.TEST_ACCOUNT, ContainerPrefix: testPrefix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := storagetest.Key()
	data := storagetest.Random(1000)
	if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, data) {
		t.Error("read back differs")
	}
}

// TestManifestOfManifests stores a blob, and completes an upload, with more
// segments than one manifest may list (3 here, 1000 on a default cluster):
// both become a manifest of sub-manifests, which reads back whole and in
// ranges across sub-manifest boundaries, survives Sweep, and leaves nothing
// behind when deleted.
func TestManifestOfManifests(t *testing.T) {
	env := testenv.Swift(t)
	s, err := New(context.Background(), Config{
		AuthURL: env.AuthURL, User: env.User, Key: env.Key, ContainerPrefix: testPrefix(),
		SegmentSize: storage.MinPartSize, LargeObjectThreshold: storage.MinPartSize, ManifestSegments: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTestContainers(t, s) })
	ctx := context.Background()

	// 8 segments: sub-manifests of 3, 3 and 2.
	blob := storagetest.Key()
	data := storagetest.Random(7*storage.MinPartSize + 17)
	if err := s.Put(ctx, blob, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	// 7 parts: sub-manifests of 3, 3 and 1.
	upload, done := storagetest.Key(), storagetest.Key()
	var parts [][]byte
	var sizes []int64
	for i := range 7 {
		n := int64(storage.MinPartSize)
		if i == 6 {
			n = 5
		}
		p := storagetest.Random(n)
		parts, sizes = append(parts, p), append(sizes, n)
		if err := s.PutPart(ctx, upload, i, bytes.NewReader(p), n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CompleteParts(ctx, done, upload, sizes); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{blob: data, done: bytes.Join(parts, nil)}

	// What Swift holds: a top manifest of 3 sub-manifests.
	for key, subs := range map[string]string{blob: s.segmentContainer(blob) + "/" + blob + "/", done: s.segmentContainer(upload) + "/" + s.partPrefix(upload)} {
		raw := swiftCLI(t, env, "stat", s.container(key), key)
		if !strings.Contains(raw, "X-Static-Large-Object: True") || !strings.Contains(raw, fmt.Sprintf("Content Length: %d", len(want[key]))) {
			t.Errorf("%s is not a Static Large Object of %d bytes:\n%s", key, len(want[key]), raw)
		}
		var top []struct {
			Name   string `json:"name"`
			SubSLO bool   `json:"sub_slo"`
		}
		// The CLI shows no manifest; ask Swift for it.
		resp, _, err := s.call(ctx, ncw.RequestOpts{Container: s.container(key), ObjectName: key, Operation: "GET",
			Parameters: url.Values{"multipart-manifest": {"get"}}})
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&top)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(top) != 3 {
			t.Errorf("manifest of %s lists %d entries, want 3 sub-manifests", key, len(top))
		}
		for _, e := range top {
			if !e.SubSLO || !strings.HasPrefix(e.Name, "/"+subs) {
				t.Errorf("manifest of %s lists %+v, want a sub-manifest under %s", key, e, subs)
			}
		}
	}

	check := func(when string) {
		for key, b := range want {
			if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, b) {
				t.Errorf("%s: %s reads back differently", when, key)
			}
			// Ranges across the first sub-manifest's end (3 segments in).
			for _, off := range []int64{3*storage.MinPartSize - 10, 3 * storage.MinPartSize, 6*storage.MinPartSize - 1} {
				o, err := s.Open(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := o.Seek(off, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, min(int64(100), int64(len(b))-off))
				_, err = io.ReadFull(o, got)
				o.Close()
				if err != nil || !bytes.Equal(got, b[off:off+int64(len(got))]) {
					t.Errorf("%s: %s at %d: %v", when, key, off, err)
				}
			}
		}
	}
	check("stored")
	if err := s.Sweep(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	check("after Sweep")

	for key := range want {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if got := swiftCLI(t, env, "list", s.segmentContainer(blob), "--prefix", blob+"/"); strings.TrimSpace(got) != "" {
		t.Errorf("segments or sub-manifests left after Delete:\n%s", got)
	}
	if got := swiftCLI(t, env, "list", s.segmentContainer(upload), "--prefix", s.partPrefix(upload)); strings.TrimSpace(got) != "" {
		t.Errorf("parts or sub-manifests left after Delete:\n%s", got)
	}
}
