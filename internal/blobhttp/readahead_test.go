package blobhttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/veloxhq/velox/internal/storage"
)

// memObject is a storage.Object in memory that returns short reads.
type memObject struct {
	*bytes.Reader
	max int
}

func (m *memObject) Read(p []byte) (int, error) {
	if len(p) > m.max {
		p = p[:m.max]
	}
	return m.Reader.Read(p)
}

func (m *memObject) Size() int64  { return m.Reader.Size() }
func (m *memObject) Close() error { return nil }

// nextObject offers Next over another object, as encrypted blobs do
// (they read ahead themselves). Each call overwrites the buffer the last
// one returned, so a caller that keeps a slice too long reads garbage.
type nextObject struct {
	storage.Object
	buf []byte
}

func (n *nextObject) Next(max int) ([]byte, error) {
	for i := range n.buf {
		n.buf[i] = 0xee
	}
	if len(n.buf) < max {
		n.buf = make([]byte, max)
	}
	k, err := n.Object.Read(n.buf[:max])
	return n.buf[:k], err
}

// bothKinds runs test on objects read ahead by blobhttp and on objects
// that read ahead themselves.
func bothKinds(t *testing.T, test func(t *testing.T, wrap func(storage.Object) storage.Object)) {
	t.Run("ReadAhead", func(t *testing.T) { test(t, func(o storage.Object) storage.Object { return o }) })
	t.Run("Next", func(t *testing.T) {
		test(t, func(o storage.Object) storage.Object { return &nextObject{Object: o} })
	})
}

func TestReadAhead(t *testing.T) { bothKinds(t, testReadAhead) }

func testReadAhead(t *testing.T, wrap func(storage.Object) storage.Object) {
	data := make([]byte, 3*readAheadSize+12345)
	for i := range data {
		data[i] = byte(rand.N(256))
	}
	ctx := context.Background()
	// Small reads from the store are gathered into larger chunks.
	small := newReadAhead(ctx, wrap(&memObject{bytes.NewReader(data), 10 << 10}))
	if err := iotest.TestReader(small, data); err != nil {
		t.Fatal(err)
	}
	small.Close()
	ra := newReadAhead(ctx, wrap(&memObject{bytes.NewReader(data), 300 << 10}))
	defer ra.Close()
	if err := iotest.TestReader(ra, data); err != nil {
		t.Fatal(err)
	}
	// Seeks in the middle of reading ahead, as ServeContent does for
	// ranges.
	for _, off := range []int64{5, readAheadSize + 7, 0, int64(len(data)) - 3} {
		if _, err := ra.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, min(100000, int64(len(data))-off))
		if _, err := io.ReadFull(ra, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[off:off+int64(len(got))]) {
			t.Fatalf("bytes at %d differ", off)
		}
		if pos, _ := ra.Seek(0, io.SeekCurrent); pos != off+int64(len(got)) {
			t.Fatalf("position %d, want %d", pos, off+int64(len(got)))
		}
	}
	if n, _ := ra.Seek(0, io.SeekEnd); n != int64(len(data)) {
		t.Fatalf("SeekEnd = %d", n)
	}
}

// failingObject returns its bytes in small reads, then err.
type failingObject struct {
	memObject
	err error
}

func (f *failingObject) Read(p []byte) (int, error) {
	n, err := f.memObject.Read(p)
	if err == io.EOF {
		err = f.err
	}
	return n, err
}

func TestReadAheadPassesStoreErrors(t *testing.T) { bothKinds(t, testReadAheadPassesStoreErrors) }

func testReadAheadPassesStoreErrors(t *testing.T, wrap func(storage.Object) storage.Object) {
	// Every byte before the failure arrives, then the store's own error,
	// even io.ErrUnexpectedEOF, which must not pass for a clean end.
	data := bytes.Repeat([]byte("velox"), 100000)
	for _, want := range []error{io.ErrUnexpectedEOF, errors.New("swift: connection reset")} {
		ra := newReadAhead(context.Background(), wrap(&failingObject{memObject{bytes.NewReader(data), 10 << 10}, want}))
		got, err := io.ReadAll(ra)
		ra.Close()
		if !errors.Is(err, want) || !bytes.Equal(got, data) {
			t.Fatalf("read %d of %d bytes, err %v; want the bytes and %v", len(got), len(data), err, want)
		}
	}
}

func TestReadAheadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ra := newReadAhead(ctx, &memObject{bytes.NewReader(make([]byte, 10<<20)), 1 << 20})
	buf := make([]byte, 1000)
	if _, err := ra.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := ra.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel: %v", err)
	}
	ra.Close()
	ra.Close()
}

func TestReadAheadServeContent(t *testing.T) { bothKinds(t, testReadAheadServeContent) }

