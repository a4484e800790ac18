// Package testenv starts the real components Velox's integration tests need
// (PostgreSQL, an OpenStack Swift cluster, OpenLDAP, Samba AD) from their
// Debian binaries, in temporary directories on loopback, and stops them
// afterwards.
//
// A component that is already running elsewhere can be supplied through
// environment variables (each starter documents its own), which is how the
// test script shares one instance across all test binaries. When a component
// is neither supplied nor startable, its tests skip with a loud message; with
// VELOX_REQUIRE_INTEGRATION=1 (set by the test script and CI) they fail.
package testenv

import (
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
)

// Required reports whether missing integration components must fail tests
// instead of skipping them.
func Required() bool { return os.Getenv("VELOX_REQUIRE_INTEGRATION") == "1" }

// Unavailable reports that component cannot be used: it fails the test when
// integration is required and skips it otherwise.
func Unavailable(tb testing.TB, component string, err error) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s is required (VELOX_REQUIRE_INTEGRATION=1) but unavailable: %v", component, err)
	}
	tb.Skipf("SKIPPING: %s unavailable (%v); run scripts/test.sh to install and start it", component, err)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortFree reports whether nothing listens on 127.0.0.1:port, so a readiness
// probe cannot succeed against someone else's server.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

var (
	stopMu sync.Mutex
	stops  []func()
)

// OnExit registers fn to run when Main's tests finish. Starters use it so
// that one instance serves every test in a binary.
func OnExit(fn func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stops = append(stops, fn)
}

// Main runs the tests and then stops every component started for them.
// Packages with integration tests call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	stopMu.Lock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	stopMu.Unlock()
	os.Exit(code)
}
