//go:build linux

package deploytest

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veloxhq/velox/auth/ldap"
	"github.com/veloxhq/velox/internal/testenv"
)

// The OpenLDAP image's entrypoint, run here on loopback with Debian's
// slapd, builds the directory the app services are configured for: a
// seeded user signs in through Velox's LDAP provider with the compose
// settings, and gets her nested groups.
func TestComposeDirectoryImage(t *testing.T) {
	for _, bin := range []string{"slapd", "slapadd", "slappasswd"} {
		tool(t, bin, "slapd")
	}
	tool(t, "ldapadd", "ldap-utils")
	c := loadCompose(t)
	app := c.appServices(t)[0]
	cfg := composeAppConfig(t, c, app)
	lu, err := url.Parse(cfg.Auth.LDAP.URLs[0])
	if err != nil {
		t.Fatal(err)
	}
	ld := c.serviceAt(t, "auth.ldap.urls", lu.Host)
	lenv := ld.env()

	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ldapURL := "ldap://127.0.0.1:" + strconv.Itoa(port) + "/"
	cmd := exec.Command("bash", filepath.Join(c.root, "deploy/openldap/entrypoint.sh"))
	cmd.Env = append(os.Environ(),
		"LDAP_STATE="+filepath.Join(dir, "state"),
		"LDAP_URLS="+ldapURL,
		"LDAP_SEED_DIR="+filepath.Join(c.root, "deploy/openldap"),
		"LDAP_RUN_AS=", // the test's own user, not the image's openldap
		"LDAP_DEBUG=0",
		"LDAP_ADMIN_PASSWORD_FILE="+c.secretFile(t, ld, lenv["LDAP_ADMIN_PASSWORD_FILE"]),
		"LDAP_SERVICE_PASSWORD_FILE="+c.secretFile(t, ld, lenv["LDAP_SERVICE_PASSWORD_FILE"]),
	)
	logPath := filepath.Join(dir, "entrypoint.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The seed is loaded over a private socket before slapd listens on
		// the URL, so a connection means the directory is complete.
		if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			conn.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("the entrypoint exited:\n%s", readFile(t, logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen within 30s:\n%s", readFile(t, logPath))
		}
	}

	// The provider as velox serve builds it from this configuration.
	l := cfg.Auth.LDAP
	pw := strings.TrimSpace(readFile(t, c.secretFile(t, app, l.BindPasswordFile)))
	p, err := ldap.New(ldap.Config{Preset: l.Preset, URLs: []string{ldapURL}, StartTLS: l.StartTLS, AllowPlaintext: l.AllowPlaintext,
		BindDN: l.BindDN, BindPassword: pw, BaseDN: l.BaseDN, UserBase: l.UserBase, UserFilter: l.UserFilter,
		LoginAttributes: l.LoginAttributes, GroupBase: l.GroupBase, GroupFilter: l.GroupFilter,
		GroupMembership: ldap.Membership(strings.ToLower(l.GroupMembership)), RequestTimeout: l.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	seed := readFile(t, filepath.Join(c.root, "deploy/openldap/seed.ldif"))
	m := regexp.MustCompile(`(?m)^dn: uid=alice,[^\n]*\n(?:[^\n]+\n)*?userPassword: (\S+)$`).FindStringSubmatch(seed)
	if m == nil {
		t.Fatal("seed.ldif: no password for alice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := p.Authenticate(ctx, "alice", m[1])
	if err != nil {
		t.Fatalf("alice signs in with the seeded password: %v\n%s", err, readFile(t, logPath))
	}
	for _, g := range []string{"engineering", "staff"} {
		if !slices.Contains(id.Groups, g) {
			t.Errorf("alice's groups %v lack %s (engineering is nested in staff)", id.Groups, g)
		}
	}
	if _, err := p.Authenticate(ctx, "alice", "not-her-password"); err == nil {
		t.Error("alice signed in with a wrong password")
	}
}

// The Swift image's entrypoint and health check, run here with Debian's
// Swift in private mount and network namespaces (so its fixed ports and
// paths touch nothing on the machine), start a Swift the compose user can
// log in to, write to and read from.
func TestComposeSwiftImage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Swift (about 8 s); not in -short mode")
	}
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "root (the Swift image's entrypoint runs in private mount and network namespaces)", errors.New("not running as root"))
	}
	unshare := tool(t, "unshare", "util-linux")
	tool(t, "ip", "iproute2")
	tool(t, "curl", "curl")
	for _, bin := range []string{"swift-proxy-server", "swift-object-server", "swift-container-server", "swift-account-server", "memcached"} {
		tool(t, bin, "swift swift-proxy swift-object swift-container swift-account memcached")
	}
	if _, err := os.Stat("/etc/swift"); err != nil {
		testenv.Unavailable(t, "/etc/swift (Debian package swift)", err)
	}
	c := loadCompose(t)
	cfg := composeAppConfig(t, c, c.appServices(t)[0])
	au, err := url.Parse(cfg.Storage.Swift.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	sw := c.serviceAt(t, "storage.swift.auth_url", au.Host)
	ctxDir, df, ok := sw.build()
	if !ok {
		t.Fatalf("service %s is not built from the repository", sw.name)
	}

	// The image's files, where its Dockerfile puts them.
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	srcs, dests := dockerfileCopies(t, filepath.Join(c.root, ctxDir, df))
	for i, src := range srcs {
		if filepath.Dir(dests[i]) != "/usr/local/bin" {
			t.Fatalf("%s copies %s to %s; the test only knows /usr/local/bin", df, src, dests[i])
		}
		if err := os.WriteFile(filepath.Join(bin, filepath.Base(dests[i])), []byte(readFile(t, filepath.Join(c.root, ctxDir, src))), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "etc"), 0o755)
	env := sw.env()
	keyFile := c.secretFile(t, sw, env["SWIFT_KEY_FILE"])
	script := `set -eu
ip link set lo up
cp -a /etc/swift/. "$TEST_DIR/etc/"
mount --bind "$TEST_DIR/etc" /etc/swift
mount -t tmpfs tmpfs /srv
mount --bind "$TEST_DIR/bin" /usr/local/bin
/usr/local/bin/swift-entrypoint >"$TEST_DIR/entrypoint.log" 2>&1 &
ep=$!
trap 'kill -TERM $ep 2>/dev/null || true; wait $ep || true' EXIT
for _ in $(seq 1 600); do
  /usr/local/bin/swift-healthcheck >/dev/null 2>&1 && break
  kill -0 $ep 2>/dev/null || { echo "the entrypoint exited"; exit 1; }
  sleep 0.2
done
/usr/local/bin/swift-healthcheck
port=${SWIFT_PROXY_PORT:-8080}
headers=$(curl -fsS -o /dev/null -D - -H "X-Auth-User: $SWIFT_USER" -H "X-Auth-Key: $(cat "$SWIFT_KEY_FILE")" "http://127.0.0.1:$port/auth/v1.0" | tr -d '\r')
token=$(sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p' <<<"$headers")
url=$(sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: //p' <<<"$headers")
curl -fsS -X PUT -H "X-Auth-Token: $token" "$url/velox-test"
curl -fsS -X PUT -H "X-Auth-Token: $token" --data-binary 'stored in the compose Swift' "$url/velox-test/o"
test "$(curl -fsS -H "X-Auth-Token: $token" "$url/velox-test/o")" = 'stored in the compose Swift'
echo SWIFT-OK
`
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "--mount", "--net", "--propagation", "private", "bash", "-c", script)
	cmd.Env = append(os.Environ(), "TEST_DIR="+dir, "SWIFT_KEY_FILE="+keyFile)
	for k, v := range env {
		if k != "SWIFT_KEY_FILE" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SWIFT-OK") {
		log, _ := os.ReadFile(filepath.Join(dir, "entrypoint.log"))
		t.Fatalf("the Swift image's entrypoint: %v\n%s\n--- entrypoint log:\n%s", err, out, tailString(string(log), 4000))
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
