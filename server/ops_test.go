package server_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
)

// sendfileConn records what reaches the connection's ReadFrom, which is
// where net.TCPConn uses sendfile(2).
type sendfileConn struct {
	*net.TCPConn
	mu    *sync.Mutex
	files *[]bool // per ReadFrom call: was the source a file
}

func (c sendfileConn) ReadFrom(r io.Reader) (int64, error) {
	src := r
	if lr, ok := r.(*io.LimitedReader); ok {
		src = lr.R
	}
	_, isFile := src.(*os.File)
	c.mu.Lock()
	*c.files = append(*c.files, isFile)
	c.mu.Unlock()
	return c.TCPConn.ReadFrom(r)
}

type sendfileListener struct {
	net.Listener
	mu    sync.Mutex
	files []bool
}

func (l *sendfileListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return sendfileConn{TCPConn: c.(*net.TCPConn), mu: &l.mu, files: &l.files}, nil
}

// A plain local blob reaches the client through the connection's ReadFrom
// (sendfile), past the request logging and metrics wrapper, and its bytes
// are still counted.
func TestPlainLocalDownloadUsesSendfile(t *testing.T) {
	h := newHarness(t)
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	n := h.upload(h.root, "big.bin", string(data))

	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &sendfileListener{Listener: inner}
	ts := httptest.NewUnstartedServer(h.srv)
	ts.Listener = ln
	ts.Start()
	defer ts.Close()

	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/nodes/"+n.ID+"/content", nil)
	req.SetBasicAuth("alice", alicePass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("download: %d, %d bytes, err %v", resp.StatusCode, len(got), err)
	}
	ln.mu.Lock()
	files := append([]bool(nil), ln.files...)
	ln.mu.Unlock()
	if len(files) != 1 || !files[0] {
		t.Fatalf("connection ReadFrom calls (true: from a file) = %v, want one from the blob file", files)
	}

	_, metrics := h.doAs("", "", "GET", "/metrics", nil)
	m := regexp.MustCompile(`(?m)^velox_http_response_bytes_total (\S+)$`).FindSubmatch(metrics)
	if m == nil {
		t.Fatal("no velox_http_response_bytes_total")
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v < float64(len(data)) {
		t.Errorf("response bytes counted %v, want at least the %d of the download", v, len(data))
	}
}
