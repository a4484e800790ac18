package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// countingConn counts the writes that reach the socket, and can fail them.
type countingConn struct {
	net.Conn
	writes atomic.Int64
	fail   atomic.Bool
}

var errTestWrite = errors.New("test: write failed")

func (c *countingConn) Write(p []byte) (int, error) {
	if c.fail.Load() {
		return 0, errTestWrite
	}
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// batchedPair returns the server end of a TLS connection over loopback,
// batched, with its socket's write counter, and the client end.
func batchedPair(t *testing.T) (*batchedTLS, *countingConn, *tls.Conn) {
	t.Helper()
	pki := newTestPKI(t)
	certFile, keyFile := pki.issue(t, "srv", []string{"localhost"}, "")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type accepted struct {
		c   *batchedTLS
		raw *countingConn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		raw := &countingConn{Conn: nc}
		bc := newBatchConn(raw)
		tc := tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{cert}})
		if err := tc.Handshake(); err != nil {
			ch <- accepted{err: err}
			return
		}
		ch <- accepted{c: newBatchedTLS(tc, bc), raw: raw}
	}()
	client, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pki.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { client.Close(); a.c.Close() })
	return a.c, a.raw, client
}

func TestBatchedTLSWritesOneRecordBatchPerSyscall(t *testing.T) {
	srv, raw, client := batchedPair(t)
	frame := bytes.Repeat([]byte{'f'}, 16384+9) // an HTTP/2 DATA frame: two records
	big := bytes.Repeat([]byte{'b'}, 2*batchLimit)
	small := []byte("hi")
	var want bytes.Buffer
	for _, w := range []struct {
		p      []byte
		writes int64
	}{
		{frame, 1}, {frame, 1}, {frame, 1},
		{big, 2},   // cut into two batches of four records
		{small, 1}, // one small record, written as it is
	} {
		before := raw.writes.Load()
		if n, err := srv.Write(w.p); n != len(w.p) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(w.p), n, err)
		}
		if got := raw.writes.Load() - before; got != w.writes {
			t.Errorf("a Write of %d bytes made %d socket writes, want %d", len(w.p), got, w.writes)
		}
		want.Write(w.p)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the client read other bytes than were written (err %v)", err)
	}
}

// TestBatchedTLSConcurrentWriters: Writes from several goroutines each
// arrive whole, none mixed into another.
func TestBatchedTLSConcurrentWriters(t *testing.T) {
	srv, _, client := batchedPair(t)
	const writers, each, size = 4, 40, 20000
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range each {
				if _, err := srv.Write(msg); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	counts := map[byte]int{}
	buf := make([]byte, size)
	for range writers * each {
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(buf, buf[:1]); n != size {
			t.Fatalf("a message of %q mixed with another: %d of %d bytes are its own", buf[0], n, size)
		}
		counts[buf[0]]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		if counts[byte('a'+w)] != each {
			t.Errorf("writer %c: %d messages arrived, want %d", 'a'+w, counts[byte('a'+w)], each)
		}
	}
}

// TestBatchedTLSFailedBatchIsFinal: once a batch failed to go out, the
// records it held are lost to the peer, so no later write may follow them.
func TestBatchedTLSFailedBatchIsFinal(t *testing.T) {
	srv, raw, _ := batchedPair(t)
	raw.fail.Store(true)
	if _, err := srv.Write(make([]byte, 20000)); !errors.Is(err, errTestWrite) {
		t.Fatalf("Write with the socket failing: %v, want the socket's error", err)
	}
	raw.fail.Store(false)
	before := raw.writes.Load()
	if _, err := srv.Write(make([]byte, 20000)); err == nil {
		t.Fatal("a Write after a failed batch succeeded")
	}
	if raw.writes.Load() != before {
		t.Error("a Write after a failed batch reached the socket")
	}
}
