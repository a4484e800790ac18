package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables that point the Swift tests at a running cluster
// instead of one started by the test binary.
const (
	EnvSwiftAuthURL = "VELOX_TEST_SWIFT_AUTH_URL" // tempauth v1 URL, e.g. http://127.0.0.1:8080/auth/v1.0
	EnvSwiftUser    = "VELOX_TEST_SWIFT_USER"     // default "test:tester"
	EnvSwiftKey     = "VELOX_TEST_SWIFT_KEY"      // default "testing"
)

const (
	swiftUser = "test:tester"
	swiftKey  = "testing"
	// swiftPython is the interpreter that has the swift module; a python3
	// earlier on PATH may be a different one.
	swiftPython = "/usr/bin/python3"
	// swiftConf is read by every Swift server from this fixed path.
	swiftConf = "/etc/swift/swift.conf"
	// swiftObjectServers is how many object servers a cluster has. With
	// three replicas, four servers let one be stopped while every object
	// still has two replicas to read and a handoff to write to.
	swiftObjectServers = 4
	// SwiftShortTokenLife is the tempauth token lifetime, in seconds, of
	// the extra proxy started by ShortTokenAuthURL.
	SwiftShortTokenLife = 3
	// swiftReadyTimeout is generous: on two busy cores, starting eight
	// Python servers at once can take half a minute.
	swiftReadyTimeout = 90 * time.Second
)

// SwiftEnv describes a Swift cluster for tests: tempauth v1 credentials and
// the storage URL they lead to.
type SwiftEnv struct {
	AuthURL    string // tempauth v1 endpoint, http://127.0.0.1:PORT/auth/v1.0
	User       string // "account:user"
	Key        string
	StorageURL string // http://127.0.0.1:PORT/v1/AUTH_test
	// Dir holds the cluster's state and logs (swift.log, *.out); empty for
	// an external cluster.
	Dir string

	cluster *SwiftCluster // nil for an external cluster
}

var (
	swiftOnce    sync.Once
	swiftCluster *SwiftCluster
	swiftErr     error
)

