package swift

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/storage"
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
