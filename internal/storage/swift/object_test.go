package swift

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/storagetest"
	"github.com/veloxhq/velox/internal/testenv"
)

// TestReadIdleTimeout serves an object whose body stalls half-way: a Read
// must give up after Timeout, resume with a ranged GET, and fail once the
// retries are spent, reporting Swift as unavailable. Pauses of the reader
// itself, longer than Timeout, must not count.
func TestReadIdleTimeout(t *testing.T) {
	const size = 1000
	var gets atomic.Int32
	stall := make(chan struct{})
	defer close(stall)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/auth/v1.0":
			w.Header().Set("X-Storage-Url", srv.URL+"/v1/AUTH_t")
			w.Header().Set("X-Auth-Token", "tok")
			w.WriteHeader(http.StatusNoContent)
		case r.Method == "HEAD":
			w.Header().Set("Content-Length", strconv.Itoa(size))
		case r.Method == "GET":
			gets.Add(1)
			off := 0
			if rng := r.Header.Get("Range"); rng != "" {
				off, _ = strconv.Atoi(rng[len("bytes=") : len(rng)-1])
				w.Header().Set("Content-Range", "bytes "+strconv.Itoa(off)+"-"+strconv.Itoa(size-1)+"/"+strconv.Itoa(size))
				w.Header().Set("Content-Length", strconv.Itoa(size-off))
				w.WriteHeader(http.StatusPartialContent)
			} else {
				w.Header().Set("Content-Length", strconv.Itoa(size))
			}
			half := size/2 - off
			if half > 0 {
				w.Write(make([]byte, half))
			}
			w.(http.Flusher).Flush()
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	s, err := New(context.Background(), Config{
		AuthURL: srv.URL + "/auth/v1.0", User: "t:t", Key: "k", AuthVersion: 1,
		Timeout: 300 * time.Millisecond, Retries: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Open(context.Background(), "someblob")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	buf := make([]byte, 100)
	if _, err := io.ReadFull(obj, buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // the reader pauses; Swift is not idle
	start := time.Now()
	n, err := io.ReadFull(obj, make([]byte, size-100))
	if n != size/2-100 || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("read %d bytes, %v; want %d and ErrUnavailable", n, err, size/2-100)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
	if got := gets.Load(); got != 3 {
		t.Errorf("%d GETs, want 3 (first, then 2 retries)", got)
	}
}

// TestWholeReadGetsSegments: a download of a Static Large Object from its
// first byte reads the manifest and then each segment by itself, so that
// the Swift proxy does not hash every byte a second time; a read from
// elsewhere goes through the manifest object in one ranged GET; and a
// segment replaced behind the manifest's back fails the read instead of
// returning other bytes.
func TestWholeReadGetsSegments(t *testing.T) {
	env := testenv.Swift(t)
	if env.StorageURL == "" {
		t.Fatal("the test cluster reported no storage URL")
	}
	target, _ := url.Parse(env.StorageURL)
	var mu sync.Mutex
	var gets []string
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	rpTransport := &http.Transport{}
	rp.Transport = rpTransport
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			gets = append(gets, r.URL.RawQuery+" "+r.URL.Path+" "+r.Header.Get("Range"))
			mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close) // after the containers are dropped through it
	s, err := New(context.Background(), Config{
		AuthURL: env.AuthURL, User: env.User, Key: env.Key, StorageURL: front.URL + target.Path,
		ContainerPrefix: testPrefix(), SegmentSize: testSegment, LargeObjectThreshold: testSegment,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTestContainers(t, s) })
	ctx := context.Background()
	key := storagetest.Key()
	data := storagetest.Random(3*testSegment + 5)
	if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := gets
		gets = nil
		return out
	}
	took()

	if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, data) {
		t.Fatal("whole read differs")
	}
	reqs := took()
	var manifest, segments, through int
	for _, g := range reqs {
		switch {
		case strings.HasPrefix(g, "multipart-manifest=get ") && strings.Contains(g, key):
			manifest++
		case strings.Contains(g, "-segments-"):
			segments++
		case strings.Contains(g, key):
			through++
		}
	}
	if manifest != 1 || segments != 4 || through != 0 {
		t.Errorf("whole read: %d manifest, %d segment and %d manifest-object GETs, want 1, 4, 0:\n%s",
			manifest, segments, through, strings.Join(reqs, "\n"))
	}

	// The next segment's GET starts before the current segment is read
	// to its end, and closing the object with that GET under way leaves
	// no response open (each would hold a connection and its goroutines).
	goroutines := func() int {
		s.conn.Transport.(rawBodyTransport).CloseIdleConnections()
		rpTransport.CloseIdleConnections()
		return runtime.NumGoroutine()
	}
	before := goroutines()
	for { // connections closed just now take their goroutines with them a little later
		time.Sleep(100 * time.Millisecond)
		now := goroutines()
		if now == before {
			break
		}
		before = now
	}
	obj, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, testSegment-1)
	if _, err := io.ReadFull(obj, head); err != nil || !bytes.Equal(head, data[:len(head)]) {
		t.Fatalf("first segment: %v", err)
	}
	var seen []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		seen = append(seen, took()...)
		n := 0
		for _, g := range seen {
			if strings.Contains(g, "-segments-") {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with one byte of the first segment left, these GETs were made, want the second segment's too:\n%s",
				strings.Join(seen, "\n"))
		}
	}
	obj.Close()
	for deadline := time.Now().Add(10 * time.Second); goroutines() > before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after closing an object with a GET under way, %d before", goroutines(), before)
		}
	}

	obj, err = s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(testSegment + 10)
	obj.Seek(off, io.SeekStart)
	rest, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || !bytes.Equal(rest, data[off:]) {
		t.Fatalf("read from %d: %v", off, err)
	}
	if reqs := took(); len(reqs) != 1 || !strings.Contains(reqs[0], key+" bytes=") {
		t.Errorf("a read from the middle made these GETs, want one ranged GET of the object:\n%s", strings.Join(reqs, "\n"))
	}

	// Replace the second segment with other bytes of the same size.
	segs := s.segments(ctx, s.container(key), key, int64(len(data)))
	if len(segs) != 4 {
		t.Fatalf("segments: %d, want 4", len(segs))
	}
	other := storagetest.Random(segs[1].size)
	if err := s.putBytes(ctx, segs[1].container, segs[1].name, other, nil); err != nil {
		t.Fatal(err)
	}
	obj, err = s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if !errors.Is(err, storage.ErrCorrupt) || int64(len(got)) > segs[1].start {
		t.Errorf("a replaced segment: read %d bytes, err %v; want the read to fail at the segment", len(got), err)
	}
}
