package proxy

// Tests that run "velox proxy" as a separate process, so that its memory
// can be measured honestly and signals can be sent to it.

import (
	"github.com/veloxhq/velox/internal/testenv"

	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var buildOnce struct {
	sync.Once
	path string
	err  error
	dir  string
}

// veloxBinary builds ./cmd/velox once per test binary.
func veloxBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "velox-proxy-test-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.dir = dir
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		buildOnce.path = filepath.Join(dir, "velox")
		out, err := exec.Command(goTool, "build", "-o", buildOnce.path, "../cmd/velox").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func TestMain(m *testing.M) {
	testenv.OnExit(func() {
		if buildOnce.dir != "" {
			os.RemoveAll(buildOnce.dir)
		}
	})
	testenv.Main(m) // also stops the Swift cluster if a test started one
}

// proxyProcess is "velox proxy --config" running as a child process.
type proxyProcess struct {
	cmd    *exec.Cmd
	https  string
	stderr *syncBuffer
}

func startProxyProcess(t *testing.T, configPath string) *proxyProcess {
	t.Helper()
	cmd := exec.Command(veloxBinary(t), "proxy", "--config", configPath)
	cmd.Stdout = io.Discard
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pp := &proxyProcess{cmd: cmd, stderr: &syncBuffer{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			pp.stderr.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.Listener == "https" {
				addr <- line.Addr
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		pw.Close()
	})
	select {
	case pp.https = <-addr:
	case <-time.After(60 * time.Second):
		t.Fatalf("proxy did not start; stderr:\n%s", pp.stderr)
	}
	return pp
}

// peakRSS is the child's high-water resident set size (VmHWM), in bytes.
func (pp *proxyProcess) peakRSS(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pp.cmd.Process.Pid))
	if err != nil {
		// The memory ceiling is the point of the test: no reading, no pass.
		t.Fatalf("cannot read the proxy's memory use from /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// patternReader yields n deterministic bytes without holding them: each
// 64 KiB block starts with its index, so lost or reordered blocks change
// the checksum.
type patternReader struct {
	n, off int64
	block  [64 << 10]byte
}

func newPatternReader(n int64) *patternReader {
	r := &patternReader{n: n}
	for i := range r.block {
		r.block[i] = byte(i*7 + i>>8)
	}
	return r
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	bs := int64(len(r.block))
	binary.BigEndian.PutUint64(r.block[:8], uint64(r.off/bs))
	i := r.off % bs
	n := copy(p, r.block[i:min(bs, i+r.n-r.off)])
	r.off += int64(n)
	return n, nil
}

func sumOf(n int64) string {
	h := sha256.New()
	io.CopyBuffer(h, newPatternReader(n), make([]byte, 64<<10))
	return hex.EncodeToString(h.Sum(nil))
}

func transferSize(t *testing.T) int64 {
	switch {
	case testing.Short():
		return 64 << 20
	case raceEnabled:
		return 256 << 20
	}
	return 2 << 30
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	writeFile(t, path, []byte(text))
}

func TestLargeTransfersKeepMemoryFlat(t *testing.T) {
	size := transferSize(t)
	up := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			h := sha256.New()
			n, err := io.CopyBuffer(h, r.Body, make([]byte, 64<<10))
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		case http.MethodGet:
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			io.CopyBuffer(w, newPatternReader(size), make([]byte, 64<<10))
		}
	}))
	pki := newTestPKI(t)
	cert, key := pki.issue(t, "big", []string{"localhost"}, "")
	cfgPath := filepath.Join(t.TempDir(), "proxy.yaml")
	writeConfig(t, cfgPath, fmt.Sprintf(`
listen: 127.0.0.1:0
tls: {certificates: [{cert: %q, key: %q}]}
log: {access: false}
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}]
`, cert, key, up.URL))
	pp := startProxyProcess(t, cfgPath)
	client := pki.client("localhost")
	client.Timeout = 30 * time.Minute
	want := sumOf(size)

	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"HTTP/2", client}, {"HTTP/1.1", (&testProxy{pki: pki}).http1Client()}} {
		c.client.Timeout = 30 * time.Minute
		req, _ := http.NewRequest(http.MethodPut, "https://"+pp.https+"/upload", newPatternReader(size))
		req.ContentLength = size
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatalf("%s upload: %v", c.name, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != fmt.Sprintf("%d %s", size, want) {
			t.Errorf("%s upload: upstream got %q, want %d bytes with sha256 %s", c.name, got, size, want)
		}

		resp, err = c.client.Get("https://" + pp.https + "/download")
		if err != nil {
			t.Fatalf("%s download: %v", c.name, err)
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, resp.Body, make([]byte, 64<<10))
		resp.Body.Close()
		if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != want {
			t.Errorf("%s download: %d bytes (%v), sha256 %x; want %d bytes, %s", c.name, n, err, h.Sum(nil), size, want)
		}
	}
	const ceiling = 64 << 20
	rss := pp.peakRSS(t)
	t.Logf("moved 4 × %d MiB; proxy peak RSS %.1f MiB", size>>20, float64(rss)/(1<<20))
	if rss > ceiling {
		t.Errorf("proxy peak RSS %d MiB, want below %d MiB", rss>>20, ceiling>>20)
	}
}

func TestSIGHUPReload(t *testing.T) {
	const chunk = 1 << 20
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce() // on failure too, so the proxy's shutdown need not wait for it
	a := slowUpstream(t, "a", chunk, release)
	b := echoUpstream(t, "b")
	pki := newTestPKI(t)
	cert, key := pki.issue(t, "hup", []string{"localhost"}, "")
	cfgPath := filepath.Join(t.TempDir(), "proxy.yaml")
	config := func(target string, extra string) string {
		return fmt.Sprintf(`
listen: 127.0.0.1:0
tls: {certificates: [{cert: %q, key: %q}]}
upstreams: {app: {targets: [%s]}}
routes: [{path: /, upstream: app}%s]
`, cert, key, target, extra)
	}
	writeConfig(t, cfgPath, config(a.URL, ""))
	pp := startProxyProcess(t, cfgPath)
	client := pki.client("localhost")
	client.Timeout = 5 * time.Minute // covers the whole held-open transfer
	base := "https://" + pp.https
	defer func() {
		if t.Failed() {
			t.Logf("proxy stderr:\n%s", pp.stderr)
		}
	}()

	resp, err := client.Get(base + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, chunk)); err != nil {
		t.Fatalf("first half: %v", err)
	}

	// A broken file is refused and the running config stays.
	writeConfig(t, cfgPath, "listen: [\n")
	pp.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the failed reload to be logged", func() bool { return strings.Contains(pp.stderr.String(), "reload failed") })

	writeConfig(t, cfgPath, config(b.URL, ", {path: /b-only/, upstream: app}"))
	pp.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the new route", func() bool {
		r, err := client.Get(base + "/b-only/x")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.Header.Get("X-Upstream") == "b"
	})
	releaseOnce()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != chunk {
		t.Fatalf("transfer across SIGHUP: second half %d bytes, %v", len(rest), err)
	}
}