func testReadAheadServeContent(t *testing.T, wrap func(storage.Object) storage.Object) {
	data := make([]byte, 2*readAheadSize+777)
	for i := range data {
		data[i] = byte(rand.N(256))
	}
	for _, rng := range []string{"", "bytes=10-", "bytes=1048570-1048590", "bytes=0-0,-5"} {
		ra := newReadAhead(context.Background(), wrap(&memObject{bytes.NewReader(data), 200 << 10}))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		http.ServeContent(readAheadWriter{rec, ra}, req, "", time.Time{}, ra)
		ra.Close()
		want := http.StatusOK
		if rng != "" {
			want = http.StatusPartialContent
		}
		if rec.Code != want {
			t.Fatalf("%q: status %d", rng, rec.Code)
		}
		switch rng {
		case "":
			if !bytes.Equal(rec.Body.Bytes(), data) {
				t.Fatal("full body differs")
			}
		case "bytes=10-":
			if !bytes.Equal(rec.Body.Bytes(), data[10:]) {
				t.Fatal("open range differs")
			}
		case "bytes=1048570-1048590":
			if !bytes.Equal(rec.Body.Bytes(), data[1048570:1048591]) {
				t.Fatal("range differs")
			}
		default:
			if !bytes.Contains(rec.Body.Bytes(), data[len(data)-5:]) || !strings.Contains(rec.Header().Get("Content-Type"), "multipart/byteranges") {
				t.Fatal("multipart ranges wrong")
			}
		}
	}
}

// countingObject counts the bytes read from it and its Seeks.
type countingObject struct {
	memObject
	read, seeks int64
}

func (c *countingObject) Read(p []byte) (int, error) {
	n, err := c.memObject.Read(p)
	c.read += int64(n)
	return n, err
}

func (c *countingObject) Seek(off int64, whence int) (int64, error) {
	c.seeks++
	return c.memObject.Seek(off, whence)
}

func TestReadAheadProbeSeeksKeepBufferedBytes(t *testing.T) {
	bothKinds(t, testReadAheadProbeSeeksKeepBufferedBytes)
}

func testReadAheadProbeSeeksKeepBufferedBytes(t *testing.T, wrap func(storage.Object) storage.Object) {
	// http.ServeContent seeks to the end and back before reading; what
	// was read ahead (by prime) must survive that, not be read twice.
	data := bytes.Repeat([]byte("0123456789"), 300000)
	obj := &countingObject{memObject: memObject{bytes.NewReader(data), 64 << 10}}
	ra := newReadAhead(context.Background(), wrap(obj))
	defer ra.Close()
	if err := ra.prime(); err != nil {
		t.Fatal(err)
	}
	if n, err := ra.Seek(0, io.SeekEnd); n != int64(len(data)) || err != nil {
		t.Fatalf("SeekEnd = %d, %v", n, err)
	}
	if n, err := ra.Seek(0, io.SeekStart); n != 0 || err != nil {
		t.Fatalf("SeekStart = %d, %v", n, err)
	}
	got, err := io.ReadAll(ra)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if obj.seeks != 0 || obj.read != int64(len(data)) {
		t.Fatalf("the store was seeked %d times and read for %d bytes; want 0 and %d", obj.seeks, obj.read, len(data))
	}
}

// headerRecorder is an httptest.ResponseRecorder that remembers whether
// anything was sent.
type headerRecorder struct {
	*httptest.ResponseRecorder
	wrote bool
}

func (h *headerRecorder) WriteHeader(code int) { h.wrote = true; h.ResponseRecorder.WriteHeader(code) }
func (h *headerRecorder) Write(b []byte) (int, error) {
	h.wrote = true
	return h.ResponseRecorder.Write(b)
}

func TestServeReportsEarlyFailureBeforeWriting(t *testing.T) {
	bothKinds(t, testServeReportsEarlyFailureBeforeWriting)
}

func testServeReportsEarlyFailureBeforeWriting(t *testing.T, wrap func(storage.Object) storage.Object) {
	corrupt := errors.New("blob x: integrity check failed")
	data := bytes.Repeat([]byte("a"), 3<<20)
	for _, tc := range []struct {
		name      string
		failAfter int // bytes served before the store fails; -1: never
		rng       string
		wantErr   bool // Serve returns the error, having written nothing
	}{
		{"intact", -1, "", false},
		{"corrupt at the start", 0, "", true},
		{"corrupt within the first chunk", 100 << 10, "", true},
		{"corrupt later", 2 << 20, "", false},
		{"range, corrupt at the start", 0, "bytes=5-10", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var obj storage.Object = &memObject{bytes.NewReader(data), 256 << 10}
			if tc.failAfter >= 0 {
				obj = &failingObject{memObject{bytes.NewReader(data[:tc.failAfter]), 256 << 10}, corrupt}
				obj = &sizedObject{obj, int64(len(data))}
			}
			obj = wrap(obj)
			rec := &headerRecorder{ResponseRecorder: httptest.NewRecorder()}
			req := httptest.NewRequest("GET", "/", nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			err := Serve(rec, req, time.Time{}, obj)
			switch {
			case tc.wantErr && (!errors.Is(err, corrupt) || rec.wrote):
				t.Fatalf("Serve = %v, wrote %v; want the error and nothing written", err, rec.wrote)
			case !tc.wantErr && err != nil:
				t.Fatalf("Serve = %v", err)
			case tc.failAfter < 0 && !bytes.Equal(rec.Body.Bytes(), data):
				t.Fatalf("intact file: got %d bytes", rec.Body.Len())
			case tc.failAfter > 0 && !tc.wantErr && rec.Body.Len() >= len(data):
				t.Fatalf("a file failing at %d served %d bytes", tc.failAfter, rec.Body.Len())
			}
		})
	}
}

// sizedObject reports the size the file should have, whatever its reader
// holds.
type sizedObject struct {
	storage.Object
	size int64
}

func (s *sizedObject) Size() int64 { return s.size }