// Swift returns the Swift cluster for this test binary. If
// VELOX_TEST_SWIFT_AUTH_URL is set, that cluster is used (with
// VELOX_TEST_SWIFT_USER and VELOX_TEST_SWIFT_KEY, defaulting to
// test:tester/testing); otherwise a throwaway cluster is started from the
// Debian packages on the first call and stopped when Main returns. If
// neither works, the test skips or fails (see Unavailable).
func Swift(tb testing.TB) SwiftEnv {
	tb.Helper()
	if u := os.Getenv(EnvSwiftAuthURL); u != "" {
		env := SwiftEnv{AuthURL: u, User: os.Getenv(EnvSwiftUser), Key: os.Getenv(EnvSwiftKey)}
		if env.User == "" {
			env.User = swiftUser
		}
		if env.Key == "" {
			env.Key = swiftKey
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		su, _, err := swiftAuth(ctx, env.AuthURL, env.User, env.Key)
		if err != nil {
			Unavailable(tb, "Swift at "+u, err)
		}
		env.StorageURL = su
		return env
	}
	return OwnSwift(tb)
}

// OwnSwift is Swift without the environment override: it always uses the
// cluster this binary starts, for tests that stop servers or need the
// short-token proxy.
func OwnSwift(tb testing.TB) SwiftEnv {
	tb.Helper()
	swiftOnce.Do(func() {
		dir, err := os.MkdirTemp("", "velox-swift-")
		if err != nil {
			swiftErr = err
			return
		}
		swiftCluster, swiftErr = StartSwift(context.Background(), dir)
		if swiftErr != nil {
			os.RemoveAll(dir)
			return
		}
		OnExit(func() {
			swiftCluster.Stop()
			os.RemoveAll(dir)
		})
	})
	if swiftErr != nil {
		Unavailable(tb, "Swift", swiftErr)
	}
	return swiftCluster.Env()
}

// ObjectServers returns how many object servers the cluster has, or 0 for
// an external cluster.
func (e SwiftEnv) ObjectServers() int {
	if e.cluster == nil {
		return 0
	}
	return len(e.cluster.objects)
}

// StopObjectServer stops object server i (0-based), as if its machine
// died. Tests using an external cluster cannot do that: they skip or fail.
func (e SwiftEnv) StopObjectServer(tb testing.TB, i int) {
	tb.Helper()
	if e.cluster == nil {
		Unavailable(tb, "a Swift cluster started by the tests (needed to stop servers)", errors.New(EnvSwiftAuthURL+" points at an external cluster"))
	}
	if err := e.cluster.StopObjectServer(i); err != nil {
		tb.Fatal(err)
	}
}

// StartObjectServer starts object server i again after StopObjectServer.
func (e SwiftEnv) StartObjectServer(tb testing.TB, i int) {
	tb.Helper()
	if e.cluster == nil {
		Unavailable(tb, "a Swift cluster started by the tests (needed to start servers)", errors.New(EnvSwiftAuthURL+" points at an external cluster"))
	}
	if err := e.cluster.StartObjectServer(i); err != nil {
		tb.Fatal(err)
	}
}

// ShortTokenAuthURL returns the auth URL of a second proxy in front of the
// same cluster whose tempauth tokens expire after SwiftShortTokenLife
// seconds, so tests can watch a client re-authenticate. It is started on
// first use.
func (e SwiftEnv) ShortTokenAuthURL(tb testing.TB) string {
	tb.Helper()
	if e.cluster == nil {
		Unavailable(tb, "a Swift cluster started by the tests (needed for short-lived tokens)", errors.New(EnvSwiftAuthURL+" points at an external cluster"))
	}
	u, err := e.cluster.ShortTokenAuthURL()
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// SwiftCluster is a Swift "all in one" running from the Debian packages on
// loopback: memcached, one account and one container server with four
// directory devices each, four object servers with one device each, and a
// proxy with tempauth. Rings have three replicas.
type SwiftCluster struct {
	dir      string
	user     string
	ports    swiftPorts
	logs     *udpLog
	memcache *proc
	account  *proc
	cont     *proc
	objects  []*proc
	proxy    *proc
	env      SwiftEnv

	mu         sync.Mutex
	shortProxy *proc
	shortCache *proc
	shortURL   string
}

type swiftPorts struct {
	memcache, proxy, account, container, log int
	objects                                  []int
}

// StartSwift builds rings and configuration in dir (which must be new or
// empty) and starts a cluster, waiting until it serves authenticated
// requests. The caller must call Stop.
func StartSwift(ctx context.Context, dir string) (*SwiftCluster, error) {
	if err := checkSwiftInstalled(); err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	// Ports are picked free but could be taken by a parallel test binary
	// before our servers bind them; a second attempt with new ports makes
	// that race harmless.
	var lastErr error
	for attempt := 1; attempt <= 2; attempt++ {
		d := filepath.Join(dir, fmt.Sprintf("try%d", attempt))
		c := &SwiftCluster{dir: d, user: u.Username}
		if err := c.start(ctx); err != nil {
			c.Stop()
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return c, nil
	}
	return nil, lastErr
}

func checkSwiftInstalled() error {
	for _, bin := range []string{"swift-proxy-server", "swift-object-server", "swift-container-server", "swift-account-server", "memcached", swiftPython} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not installed (apt-get install swift swift-proxy swift-object swift-account swift-container python3-swiftclient memcached): %w", bin, err)
		}
	}
	b, err := os.ReadFile(swiftConf)
	if err != nil {
		return fmt.Errorf("swift needs %s: %w", swiftConf, err)
	}
	for _, k := range []string{"swift_hash_path_suffix", "swift_hash_path_prefix"} {
		if !confHasValue(string(b), k) {
			return fmt.Errorf("%s does not set %s", swiftConf, k)
		}
	}
	return nil
}

// confHasValue reports whether an ini text sets key to something non-empty
// on an uncommented line.
func confHasValue(text, key string) bool {
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key && strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
}

func (c *SwiftCluster) start(ctx context.Context) error {
	for _, sub := range []string{"etc", "logs", "cache"} {
		if err := os.MkdirAll(filepath.Join(c.dir, sub), 0o755); err != nil {
			return err
		}
	}
	var err error
	if c.logs, err = newUDPLog(filepath.Join(c.dir, "logs", "swift.log")); err != nil {
		return err
	}
	p := &c.ports
	p.log = c.logs.port
	for _, ptr := range []*int{&p.memcache, &p.proxy, &p.account, &p.container} {
		if *ptr, err = FreePort(); err != nil {
			return err
		}
	}
	p.objects = make([]int, swiftObjectServers)
	for i := range p.objects {
		if p.objects[i], err = FreePort(); err != nil {
			return err
		}
	}
	if err := c.writeRings(ctx); err != nil {
		return err
	}
	if err := c.writeConfigs(); err != nil {
		return err
	}

	c.memcache = c.newMemcached("memcached", p.memcache)
	c.account = c.newProc("account", "swift-account-server", c.conf("account"))
	c.cont = c.newProc("container", "swift-container-server", c.conf("container"))
	for i := range p.objects {
		c.objects = append(c.objects, c.newProc(fmt.Sprintf("object%d", i), "swift-object-server", c.conf(fmt.Sprintf("object%d", i))))
	}
	c.proxy = c.newProc("proxy", "swift-proxy-server", c.conf("proxy"))
	for _, pr := range c.all() {
		if err := pr.start(); err != nil {
			return err
		}
	}

	c.env = SwiftEnv{
		AuthURL: fmt.Sprintf("http://127.0.0.1:%d/auth/v1.0", p.proxy),
		User:    swiftUser,
		Key:     swiftKey,
		Dir:     c.dir,
		cluster: c,
	}
	su, err := c.waitReady(ctx, c.env.AuthURL, c.all())
	if err != nil {
		return fmt.Errorf("swift cluster in %s did not become ready: %w\n%s", c.dir, err, c.logTail(40))
	}
	c.env.StorageURL = su
	return nil
}

// Env returns the credentials of the cluster.
func (c *SwiftCluster) Env() SwiftEnv { return c.env }

func (c *SwiftCluster) all() []*proc {
	ps := []*proc{c.memcache, c.account, c.cont}
	ps = append(ps, c.objects...)
	return append(ps, c.proxy)
}

// waitReady polls until every server answers its healthcheck, memcached
// accepts connections, and a real auth plus HEAD of the storage URL
// succeed: the proxy's own healthcheck says OK even with backends down.
func (c *SwiftCluster) waitReady(ctx context.Context, authURL string, procs []*proc) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, swiftReadyTimeout)
	defer cancel()
	var last error
	for {
		last = c.probe(ctx, authURL, procs)
		if last == nil {
			su, _, err := swiftAuth(ctx, authURL, swiftUser, swiftKey)
			return su, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("after %v: %w", swiftReadyTimeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *SwiftCluster) probe(ctx context.Context, authURL string, procs []*proc) error {
	for _, pr := range procs {
		if pr.exited() {
			return fmt.Errorf("%s exited: %s", pr.name, pr.outTail(10))
		}
		if pr.port == 0 {
			continue
		}
		if pr.bin == "memcached" {
			conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", pr.port), time.Second)
			if err != nil {
				return fmt.Errorf("memcached: %w", err)
			}
			conn.Close()
			continue
		}
		if err := httpOK(ctx, "GET", fmt.Sprintf("http://127.0.0.1:%d/healthcheck", pr.port), nil); err != nil {
			return fmt.Errorf("%s healthcheck: %w", pr.name, err)
		}
	}
	su, tok, err := swiftAuth(ctx, authURL, swiftUser, swiftKey)
	if err != nil {
		return err
	}
	return httpOK(ctx, "HEAD", su, http.Header{"X-Auth-Token": {tok}})
}

func httpOK(ctx context.Context, method, url string, h http.Header) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return nil
}

// swiftAuth does a tempauth v1 login and returns the storage URL and token.
func swiftAuth(ctx context.Context, authURL, user, key string) (storageURL, token string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", authURL, nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("X-Auth-User", user)
	req.Header.Set("X-Auth-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", "", fmt.Errorf("auth at %s: %s", authURL, resp.Status)
	}
	storageURL, token = resp.Header.Get("X-Storage-Url"), resp.Header.Get("X-Auth-Token")
	if storageURL == "" || token == "" {
		return "", "", fmt.Errorf("auth at %s: no storage URL or token", authURL)
	}
	return storageURL, token, nil
}

// StopObjectServer stops object server i.
func (c *SwiftCluster) StopObjectServer(i int) error {
	if i < 0 || i >= len(c.objects) {
		return fmt.Errorf("no object server %d", i)
	}
	c.objects[i].stop()
	return nil
}

// StartObjectServer restarts object server i and waits for its healthcheck.
func (c *SwiftCluster) StartObjectServer(i int) error {
	if i < 0 || i >= len(c.objects) {
		return fmt.Errorf("no object server %d", i)
	}
	pr := c.objects[i]
	if !pr.exited() {
		return nil
	}
	pr.cmd = nil
	if err := pr.start(); err != nil {
		return err
	}
	if _, err := c.waitReady(context.Background(), c.env.AuthURL, []*proc{pr}); err != nil {
		return fmt.Errorf("object server %d did not come back: %w\n%s", i, err, c.logTail(20))
	}
	return nil
}

// ShortTokenAuthURL starts, once, a second proxy whose tokens live
// SwiftShortTokenLife seconds, and returns its auth URL.
func (c *SwiftCluster) ShortTokenAuthURL() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shortURL != "" {
		return c.shortURL, nil
	}
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	// Its own memcached: tempauth hands out the token already cached for
	// a user, which would be the main proxy's long-lived one.
	cachePort, err := FreePort()
	if err != nil {
		return "", err
	}
	c.shortCache = c.newMemcached("memcached-short-token", cachePort)
	if err := c.shortCache.start(); err != nil {
		return "", err
	}
	name := "proxy-short-token"
	if err := os.WriteFile(c.conf(name), []byte(c.proxyConf(name, port, cachePort, SwiftShortTokenLife)), 0o644); err != nil {
		return "", err
	}
	pr := c.newProc(name, "swift-proxy-server", c.conf(name))
	pr.port = port
	c.shortProxy = pr
	if err := pr.start(); err != nil {
		return "", err
	}
	u := fmt.Sprintf("http://127.0.0.1:%d/auth/v1.0", port)
	if _, err := c.waitReady(context.Background(), u, []*proc{c.shortCache, pr}); err != nil {
		return "", fmt.Errorf("short-token proxy: %w\n%s", err, c.logTail(20))
	}
	c.shortURL = u
	return u, nil
}

