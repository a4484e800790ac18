package dav

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/testenv"
)

// TestSyncClients syncs a folder with the real desktop sync engines of
// Nextcloud (nextcloudcmd 3.7) and ownCloud (owncloudcmd 2.11), from
// Debian's packages, in both directions, the way an employee's laptop
// would: a first upload of a tree (nested folders, a non-ASCII name, an
// empty file, a file above the clients' 10 MB chunk size, which
// nextcloudcmd sends in chunks); changes made on the server (new file,
// move, delete, overwrite) reaching the laptop; changes made on the laptop
// reaching the server; and a run with nothing changed transferring
// nothing, which needs the ETags of PUT, GET and PROPFIND to agree.
func TestSyncClients(t *testing.T) {
	for _, c := range []struct{ bin, pkg string }{
		{"nextcloudcmd", "nextcloud-desktop-cmd"},
		{"owncloudcmd", "owncloud-client-cmd"},
	} {
		t.Run(c.bin, func(t *testing.T) {
			bin, err := exec.LookPath(c.bin)
			if err != nil {
				testenv.Unavailable(t, c.bin+" (Debian package "+c.pkg+")", err)
			}
			syncClientScenario(t, bin)
		})
	}
}

func syncClientScenario(t *testing.T, bin string) {
	e := newEnv(t)
	home := t.TempDir()
	laptop := filepath.Join(home, "Velox")
	if err := os.Mkdir(laptop, 0o755); err != nil {
		t.Fatal(err)
	}
	excludes := filepath.Join(home, "sync-exclude.lst")
	if err := os.WriteFile(excludes, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sync := func(what string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// Debian's owncloud-client-cmd comes without the system exclude
		// list, without which owncloudcmd refuses to start; an empty one
		// does for both clients.
		cmd := exec.CommandContext(ctx, bin, "--non-interactive", "--exclude", excludes, "-u", "alice", "-p", "alice-pass", laptop, e.srv.URL)
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s (%s): %v\n%s", filepath.Base(bin), what, err, lastLines(out, 40))
		}
		// The client retries failed items and may still exit 0; every
		// item must have gone through the first time.
		for _, line := range bytes.Split(out, []byte("\n")) {
			if bytes.Contains(line, []byte("Could not complete propagation")) &&
				!bytes.Contains(line, []byte("status OCC::SyncFileItem::Success")) {
				t.Fatalf("%s (%s) failed an item:\n%s", filepath.Base(bin), what, line)
			}
		}
		return string(out)
	}
	write := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(laptop, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// The client leaves alone files modified in the last seconds
		// (still being written); these were written a minute ago.
		before := time.Now().Add(-time.Minute)
		if err := os.Chtimes(p, before, before); err != nil {
			t.Fatal(err)
		}
	}
	onServer := func(name string) (int, string) {
		t.Helper()
		resp, body := e.do("GET", aliceRoot+"/"+escapePath(name), "")
		return resp.StatusCode, body
	}
	onLaptop := func(name string) ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(laptop, filepath.FromSlash(name)))
		return b, err == nil
	}

	// 1. The laptop's folder goes up.
	big := make([]byte, 12<<20)
	rand.Read(big)
	const uni = "Projects/Ünïcødé ☃ 文件.txt"
	tree := map[string][]byte{
		"notes.txt":               []byte("first draft\n"),
		"Projects/plan.md":        []byte("# Plan\n"),
		uni:                       []byte("unicode"),
		"Projects/deep/empty.txt": {},
		"big.bin":                 big,
	}
	for name, data := range tree {
		write(name, data)
	}
	sync("first upload")
	for name, data := range tree {
		if code, body := onServer(name); code != 200 || body != string(data) {
			t.Errorf("after the first sync, %s on the server: %d, %d bytes, want %d", name, code, len(body), len(data))
		}
	}

	// 2. Changes made on the server reach the laptop.
	e.must(201, "PUT", aliceRoot+"/from-server.txt", "made on the server")
	e.must(201, "MOVE", aliceRoot+"/notes.txt", "", "Destination", e.srv.URL+aliceRoot+"/Projects/notes-moved.txt")
	e.must(204, "DELETE", aliceRoot+"/Projects/deep/empty.txt", "")
	e.must(204, "PUT", aliceRoot+"/Projects/plan.md", "# Plan v2\n")
	sync("server changes")
	for name, want := range map[string]string{
		"from-server.txt":          "made on the server",
		"Projects/notes-moved.txt": "first draft\n",
		"Projects/plan.md":         "# Plan v2\n",
	} {
		if got, ok := onLaptop(name); !ok || string(got) != want {
			t.Errorf("after the server's changes, %s on the laptop: %q (exists %v), want %q", name, got, ok, want)
		}
	}
	for _, gone := range []string{"notes.txt", "Projects/deep/empty.txt"} {
		if _, ok := onLaptop(gone); ok {
			t.Errorf("%s is still on the laptop after the server moved or deleted it", gone)
		}
	}

	// 3. Changes made on the laptop reach the server.
	write("Projects/plan.md", []byte("# Plan v3, from the laptop\n"))
	write("New folder/x.txt", []byte("x"))
	if err := os.Remove(filepath.Join(laptop, "big.bin")); err != nil {
		t.Fatal(err)
	}
	sync("laptop changes")
	if code, body := onServer("Projects/plan.md"); code != 200 || body != "# Plan v3, from the laptop\n" {
		t.Errorf("plan.md on the server after the laptop's edit: %d %q", code, body)
	}
	if code, _ := onServer("big.bin"); code != 404 {
		t.Errorf("big.bin on the server after the laptop deleted it: %d, want 404", code)
	}
	if code, body := onServer("New folder/x.txt"); code != 200 || body != "x" {
		t.Errorf("New folder/x.txt on the server: %d %q", code, body)
	}

	// 4. Nothing changed: nothing is transferred.
	out := sync("idle")
	for _, job := range []string{"PUTFileJob", "GETFileJob"} {
		if strings.Contains(out, job) {
			t.Errorf("a sync with nothing changed still transferred files (%q):\n%s", job, lastLines([]byte(out), 40))
		}
	}
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// lastLines returns the last n lines of out, for failure messages.
func lastLines(out []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
