package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/testenv"
)

// chromiumPath is Debian's Chromium.
const chromiumPath = "/usr/bin/chromium"

// result is one line the browser script reports: a scenario's outcome, or
// a measurement.
type result struct {
	Test    string             `json:"test"`
	OK      bool               `json:"ok"`
	Skipped string             `json:"skipped"`
	Error   string             `json:"error"`
	MS      float64            `json:"ms"`
	Metrics map[string]float64 `json:"metrics"`
}

func TestMain(m *testing.M) { testenv.Main(m) }

// TestBrowser builds velox, starts "velox serve" on a fresh data directory
// and runs the scenarios of browser.mjs against it in headless Chromium.
// Each scenario becomes a subtest; screenshots go to $VELOX_TEST_ARTIFACTS
// (a temporary directory by default). TEST_BROWSER_ONLY=name,name runs a
// subset; VELOX_E2E_BINARY tests a prebuilt binary.
func TestBrowser(t *testing.T) {
	runBrowser(t, nil, os.Getenv("TEST_BROWSER_ONLY"), "")
}

// swiftScenarios are the scenarios that move file contents; they run a
// second time with the Swift blob store.
const swiftScenarios = "create-folder-and-upload,folder-upload-drag-and-drop,download-bytes,zip-download,replace-and-restore-version,delete-and-restore,chunked-upload-resume"

// TestBrowserSwift runs the content scenarios against velox serve with
// the Swift backend (a test cluster from testenv).
func TestBrowserSwift(t *testing.T) {
	if testing.Short() {
		t.Skip("the Swift browser run is skipped in -short mode")
	}
	only := os.Getenv("TEST_BROWSER_ONLY")
	if only == "" {
		only = swiftScenarios
	}
	browserPrereqs(t)
	sw := testenv.Swift(t)
	prefix := fmt.Sprintf("e2eweb%x", time.Now().UnixNano()&0xffffffffff)
	runBrowser(t, []string{
		"VELOX_STORAGE_BACKEND=swift",
		"VELOX_STORAGE_SWIFT_AUTH_URL=" + sw.AuthURL,
		"VELOX_STORAGE_SWIFT_USER=" + sw.User,
		"VELOX_STORAGE_SWIFT_KEY=" + sw.Key,
		"VELOX_STORAGE_SWIFT_CONTAINER_PREFIX=" + prefix,
		"VELOX_STORAGE_SWIFT_SHARDS=4",
	}, only, "swift-")
}

// browserPrereqs skips (or fails, when integration is required) without
// node, Chromium or the npm packages.
func browserPrereqs(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Unavailable(t, "node", err)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Unavailable(t, "chromium", err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		testenv.Unavailable(t, "playwright-core (npm ci in web/e2e)", err)
	}
	return node
}

// runBrowser starts velox serve with the extra environment and runs the
// browser scenarios named in only (all if empty); screenshot names get
// shotPrefix.
func runBrowser(t *testing.T, serveEnv []string, only, shotPrefix string) {
	node := browserPrereqs(t)
	artifacts := os.Getenv("VELOX_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	// VELOX_E2E_BINARY tests a prebuilt velox instead of building this tree.
	bin := os.Getenv("VELOX_E2E_BINARY")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "velox")
		build := exec.Command("go", "build", "-o", bin, "github.com/veloxhq/velox/cmd/velox")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	const password = "e2e-admin-pw"
	url := startServe(t, bin, password, serveEnv)

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "browser.mjs")
	cmd.Env = append(os.Environ(), "VELOX_URL="+url, "VELOX_PASSWORD="+password, "VELOX_TEST_ARTIFACTS="+artifacts,
		"CHROMIUM="+chromiumPath, "SCRATCH="+t.TempDir(), "TEST_BROWSER_ONLY="+only, "SHOT_PREFIX="+shotPrefix)
	cmd.Stderr = &logWriter{t: t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var results []result
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			var r result
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				t.Errorf("bad result line %q: %v", line, err)
				continue
			}
			results = append(results, r)
		} else {
			t.Log(line)
		}
	}
	werr := cmd.Wait()
	for _, r := range results {
		t.Run(r.Test, func(t *testing.T) {
			for k, v := range r.Metrics {
				t.Logf("%s = %.1f", k, v)
			}
			switch {
			case r.Skipped != "" && testenv.Required():
				t.Errorf("scenario skipped: %s", r.Skipped)
			case r.Skipped != "":
				t.Skip(r.Skipped)
			case !r.OK:
				t.Errorf("%s (after %.0f ms)", r.Error, r.MS)
			default:
				t.Logf("passed in %.0f ms", r.MS)
			}
		})
	}
	if werr != nil {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || len(results) == 0 {
			t.Fatalf("browser script: %v", werr)
		}
	}
	if len(results) == 0 {
		t.Fatal("the browser script reported no results")
	}
	t.Logf("screenshots in %s", artifacts)
}

// startServe runs "velox serve" on a free port with a fresh data directory
// and returns its base URL.
func startServe(t *testing.T, bin, password string, env []string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = append(append(os.Environ(), "VELOX_ADMIN_PASSWORD="+password), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &logWriter{t: t, prefix: "velox: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	re := regexp.MustCompile(`running at (http://\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("velox serve did not start within 30s")
	}
	return ""
}

// logWriter sends a process's stderr to the test log, line by line.
type logWriter struct {
	t      *testing.T
	prefix string
	buf    []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.t.Log(w.prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}
