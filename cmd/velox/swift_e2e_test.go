package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// swiftEnv returns the environment that points velox serve at the test
// cluster, with a container prefix of its own.
func swiftEnv(t *testing.T, extra map[string]string) map[string]string {
	sw := testenv.Swift(t)
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<40))
	env := map[string]string{
		"VELOX_ADMIN_PASSWORD":                       "pw",
		"VELOX_STORAGE_BACKEND":                      "swift",
		"VELOX_STORAGE_SWIFT_AUTH_URL":               sw.AuthURL,
		"VELOX_STORAGE_SWIFT_USER":                   sw.User,
		"VELOX_STORAGE_SWIFT_KEY":                    sw.Key,
		"VELOX_STORAGE_SWIFT_CONTAINER_PREFIX":       fmt.Sprintf("e2e%x", n),
		"VELOX_STORAGE_SWIFT_SHARDS":                 "16",
		"VELOX_STORAGE_SWIFT_SEGMENT_SIZE":           fmt.Sprint(64 << 20),
		"VELOX_STORAGE_SWIFT_LARGE_OBJECT_THRESHOLD": fmt.Sprint(64 << 20),
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// client is an HTTP Basic API client for tests.
type client struct {
	t    *testing.T
	base string
	user string
	pass string
}

func (c client) do(method, path string, body io.Reader, size int64, hdr ...string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	req.SetBasicAuth(c.user, c.pass)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (c client) json(status int, method, path, body string) map[string]any {
	c.t.Helper()
	resp, b := c.do(method, path, strings.NewReader(body), int64(len(body)))
	if resp.StatusCode != status {
		c.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func (c client) root() (space, root string) {
	me := c.json(200, "GET", "/api/v1/me", "")
	space = me["user"].(map[string]any)["personal_space_id"].(string)
	sp := c.json(200, "GET", "/api/v1/spaces/"+space, "")
	return space, sp["root_id"].(string)
}

// pattern is a deterministic byte stream, so large files need no memory.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := min(int64(len(b)), p.n-p.off)
	for i := int64(0); i < k; i++ {
		x := p.off + i
		b[i] = byte(x*7 + x>>12)
	}
	p.off += k
	return int(k), nil
}

func sha(r io.Reader) string {
	h := sha256.New()
	io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

// The whole API on the Swift backend: small and multi-segment files,
// ranges across segments, moves, versions, trash, resumable sessions.
func TestSwiftBackendEndToEnd(t *testing.T) {
	env := swiftEnv(t, nil)
	r := startServe(t, env, "--data", t.TempDir())
	c := client{t, r.url, "admin", "pw"}
	if code, body := get(t, r.url+"/readyz", "", ""); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	space, root := c.root()

	// A 300 MiB file crosses four 64 MiB segments.
	const big = 300 << 20
	resp, b := c.do("POST", "/api/v1/nodes/"+root+"/files?name=big.bin", &pattern{n: big}, big)
	if resp.StatusCode != 201 {
		t.Fatalf("big upload: %d %s", resp.StatusCode, b)
	}
	var node struct {
		ID     string
		SHA256 string
	}
	json.Unmarshal(b, &node)
	if want := sha(&pattern{n: big}); node.SHA256 != want {
		t.Fatalf("server sha %s, want %s", node.SHA256, want)
	}
	req, _ := http.NewRequest("GET", r.url+"/api/v1/nodes/"+node.ID+"/content", nil)
	req.SetBasicAuth("admin", "pw")
	dl, err := http.DefaultClient.Do(req)
	if err != nil || dl.StatusCode != 200 {
		t.Fatalf("download: %v %v", err, dl)
	}
	if got := sha(dl.Body); got != node.SHA256 {
		t.Fatalf("downloaded sha %s", got)
	}
	dl.Body.Close()
	// A range across the first segment boundary, read straight from Swift.
	seg := int64(64 << 20)
	resp, b = c.do("GET", "/api/v1/nodes/"+node.ID+"/content", nil, -1, "Range", fmt.Sprintf("bytes=%d-%d", seg-5, seg+4))
	want := make([]byte, 10)
	p := &pattern{n: big, off: seg - 5}
	io.ReadFull(p, want)
	if resp.StatusCode != 206 || !bytes.Equal(b, want) {
		t.Fatalf("range across segments: %d %x want %x", resp.StatusCode, b, want)
	}

	// Small files, versions, move, trash and purge.
	f := c.json(201, "POST", "/api/v1/nodes/"+root+"/files?name=a.txt", "one")
	id := f["id"].(string)
	c.json(200, "PUT", "/api/v1/nodes/"+id+"/content", "two, longer")
	dir := c.json(201, "POST", "/api/v1/spaces/"+space+"/folders", `{"path":"/x/y"}`)
	c.json(200, "PATCH", "/api/v1/nodes/"+id, `{"parent_id":"`+dir["id"].(string)+`","name":"b.txt"}`)
	if _, body := c.do("GET", "/api/v1/nodes/"+id+"/content", nil, -1); string(body) != "two, longer" {
		t.Fatalf("after move: %q", body)
	}
	vs := c.json(200, "GET", "/api/v1/nodes/"+id+"/versions", "")["items"].([]any)
	old := vs[1].(map[string]any)["id"].(string)
	if _, body := c.do("GET", "/api/v1/nodes/"+id+"/versions/"+old+"/content", nil, -1); string(body) != "one" {
		t.Fatalf("old version %q", body)
	}
	c.do("DELETE", "/api/v1/nodes/"+node.ID, nil, -1)
	if resp, _ := c.do("GET", "/api/v1/nodes/"+node.ID+"/content", nil, -1); resp.StatusCode != 404 {
		t.Fatalf("trashed download: %d", resp.StatusCode)
	}
	c.json(200, "POST", "/api/v1/trash/"+node.ID+"/restore", "")
	c.do("DELETE", "/api/v1/nodes/"+node.ID, nil, -1)
	if resp, _ := c.do("DELETE", "/api/v1/trash/"+node.ID, nil, -1); resp.StatusCode != 204 {
		t.Fatalf("purge: %d", resp.StatusCode)
	}

	// Resumable: three 1 MiB chunks in reverse order become SLO segments.
	data := make([]byte, 3<<20-7)
	rand.Read(data)
	sum := sha256.Sum256(data)
	up := c.json(201, "POST", "/api/v1/uploads", fmt.Sprintf(`{"parent_id":%q,"name":"chunked.bin","size":%d,"chunk_size":%d,"sha256":%q}`,
		root, len(data), 1<<20, hex.EncodeToString(sum[:])))
	uid := up["id"].(string)
	for i := 2; i >= 0; i-- {
		part := data[i<<20 : min(len(data), (i+1)<<20)]
		if resp, b := c.do("PUT", fmt.Sprintf("/api/v1/uploads/%s/chunks/%d", uid, i), bytes.NewReader(part), int64(len(part))); resp.StatusCode != 200 {
			t.Fatalf("chunk %d: %d %s", i, resp.StatusCode, b)
		}
	}
	fin := c.json(201, "POST", "/api/v1/uploads/"+uid+"/finish", "")
	if _, body := c.do("GET", "/api/v1/nodes/"+fin["id"].(string)+"/content", nil, -1); !bytes.Equal(body, data) {
		t.Fatal("resumable upload reads back differently")
	}
}

// With Swift unreachable the API answers 503 with a readable message and
// /readyz reports not ready; nothing is committed.
func TestSwiftUnreachable(t *testing.T) {
	port, _ := testenv.FreePort()
	env := map[string]string{
		"VELOX_ADMIN_PASSWORD":         "pw",
		"VELOX_STORAGE_BACKEND":        "swift",
		"VELOX_STORAGE_SWIFT_AUTH_URL": fmt.Sprintf("http://127.0.0.1:%d/auth/v1.0", port),
		"VELOX_STORAGE_SWIFT_USER":     "test:tester",
		"VELOX_STORAGE_SWIFT_KEY":      "testing",
		"VELOX_STORAGE_SWIFT_TIMEOUT":  "2s",
		"VELOX_STORAGE_SWIFT_RETRIES":  "1",
	}
	r := startServe(t, env, "--data", t.TempDir())
	c := client{t, r.url, "admin", "pw"}
	if code, body := get(t, r.url+"/readyz", "", ""); code != 503 || !strings.Contains(body, `"ready":false`) {
		t.Fatalf("readyz %d %s", code, body)
	}
	space, root := c.root()
	resp, b := c.do("POST", "/api/v1/nodes/"+root+"/files?name=x.txt", strings.NewReader("hello"), 5)
	if resp.StatusCode != 503 || !strings.Contains(string(b), "storage is unavailable") {
		t.Fatalf("upload with Swift down: %d %s", resp.StatusCode, b)
	}
	if resp, _ := c.do("GET", "/api/v1/spaces/"+space+"/resolve?path=/x.txt", nil, -1); resp.StatusCode != 404 {
		t.Fatalf("a failed upload was committed: %d", resp.StatusCode)
	}
}

// kill -9 of the server during 20 concurrent uploads: every acknowledged
// upload reads back identical after a restart, none that was not is
// visible, and garbage collection removes what the crash left in Swift.
func TestKillDuringUploadsOnSwift(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "velox")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	env := swiftEnv(t, map[string]string{"VELOX_STORAGE_SWIFT_SEGMENT_SIZE": fmt.Sprint(4 << 20),
		"VELOX_STORAGE_SWIFT_LARGE_OBJECT_THRESHOLD": fmt.Sprint(4 << 20)})
	data := t.TempDir()
	port, _ := testenv.FreePort()
	start := func() (*exec.Cmd, client) {
		cmd := exec.Command(bin, "serve", "--data", data, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--log-level", "warn")
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if resp, err := http.Get(url + "/healthz"); err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("server did not start:\n%s", out.String())
			}
		}
		return cmd, client{t, url, "admin", "pw"}
	}
	cmd, c := start()
	_, root := c.root()

	type result struct {
		name, sum string
		acked     bool
	}
	results := make([]result, 20)
	ackedCh := make(chan struct{}, len(results))
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			size := int64(1<<20 + i*(700<<10)) // 1 to 14 MiB: some are large objects
			name := fmt.Sprintf("u%02d.bin", i)
			results[i] = result{name: name, sum: sha(&pattern{n: size + int64(i), off: int64(i)})}
			req, _ := http.NewRequest("POST", c.base+"/api/v1/nodes/"+root+"/files?name="+name, &pattern{n: size + int64(i), off: int64(i)})
			req.ContentLength = size
			req.SetBasicAuth("admin", "pw")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				results[i].acked = resp.StatusCode == 201
				if results[i].acked {
					ackedCh <- struct{}{}
				}
			}
		}()
	}
	// Kill once some uploads are acknowledged and others are in flight.
	timeout := time.After(2 * time.Minute)
	for n := 0; n < 5; n++ {
		select {
		case <-ackedCh:
		case <-timeout:
			t.Fatal("no five uploads finished within two minutes")
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	wg.Wait()

	cmd, c = start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	acked := 0
	for _, res := range results {
		resp, b := c.do("GET", "/api/v1/spaces/"+mustSpace(c)+"/resolve?path=/"+res.name, nil, -1)
		switch {
		case res.acked && resp.StatusCode != 200:
			t.Fatalf("acknowledged %s is gone after the crash: %d %s", res.name, resp.StatusCode, b)
		case res.acked:
			acked++
			var n struct{ ID string }
			json.Unmarshal(b, &n)
			req, _ := http.NewRequest("GET", c.base+"/api/v1/nodes/"+n.ID+"/content", nil)
			req.SetBasicAuth("admin", "pw")
			dl, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := sha(dl.Body)
			dl.Body.Close()
			if got != res.sum {
				t.Fatalf("acknowledged %s reads back differently", res.name)
			}
		case resp.StatusCode != 404:
			// Not acknowledged: it may have committed just before the kill
			// (the response was lost), but then it must be whole.
			var n struct{ SHA256 string }
			json.Unmarshal(b, &n)
			if resp.StatusCode != 200 || n.SHA256 != res.sum {
				t.Fatalf("unacknowledged %s is visible but not whole: %d %s", res.name, resp.StatusCode, b)
			}
		}
	}
	t.Logf("%d of %d uploads were acknowledged before the kill", acked, len(results))
	if acked == len(results) {
		t.Fatal("every upload finished before the kill; the test proved nothing")
	}

	// What the crash left in Swift (blobs and segments of unfinished
	// uploads) is removed by the sweep and the collector.
	cfgCtx := context.Background()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	a := openTestApp(t, data, env)
	defer a.Close()
	if sw, ok := a.blobs.(storage.Sweeper); ok {
		if err := sw.Sweep(cfgCtx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := files.New(a.db, a.blobs, nil).CollectGarbage(cfgCtx, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gc: %+v", st)
	stored := 0
	a.blobs.(storage.Lister).List(cfgCtx, func(storage.Info) error { stored++; return nil })
	var rows int
	if err := a.db.SQL().QueryRow(`SELECT COUNT(*) FROM blobs`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if stored != rows {
		t.Fatalf("after gc Swift holds %d blobs, the database references %d", stored, rows)
	}
	cmd, c = start() // for the deferred stop
}

func mustSpace(c client) string {
	s, _ := c.root()
	return s
}

// openTestApp opens the data directory with the given environment.
func openTestApp(t *testing.T, data string, env map[string]string) *app {
	t.Helper()
	load := configFlags(flag.NewFlagSet("test", flag.ContinueOnError), func(k string) string { return env[k] })
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = data
	cfg.DB.DSN = ""
	cfg.Resolve()
	a, err := openApp(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