// Stop stops every server (TERM, then KILL) and the log listener. The
// state directory is left for the caller to remove.
func (c *SwiftCluster) Stop() {
	c.mu.Lock()
	for _, pr := range []*proc{c.shortProxy, c.shortCache} {
		if pr != nil {
			pr.stop()
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, pr := range c.all() {
		if pr == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr.stop()
		}()
	}
	wg.Wait()
	if c.logs != nil {
		c.logs.close()
	}
}

// logTail returns the last n lines of the cluster's syslog file and of
// every server's own output, for error messages.
func (c *SwiftCluster) logTail(n int) string {
	var b strings.Builder
	if c.logs != nil {
		fmt.Fprintf(&b, "--- %s\n%s", c.logs.path, tailFile(c.logs.path, n))
	}
	for _, pr := range c.all() {
		if pr != nil {
			if t := pr.outTail(n / 4); t != "" {
				fmt.Fprintf(&b, "--- %s\n%s", pr.out, t)
			}
		}
	}
	return b.String()
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func (c *SwiftCluster) conf(name string) string {
	return filepath.Join(c.dir, "etc", name+".conf")
}

func (c *SwiftCluster) devices(name string) string {
	return filepath.Join(c.dir, "srv", name)
}

// writeRings builds the three rings in one python process: the
// swift-ring-builder CLI would take ~18 calls and ten seconds.
func (c *SwiftCluster) writeRings(ctx context.Context) error {
	var spec bytes.Buffer
	dev := func(ring string, zone, port int, name string) {
		fmt.Fprintf(&spec, "%s %d %d %s\n", ring, zone, port, name)
	}
	for i := 1; i <= 4; i++ {
		for _, r := range []struct {
			ring, srv string
			port      int
		}{{"account", "account", c.ports.account}, {"container", "container", c.ports.container}} {
			name := fmt.Sprintf("%s%d", r.ring[:1], i)
			dev(r.ring, i, r.port, name)
			if err := os.MkdirAll(filepath.Join(c.devices(r.srv), name), 0o755); err != nil {
				return err
			}
		}
	}
	for i, port := range c.ports.objects {
		name := fmt.Sprintf("o%d", i+1)
		// One zone per object server, so the three replicas of every
		// partition land on three different servers.
		dev("object", i+1, port, name)
		if err := os.MkdirAll(filepath.Join(c.devices(fmt.Sprintf("object%d", i)), name), 0o755); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, swiftPython, "-c", ringScript, filepath.Join(c.dir, "etc"))
	cmd.Stdin = &spec
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building rings: %w: %s", err, out)
	}
	return nil
}

// ringScript reads "ring zone port device" lines and writes
// <ring>.builder and <ring>.ring.gz files with three replicas and 2^8
// partitions (plenty for a test cluster, and fast to balance).
const ringScript = `
import sys
from swift.common.ring import RingBuilder
out = sys.argv[1]
devs = {}
for line in sys.stdin:
    ring, zone, port, name = line.split()
    devs.setdefault(ring, []).append(dict(region=1, zone=int(zone), ip='127.0.0.1', port=int(port), device=name, weight=100, meta=''))
for ring, ds in devs.items():
    b = RingBuilder(8, 3, 1)
    for d in ds:
        b.add_dev(d)
    b.rebalance()
    b.save('%s/%s.builder' % (out, ring))
    b.get_ring().save('%s/%s.ring.gz' % (out, ring))
`

func (c *SwiftCluster) common(name string, port int, devices string) string {
	return fmt.Sprintf(`[DEFAULT]
bind_ip = 127.0.0.1
bind_port = %d
# One process, no fork: the PID we start is the whole server.
workers = 0
user = %s
swift_dir = %s
devices = %s
mount_check = false
disable_fallocate = true
recon_cache_path = %s
log_name = %s
log_udp_host = 127.0.0.1
log_udp_port = %d
`, port, c.user, filepath.Join(c.dir, "etc"), devices, filepath.Join(c.dir, "cache"), name, c.ports.log)
}

func (c *SwiftCluster) writeConfigs() error {
	files := map[string]string{
		"account": c.common("account", c.ports.account, c.devices("account")) + `
[pipeline:main]
pipeline = healthcheck account-server
[app:account-server]
use = egg:swift#account
[filter:healthcheck]
use = egg:swift#healthcheck
`,
		"container": c.common("container", c.ports.container, c.devices("container")) + `
[pipeline:main]
pipeline = healthcheck container-server
[app:container-server]
use = egg:swift#container
[filter:healthcheck]
use = egg:swift#healthcheck
`,
		"proxy": c.proxyConf("proxy", c.ports.proxy, c.ports.memcache, 86400),
	}
	for i, port := range c.ports.objects {
		name := fmt.Sprintf("object%d", i)
		files[name] = c.common(name, port, c.devices(name)) + `
[pipeline:main]
pipeline = healthcheck object-server
[app:object-server]
use = egg:swift#object
[filter:healthcheck]
use = egg:swift#healthcheck
`
	}
	for name, text := range files {
		if err := os.WriteFile(c.conf(name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (c *SwiftCluster) proxyConf(name string, port, memcachePort, tokenLife int) string {
	var b strings.Builder
	b.WriteString(c.common(name, port, c.devices("proxy")))
	fmt.Fprintf(&b, `
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = %s .admin
token_life = %d
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:%d
`, swiftKey, tokenLife, memcachePort)
	for _, f := range []string{"catch_errors", "gatekeeper", "healthcheck", "proxy-logging", "listing_formats", "bulk", "tempurl", "ratelimit", "copy", "container-quotas", "account-quotas", "slo", "dlo", "versioned_writes", "symlink"} {
		fmt.Fprintf(&b, "[filter:%s]\nuse = egg:swift#%s\n", f, strings.ReplaceAll(f, "-", "_"))
	}
	return b.String()
}

// proc is one server process.
type proc struct {
	name string
	bin  string
	args []string
	port int
	out  string // stdout and stderr go here

	cmd  *exec.Cmd
	done chan struct{}
}

func (c *SwiftCluster) newMemcached(name string, port int) *proc {
	args := []string{"-l", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "0"}
	if c.user == "root" {
		args = append(args, "-u", "root") // memcached refuses root without it
	}
	pr := c.newProc(name, "memcached", args...)
	pr.port = port
	return pr
}

func (c *SwiftCluster) newProc(name, bin string, args ...string) *proc {
	pr := &proc{name: name, bin: bin, args: args, out: filepath.Join(c.dir, "logs", name+".out")}
	switch {
	case name == "account":
		pr.port = c.ports.account
	case name == "container":
		pr.port = c.ports.container
	case name == "proxy":
		pr.port = c.ports.proxy
	case strings.HasPrefix(name, "object"):
		var i int
		fmt.Sscanf(name, "object%d", &i)
		pr.port = c.ports.objects[i]
	}
	return pr
}

func (p *proc) start() error {
	if p.port != 0 && !PortFree(p.port) {
		return fmt.Errorf("%s: port %d is already taken", p.name, p.port)
	}
	out, err := os.OpenFile(p.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(p.bin, p.args...)
	// A file, not a pipe: with a pipe, Wait would also wait for every
	// process that inherited it.
	cmd.Stdout, cmd.Stderr = out, out
	// Swift servers call setsid() themselves; memcached gets its own
	// group here so that stop can signal the group in both cases. If the
	// test binary dies without running its cleanup, the kernel kills the
	// servers with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: p.bin == "memcached"}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return nil
}

func (p *proc) exited() bool {
	if p.cmd == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends TERM to the process group, then KILL after five seconds.
func (p *proc) stop() {
	if p.cmd == nil || p.exited() {
		return
	}
	pid := p.cmd.Process.Pid
	signal := func(sig syscall.Signal) {
		syscall.Kill(-pid, sig) // the group: servers that fork take their workers along
		syscall.Kill(pid, sig)
	}
	signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) outTail(n int) string { return tailFile(p.out, n) }

// udpLog receives the servers' syslog datagrams (there is no /dev/log to
// send them to) and appends them to a file.
type udpLog struct {
	conn net.PacketConn
	path string
	port int
	done chan struct{}
}

func newUDPLog(path string) (*udpLog, error) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		conn.Close()
		return nil, err
	}
	l := &udpLog{conn: conn, path: path, port: conn.LocalAddr().(*net.UDPAddr).Port, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer f.Close()
		w := bufio.NewWriter(f)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				w.Flush()
				return
			}
			w.Write(bytes.TrimRight(buf[:n], "\x00\n"))
			w.WriteByte('\n')
			// Flush per datagram: the file is read when a start fails.
			w.Flush()
		}
	}()
	return l, nil
}

func (l *udpLog) close() {
	l.conn.Close()
	<-l.done
}
