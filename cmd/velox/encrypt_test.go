package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startServeLog is startServe that also keeps the log.
func startServeLog(t *testing.T, env map[string]string, args ...string) (*running, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, log := &syncBuffer{}, &syncBuffer{}
	r := &running{out: out, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...),
			func(k string) string { return env[k] }, out, log)
	}()
	re := regexp.MustCompile(`running at (http://\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			r.url = m[1]
			t.Cleanup(func() { cancel(); <-r.done })
			return r, log
		}
		select {
		case <-r.done:
			t.Fatalf("serve exited: %v\n%s", r.err, log)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start:\n%s", log)
	return nil, nil
}

// serveFails runs serve and returns the error it exits with.
func serveFails(t *testing.T, env map[string]string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, &out, io.Discard)
	if err == nil || strings.Contains(out.String(), "running at") {
		t.Fatalf("serve started (err %v):\n%s", err, out.String())
	}
	return err
}

func blobFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err == nil && !d.IsDir() && !strings.HasPrefix(rel, "tmp") && !strings.HasPrefix(rel, "parts") {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func TestEncryptionEndToEnd(t *testing.T) {
	data := t.TempDir()
	env := map[string]string{"VELOX_ADMIN_PASSWORD": "pw"}
	r, log := startServeLog(t, env, "--data", data)
	fi, err := os.Stat(filepath.Join(data, "master.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v %v", fi, err)
	}
	if !strings.Contains(log.String(), "generated a master key") {
		t.Errorf("first start did not log the generated master key:\n%s", log)
	}
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

	content := bytes.Repeat([]byte("salary review, strictly confidential. "), 9000) // ~340 KB
	upload := func(r *running, name string) string {
		req, _ := http.NewRequest("POST", r.url+"/api/v1/nodes/"+sp.RootID+"/files?name="+name, bytes.NewReader(content))
		req.SetBasicAuth("admin", "pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("upload: %v %v", err, resp)
		}
		defer resp.Body.Close()
		var n struct {
			ID   string `json:"id"`
			Size int64  `json:"size"`
		}
		json.NewDecoder(resp.Body).Decode(&n)
		if n.Size != int64(len(content)) {
			t.Errorf("size shown = %d, want the plaintext size %d", n.Size, len(content))
		}
		return n.ID
	}
	download := func(r *running, id, rng string) (int, []byte, error) {
		req, _ := http.NewRequest("GET", r.url+"/api/v1/nodes/"+id+"/content", nil)
		req.SetBasicAuth("admin", "pw")
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	id := upload(r, "hr.txt")
	if code, b, err := download(r, id, ""); code != 200 || err != nil || !bytes.Equal(b, content) {
		t.Fatalf("download: %d %v, equal %v", code, err, bytes.Equal(b, content))
	}
	if code, b, _ := download(r, id, "bytes=65535-65537"); code != 206 || !bytes.Equal(b, content[65535:65538]) {
		t.Fatalf("range download: %d %q", code, b)
	}
	files := blobFiles(t, filepath.Join(data, "blobs"))
	if len(files) != 1 {
		t.Fatalf("blob files: %v", files)
	}
	raw, _ := os.ReadFile(files[0])
	if bytes.Contains(raw, []byte("salary")) {
		t.Fatal("the stored blob contains plaintext")
	}

	// A flipped byte: the download fails, the log names the blob.
	blob := filepath.Base(files[0])
	flipped := append([]byte{}, raw...)
	flipped[len(raw)/2] ^= 1
	os.WriteFile(files[0], flipped, 0o600)
	// The flip lies in the first chunk a download reads, which is checked
	// before the answer starts: a clear API error, not a cut-off file.
	code, b, err := download(r, id, "")
	if err == nil && code == 200 && bytes.Equal(b, content) {
		t.Fatal("a tampered blob downloaded successfully")
	}
	if code != 500 || !strings.Contains(string(b), `"corrupt"`) {
		t.Fatalf("tampered blob: %d %.200s (err %v); want 500 with code corrupt", code, b, err)
	}
	if !strings.Contains(log.String(), blob) || !strings.Contains(log.String(), "integrity") {
		t.Errorf("no log entry naming blob %s:\n%s", blob, log)
	}
	// WebDAV (sync clients) serves the same way.
	if code, b := get(t, r.url+"/remote.php/dav/files/admin/hr.txt", "admin", "pw"); code != 500 || strings.Contains(b, "salary") {
		t.Errorf("WebDAV GET of a tampered blob: %d %.200s; want 500 and none of the content", code, b)
	}
	// Truncated: a clear API error before any byte.
	os.WriteFile(files[0], raw[:len(raw)-100], 0o600)
	if code, b, _ := download(r, id, ""); code != 500 || !strings.Contains(string(b), `"corrupt"`) {
		t.Errorf("truncated blob: %d %s", code, b)
	}
	os.WriteFile(files[0], raw, 0o600)
	r.cancel()
	r.wait()

	// Rotation to a second master key; the first can then go.
	k2 := filepath.Join(t.TempDir(), "k2.key")
	key := make([]byte, 32)
	rand.Read(key)
	os.WriteFile(k2, []byte("k2:"+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
	both := map[string]string{"VELOX_ENCRYPTION_MASTER_KEY_FILES": filepath.Join(data, "master.key") + "," + k2}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "--data", data, "keys", "rotate"}, func(k string) string { return both[k] }, &out, io.Discard); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "done: 1 re-wrapped") {
		t.Errorf("keys rotate printed:\n%s", out.String())
	}
	onlyNew := map[string]string{"VELOX_ENCRYPTION_MASTER_KEY_FILES": k2}
	r2, _ := startServeLog(t, onlyNew, "--data", data)
	if code, b, err := download(r2, id, ""); code != 200 || err != nil || !bytes.Equal(b, content) {
		t.Fatalf("download with the new key only: %d %v", code, err)
	}
	r2.cancel()
	r2.wait()

	// Missing or wrong master keys stop the start, with a clear error.
	if err := serveFails(t, nil, "--data", data); !strings.Contains(err.Error(), "k2") {
		t.Errorf("start without the key in use: %v", err)
	}
	rand.Read(key)
	wrong := map[string]string{"VELOX_MASTER_KEYS": "k2:" + base64.StdEncoding.EncodeToString(key)}
	if err := serveFails(t, wrong, "--data", data); !strings.Contains(err.Error(), "wrong") {
		t.Errorf("start with a wrong key: %v", err)
	}
	os.Remove(filepath.Join(data, "master.key"))
	if err := serveFails(t, nil, "--data", data); !strings.Contains(err.Error(), "master key") {
		t.Errorf("start with master.key deleted: %v", err)
	}
	if err := serveFails(t, map[string]string{"VELOX_ENCRYPTION_ENABLED": "false"}, "--data", data); !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("start with encryption disabled over encrypted blobs: %v", err)
	}
	unreadable := map[string]string{"VELOX_ENCRYPTION_MASTER_KEY_FILES": filepath.Join(data, "nope.key")}
	if err := serveFails(t, unreadable, "--data", data); !strings.Contains(err.Error(), "nope.key") {
		t.Errorf("start with an unreadable key file: %v", err)
	}
}

// TestEncryptExistingCLI migrates blobs of an installation that ran
// without encryption.
func TestEncryptExistingCLI(t *testing.T) {
	data := t.TempDir()
	off := map[string]string{"VELOX_ADMIN_PASSWORD": "pw", "VELOX_ENCRYPTION_ENABLED": "false"}
	r, _ := startServeLog(t, off, "--data", data)
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
	req, _ := http.NewRequest("POST", r.url+"/api/v1/nodes/"+sp.RootID+"/files?name=old.txt", strings.NewReader("written in the clear"))
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("upload: %v %v", err, resp)
	}
	resp.Body.Close()
	r.cancel()
	r.wait()

	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "--data", data, "encrypt-existing"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("encrypt-existing: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "done: 1 blobs encrypted") {
		t.Errorf("encrypt-existing printed:\n%s", out.String())
	}
	for _, f := range blobFiles(t, filepath.Join(data, "blobs")) {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("clear")) {
			t.Errorf("%s is still plaintext", f)
		}
	}
	r2, _ := startServeLog(t, map[string]string{}, "--data", data)
	code, body := get(t, r2.url+"/api/v1/spaces/"+me.User.PersonalSpaceID+"/resolve?path=/old.txt", "admin", "pw")
	if code != 200 || !strings.Contains(body, `"size":20`) {
		t.Fatalf("resolve after migration: %d %s", code, body)
	}
	var n struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(body), &n)
	if code, body := get(t, r2.url+"/api/v1/nodes/"+n.ID+"/content", "admin", "pw"); code != 200 || body != "written in the clear" {
		t.Fatalf("download after migration: %d %q", code, body)
	}
}
