package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/files"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type running struct {
	url    string
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	err    error
}

// wait stops nothing; it waits for run to return and gives its error.
func (r *running) wait() error {
	<-r.done
	return r.err
}

func startServe(t *testing.T, env map[string]string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	r := &running{out: out, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...),
			func(k string) string { return env[k] }, out, io.Discard)
	}()
	re := regexp.MustCompile(`running at (http://\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			r.url = m[1]
			t.Cleanup(func() { cancel(); <-r.done })
			return r
		}
		select {
		case <-r.done:
			t.Fatalf("serve exited: %v\n%s", r.err, out)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start:\n%s", out)
	return nil
}

func get(t *testing.T, url, user, pass string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestFirstStartCreatesAdminAndRestartKeepsData(t *testing.T) {
	data := t.TempDir()
	r := startServe(t, nil, "--data", data)
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(r.out.String())
	if m == nil {
		t.Fatalf("no admin password printed:\n%s", r.out)
	}
	pw := m[1]
	if code, body := get(t, r.url+"/readyz", "", ""); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	code, body := get(t, r.url+"/api/v1/me", "admin", pw)
	if code != 200 || !strings.Contains(body, `"is_admin":true`) {
		t.Fatalf("admin sign-in: %d %s", code, body)
	}
	var me struct {
		User struct {
			PersonalSpaceID string `json:"personal_space_id"`
		}
	}
	json.Unmarshal([]byte(body), &me)
	_, sp := get(t, r.url+"/api/v1/spaces/"+me.User.PersonalSpaceID, "admin", pw)
	var space struct {
		RootID string `json:"root_id"`
	}
	json.Unmarshal([]byte(sp), &space)
	req, _ := http.NewRequest("POST", r.url+"/api/v1/nodes/"+space.RootID+"/files?name=kept.txt", strings.NewReader("persisted"))
	req.SetBasicAuth("admin", pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("upload: %v %v", err, resp)
	}
	resp.Body.Close()
	r.cancel()
	if err := r.wait(); err != nil {
		t.Fatalf("serve returned %v", err)
	}

	// Second start: same data, no new admin, the file is there.
	r2 := startServe(t, nil, "--data", data)
	if strings.Contains(r2.out.String(), "password:") {
		t.Fatalf("a second start printed a password:\n%s", r2.out)
	}
	code, body = get(t, r2.url+"/api/v1/spaces/"+me.User.PersonalSpaceID+"/resolve?path=/kept.txt", "admin", pw)
	if code != 200 || !strings.Contains(body, `"size":9`) {
		t.Fatalf("after restart: %d %s", code, body)
	}
	if fi, err := os.Stat(filepath.Join(data, "session.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session key file: %v %v", fi, err)
	}
}

func TestAdminPasswordFromEnvironment(t *testing.T) {
	r := startServe(t, map[string]string{"VELOX_ADMIN_PASSWORD": "from-the-env"}, "--data", t.TempDir())
	if strings.Contains(r.out.String(), "from-the-env") {
		t.Fatal("the password from the environment was printed")
	}
	if code, _ := get(t, r.url+"/api/v1/me", "admin", "from-the-env"); code != 200 {
		t.Fatalf("sign-in with VELOX_ADMIN_PASSWORD: %d", code)
	}
}

// Shutting down waits for an upload in flight to finish.
func TestGracefulShutdownFinishesUploads(t *testing.T) {
	data := t.TempDir()
	r := startServe(t, map[string]string{"VELOX_ADMIN_PASSWORD": "pw"}, "--data", data)
	_, body := get(t, r.url+"/api/v1/me", "admin", "pw")
	var me struct {
		User struct {
			PersonalSpaceID string `json:"personal_space_id"`
		}
	}
	json.Unmarshal([]byte(body), &me)
	_, body = get(t, r.url+"/api/v1/spaces/"+me.User.PersonalSpaceID, "admin", "pw")
	var sp struct {
		RootID string `json:"root_id"`
	}
	json.Unmarshal([]byte(body), &sp)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", r.url+"/api/v1/nodes/"+sp.RootID+"/files?name=slow.bin", pr)
	req.SetBasicAuth("admin", "pw")
	req.ContentLength = 2 << 20
	result := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Logf("upload error: %v", err)
			result <- -1
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	for i := 0; i < 8; i++ {
		pw.Write(chunk)
	}
	// Only once the server is streaming the upload into storage...
	for deadline := time.Now().Add(10 * time.Second); files.UploadsInFlight() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the upload never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.cancel() // ...does SIGTERM arrive.
	time.Sleep(200 * time.Millisecond)
	for i := 8; i < 32; i++ {
		pw.Write(chunk)
	}
	pw.Close()
	if code := <-result; code != 201 {
		t.Fatalf("upload in flight during shutdown got %d, want 201", code)
	}
	if err := r.wait(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestAdminCLI(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	admin := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		oldStdin := os.Stdin
		if stdin != "" {
			f, _ := os.CreateTemp(t.TempDir(), "stdin")
			f.WriteString(stdin)
			f.Seek(0, 0)
			os.Stdin = f
			defer func() { os.Stdin = oldStdin; f.Close() }()
		}
		err := run(ctx, append([]string{"admin", "--data", data}, args...), func(string) string { return "" }, &out, io.Discard)
		return out.String(), err
	}
	if out, err := admin("s3cret-pass\n", "user", "add", "carol", "--password-stdin"); err != nil || !strings.Contains(out, "created user carol") {
		t.Fatalf("add: %q %v", out, err)
	}
	if _, err := admin("", "user", "add", "carol"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate add: %v", err)
	}
	if _, err := admin("", "user", "add", "bad/name"); err == nil {
		t.Fatal("a username with '/' was accepted")
	}
	out, err := admin("", "user", "passwd", "carol")
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("passwd: %q %v", out, err)
	}
	if _, err := admin("", "user", "disable", "carol"); err != nil {
		t.Fatal(err)
	}
	out, _ = admin("", "user", "list")
	sc := bufio.NewScanner(strings.NewReader(out))
	found := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 4 && f[0] == "carol" && f[1] == "local" && f[3] == "true" {
			found = true
		}
	}
	if !found {
		t.Fatalf("list does not show carol disabled:\n%s", out)
	}
	if _, err := admin("", "user", "disable", "nobody"); err == nil || !strings.Contains(err.Error(), `no user named "nobody"`) {
		t.Fatalf("disable unknown: %v", err)
	}
	// The server refuses the disabled user and accepts her after enabling.
	if _, err := admin("", "user", "enable", "carol"); err != nil {
		t.Fatal(err)
	}
	r := startServe(t, nil, "--data", data)
	if code, _ := get(t, r.url+"/api/v1/me", "carol", m[1]); code != 200 {
		t.Fatalf("carol with the new password: %d", code)
	}
	if code, _ := get(t, r.url+"/api/v1/me", "carol", "s3cret-pass"); code != 401 {
		t.Fatalf("carol with the old password: %d", code)
	}
}

func TestInvalidConfigIsReported(t *testing.T) {
	err := run(context.Background(), []string{"serve", "--data", t.TempDir(), "--db-driver", "oracle", "--listen", "nope"},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `db.driver: "oracle"`) || !strings.Contains(err.Error(), `listen: "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestAdminGC(t *testing.T) {
	data := t.TempDir()
	var out bytes.Buffer
	run(context.Background(), []string{"admin", "--data", data, "user", "list"}, func(string) string { return "" }, &out, io.Discard)
	// An orphan blob, as a crash before the metadata commit leaves.
	dir := filepath.Join(data, "blobs", "or", "ph")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "orphan000000000000000000"), []byte("lost"), 0o600)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(dir, "orphan000000000000000000"), old, old)
	out.Reset()
	if err := run(context.Background(), []string{"admin", "--data", data, "gc"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "removed 1 unreferenced (4 bytes)") {
		t.Fatalf("gc output %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "orphan000000000000000000")); !os.IsNotExist(err) {
		t.Fatal("orphan not removed")
	}
	if err := run(context.Background(), []string{"admin", "--data", data, "gc", "--grace", "1s"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Fatal("a grace period under a minute was accepted")
	}
}
