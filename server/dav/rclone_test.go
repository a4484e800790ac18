package dav

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/testenv"
)

// TestRclone drives the rclone webdav backend against the handler with both
// vendor quirk sets: copy a tree up (including a 5 MiB file and a non-ASCII
// name), list it, check it byte for byte, move and delete a file, and
// verify the result through the file service.
func TestRclone(t *testing.T) {
	bin, err := exec.LookPath("rclone")
	if err != nil {
		testenv.Unavailable(t, "rclone", err)
	}
	for _, tc := range []struct{ vendor, root string }{
		{"owncloud", "/remote.php/webdav"},
		{"nextcloud", aliceRoot},
	} {
		t.Run(tc.vendor, func(t *testing.T) {
			e := newEnv(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			home := t.TempDir()
			obscured, err := exec.CommandContext(ctx, bin, "obscure", "alice-pass").Output()
			if err != nil {
				t.Fatalf("rclone obscure: %v", err)
			}
			cfg := filepath.Join(home, "rclone.conf")
			if err := os.WriteFile(cfg, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			rclone := func(args ...string) (stdout, stderr []byte) {
				t.Helper()
				args = append([]string{"--config", cfg, "--retries", "1", "--low-level-retries", "1", "--cache-dir", filepath.Join(home, "cache")}, args...)
				cmd := exec.CommandContext(ctx, bin, args...)
				cmd.Env = append(os.Environ(), "HOME="+home, "TMPDIR="+home,
					"RCLONE_CONFIG_VELOX_TYPE=webdav",
					"RCLONE_CONFIG_VELOX_URL="+e.srv.URL+tc.root,
					"RCLONE_CONFIG_VELOX_VENDOR="+tc.vendor,
					"RCLONE_CONFIG_VELOX_USER=alice",
					"RCLONE_CONFIG_VELOX_PASS="+strings.TrimSpace(string(obscured)))
				var errBuf bytes.Buffer
				cmd.Stderr = &errBuf
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("rclone %s: %v\n%s%s", strings.Join(args[8:], " "), err, out, errBuf.Bytes())
				}
				t.Logf("rclone %s: ok", strings.Join(args[8:], " "))
				return out, errBuf.Bytes()
			}

			src := filepath.Join(home, "src")
			big := make([]byte, 5<<20)
			rand.Read(big)
			const uni = "ünïcødé ☃ 文件.txt"
			mtime := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
			for name, data := range map[string][]byte{
				"a.txt":               []byte("hello\n"),
				"big.bin":             big,
				"dir/" + uni:          []byte("unicode"),
				"dir/sub/empty.txt":   nil,
				"dir/sub/second file": []byte("2"),
			} {
				p := filepath.Join(src, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, mtime, mtime); err != nil {
					t.Fatal(err)
				}
			}

			rclone("copy", src, "velox:up")
			var list []struct {
				Path    string
				Size    int64
				IsDir   bool
				ModTime time.Time
			}
			out, _ := rclone("lsjson", "-R", "velox:up")
			if err := json.Unmarshal(out, &list); err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, it := range list {
				got[it.Path] = it.Size
				if !it.IsDir && !it.ModTime.Equal(mtime) {
					t.Errorf("lsjson %s: mtime %v, want %v", it.Path, it.ModTime, mtime)
				}
			}
			for p, size := range map[string]int64{"a.txt": 6, "big.bin": 5 << 20, "dir/" + uni: 7, "dir/sub/empty.txt": 0} {
				if s, ok := got[p]; !ok || s != size {
					t.Errorf("lsjson: %s size %d (listed %v), want %d", p, s, ok, size)
				}
			}
			rclone("check", "--download", src, "velox:up")
			// A second copy finds nothing to do: sizes and mtimes match.
			if _, log := rclone("copy", "-v", src, "velox:up"); !bytes.Contains(log, []byte("There was nothing to transfer")) {
				t.Errorf("second rclone copy transferred files:\n%s", log)
			}
			rclone("moveto", "velox:up/a.txt", "velox:up/dir/a-moved.txt")
			rclone("deletefile", "velox:up/dir/sub/empty.txt")

			if _, err := e.node("/up/a.txt"); err == nil {
				t.Errorf("a.txt still exists after moveto")
			}
			if n, err := e.node("/up/dir/a-moved.txt"); err != nil || n.Size != 6 {
				t.Errorf("moved file: %v %v", n, err)
			}
			if n, err := e.node("/up/dir/" + uni); err != nil || n.Size != 7 {
				t.Errorf("unicode file: %v %v", n, err)
			}
			n, err := e.node("/up/big.bin")
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(big)
			if n.SHA256 != hex.EncodeToString(sum[:]) || !n.MTime.Equal(mtime) {
				t.Errorf("big.bin: sha256 %s mtime %v, want %x %v", n.SHA256, n.MTime, sum, mtime)
			}
		})
	}
}
