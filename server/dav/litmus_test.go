package dav

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/veloxhq/velox/internal/testenv"
)

// TestLitmus runs the litmus WebDAV compliance suites basic, copymove,
// props and http against the handler and requires every test to pass. (The locks
// suite is not run: locks are advisory, see the package comment.)
func TestLitmus(t *testing.T) {
	bin, err := exec.LookPath("litmus")
	if err != nil {
		testenv.Unavailable(t, "litmus", err)
	}
	for _, root := range []string{aliceRoot + "/", "/remote.php/webdav/"} {
		t.Run(strings.Trim(root, "/"), func(t *testing.T) {
			e := newEnv(t)
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, e.srv.URL+root, "alice", "alice-pass")
			cmd.Dir = dir // litmus writes debug.log to the working directory
			cmd.Env = append(os.Environ(), "TESTS=basic copymove props http", "HOME="+dir, "TMPDIR="+dir)
			out, err := cmd.CombinedOutput()
			t.Logf("litmus output:\n%s", out)
			if ctx.Err() != nil {
				t.Fatalf("litmus timed out")
			}
			checkLitmus(t, string(out), []string{"basic", "copymove", "props", "http"})
			if err != nil {
				t.Errorf("litmus exited with %v", err)
			}
		})
	}
}

var litmusSummary = regexp.MustCompile("<- summary for `([a-z]+)': of ([0-9]+) tests run: ([0-9]+) passed, ([0-9]+) failed")

// checkLitmus requires a summary line with no failures for every suite,
// and reports warnings.
func checkLitmus(t *testing.T, out string, suites []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range litmusSummary.FindAllStringSubmatch(out, -1) {
		seen[m[1]] = true
		t.Logf("summary %s: %s", m[1], m[0])
		if m[4] != "0" || m[2] != m[3] {
			t.Errorf("litmus suite %s: %s", m[1], m[0])
		}
	}
	for _, s := range suites {
		if !seen[s] {
			t.Errorf("no summary for litmus suite %s", s)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "WARNING") {
			t.Logf("litmus warning: %s", strings.TrimSpace(line))
		}
	}
}
