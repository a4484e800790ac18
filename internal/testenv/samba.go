package testenv

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// ADEnv describes a Samba Active Directory domain controller holding the
// test domain EXAMPLE.TEST:
//
//	CN=Users: alice (UPN alice@example.test, CN with parentheses), bob, carol,
//	          dave (disabled), erin (locked out by failed logins),
//	          velox-svc (the service account)
//	groups:   engineering{alice} ⊂ staff{bob} ⊂ all; managers{carol} ⊂ all
//
// Every fixture user's password is Password(sAMAccountName).
type ADEnv struct {
	URL      string // ldap://127.0.0.1:389, StartTLS available
	LDAPSURL string // ldaps://127.0.0.1:636
	CAFile   string
	BaseDN   string // DC=example,DC=test
	Realm    string // example.test, the UPN suffix
	// BindDN and BindPassword are an ordinary domain user used as the
	// service account.
	BindDN, BindPassword string
	// AdminDN and AdminPassword may write (group changes).
	AdminDN, AdminPassword string
	// Locked names a user locked out by failed logins, "" if none.
	Locked string
}

// Environment variables that point SambaAD at a running domain controller
// with the fixtures above, instead of starting one.
const (
	envADURL     = "VELOX_TEST_AD_URL"
	envADSURL    = "VELOX_TEST_ADS_URL"
	envADCA      = "VELOX_TEST_AD_CA_FILE"
	envADBindDN  = "VELOX_TEST_AD_BIND_DN"
	envADBindPW  = "VELOX_TEST_AD_BIND_PASSWORD"
	envADAdminDN = "VELOX_TEST_AD_ADMIN_DN"
	envADAdminPW = "VELOX_TEST_AD_ADMIN_PASSWORD"

	adBaseDN  = "DC=example,DC=test"
	adAdminPW = "Admin-Secret-2026!"
	// adFixtureVersion is part of the cache name; bump it when the
	// fixtures change so a stale cached domain is not used.
	adFixtureVersion = "1"
	// adLockoutThreshold is high enough that the wrong-password tests
	// never lock a user by accident.
	adLockoutThreshold = 10
	adStartLimit       = 60 * time.Second
)

var (
	sambaOnce sync.Once
	sambaEnv  ADEnv
	sambaErr  error
)

// SambaAD returns the test Active Directory, provisioning and starting a
// Samba AD DC the first time a test binary asks. The provisioned domain
// is cached under the user cache directory, so later runs start in about
// a second. Samba binds the fixed LDAP ports (389, 636, 3268, 3269), so
// only one DC can run per host: test binaries that use it take turns
// through a host-wide file lock (see hostLock).
//
// Starting Samba needs root. The server is stopped by Main.
func SambaAD(tb testing.TB) ADEnv {
	tb.Helper()
	sambaOnce.Do(func() {
		if os.Getenv(envADURL) != "" {
			sambaEnv, sambaErr = sambaFromEnv()
		} else {
			sambaEnv, sambaErr = startSamba()
		}
	})
	if sambaErr != nil {
		Unavailable(tb, "Samba AD", sambaErr)
	}
	return sambaEnv
}

func newADEnv() ADEnv {
	return ADEnv{
		BaseDN:        adBaseDN,
		Realm:         "example.test",
		BindDN:        "CN=velox-svc,CN=Users," + adBaseDN,
		BindPassword:  adPassword("velox-svc"),
		AdminDN:       "CN=Administrator,CN=Users," + adBaseDN,
		AdminPassword: adAdminPW,
	}
}

func sambaFromEnv() (ADEnv, error) {
	e := newADEnv()
	e.URL = os.Getenv(envADURL)
	e.LDAPSURL = os.Getenv(envADSURL)
	e.CAFile = os.Getenv(envADCA)
	if v := os.Getenv(envADBindDN); v != "" {
		e.BindDN, e.BindPassword = v, os.Getenv(envADBindPW)
	}
	if v := os.Getenv(envADAdminDN); v != "" {
		e.AdminDN, e.AdminPassword = v, os.Getenv(envADAdminPW)
	}
	c, err := e.adminConn()
	if err != nil {
		return e, err
	}
	c.Close()
	return e, nil
}

// adPassword meets the default AD complexity rules.
func adPassword(user string) string { return "Pw-" + user + "-2026!" }

// Password returns the password of fixture user sam.
func (e ADEnv) Password(sam string) string { return adPassword(sam) }

func samba(ctx context.Context, args ...string) error {
	bin, err := findBinary(args[0])
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, bin, args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args[:min(len(args), 3)], " "), err, tail(out, 1500))
	}
	return nil
}

func startSamba() (ADEnv, error) {
	sambaBin, err := findBinary("samba")
	if err != nil {
		return ADEnv{}, err
	}
	if _, err := findBinary("samba-tool"); err != nil {
		return ADEnv{}, err
	}
	if os.Geteuid() != 0 {
		return ADEnv{}, errors.New("a Samba AD DC must run as root")
	}
	// One DC per host: wait for any other test binary's DC to stop.
	unlock, err := hostLock("velox-samba-ad", 10*time.Minute)
	if err != nil {
		return ADEnv{}, err
	}
	env, err := startSambaLocked(sambaBin)
	if err != nil {
		unlock()
		return env, err
	}
	// Registered after the DC's stop, so it runs after it.
	OnExit(unlock)
	return env, nil
}

func startSambaLocked(sambaBin string) (ADEnv, error) {
	for _, port := range []int{389, 636} {
		if !PortFree(port) {
			return ADEnv{}, fmt.Errorf("port %d on 127.0.0.1 is already in use: by a Samba AD DC not started by this test environment, or by a directory server the distribution's package started (stop it)", port)
		}
	}
	ver, err := exec.Command(sambaBin, "-V").Output()
	if err != nil {
		return ADEnv{}, fmt.Errorf("samba -V: %w", err)
	}
	version := strings.Map(func(r rune) rune {
		if r == ' ' || r == '/' {
			return '_'
		}
		return r
	}, strings.TrimSpace(string(ver)))

	dir, err := os.MkdirTemp("", "velox-samba-")
	if err != nil {
		return ADEnv{}, err
	}
	fail := func(err error) (ADEnv, error) {
		os.RemoveAll(dir)
		return ADEnv{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cache := ""
	if cdir, err := os.UserCacheDir(); err == nil {
		cache = filepath.Join(cdir, "velox-testenv", fmt.Sprintf("samba-%s-f%s.tar", version, adFixtureVersion))
	}
	dc := filepath.Join(dir, "dc")
	if err := restoreDomain(cache, dc); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "testenv: ignoring Samba cache %s: %v\n", cache, err)
		}
		os.RemoveAll(dc)
		if err := provisionDomain(ctx, dc); err != nil {
			return fail(err)
		}
		if cache != "" {
			if err := saveDomain(dc, cache); err != nil {
				fmt.Fprintf(os.Stderr, "testenv: cannot cache the Samba domain: %v\n", err)
			}
		}
	}

	certs, err := WriteTestCerts(dir)
	if err != nil {
		return fail(err)
	}
	conf := filepath.Join(dc, "etc", "smb.conf")
	if err := configureSamba(conf, dc, certs); err != nil {
		return fail(err)
	}

	logf, err := os.Create(filepath.Join(dir, "samba.log"))
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(sambaBin, "-i", "-M", "single", "-s", conf)
	// samba -i exits when its stdin closes: the pipe is its lifeline, so
	// even a killed test binary does not leave a DC behind.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fail(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = serverProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fail(fmt.Errorf("start samba: %w", err))
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	pidFile := filepath.Join(dc, "run", "samba.pid")
	stop := func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			// Samba renames its processes; signal the group and the
			// PID its pid file names.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			if b, err := os.ReadFile(pidFile); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			<-exited
		}
		os.RemoveAll(dir)
	}

	e := newADEnv()
	e.URL = "ldap://127.0.0.1:389"
	e.LDAPSURL = "ldaps://127.0.0.1:636"
	e.CAFile = certs.CAFile
	deadline := time.Now().Add(adStartLimit)
	for {
		var c *goldap.Conn
		if c, err = e.adminConn(); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "samba.log"))
			os.RemoveAll(dir)
			return ADEnv{}, fmt.Errorf("samba exited during start: %s", tail(log, 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return ADEnv{}, fmt.Errorf("samba not ready after %v: %w", adStartLimit, err)
		}
	}
	OnExit(stop)
	if err := e.lockOut("erin"); err != nil {
		return ADEnv{}, err
	}
	e.Locked = "erin"
	return e, nil
}

// provisionDomain creates the domain and its fixtures offline, working on
// the database files directly, which is much faster than over LDAP.
func provisionDomain(ctx context.Context, dc string) error {
	if err := samba(ctx, "samba-tool", "domain", "provision", "--targetdir="+dc,
		"--realm=EXAMPLE.TEST", "--domain=EXAMPLE", "--use-rfc2307",
		"--adminpass="+adAdminPW, "--host-name=dc1", "-s", "/dev/null"); err != nil {
		return err
	}
	conf := filepath.Join(dc, "etc", "smb.conf")
	db := filepath.Join(dc, "private", "sam.ldb")
	tool := func(args ...string) error {
		return samba(ctx, append(append([]string{"samba-tool"}, args...), "-H", db, "-s", conf)...)
	}
	user := func(sam string, extra ...string) error {
		args := append([]string{"user", "create", sam, adPassword(sam), "--mail-address=" + sam + "@example.test"}, extra...)
		return tool(args...)
	}
	steps := []func() error{
		func() error {
			return tool("domain", "passwordsettings", "set",
				"--account-lockout-threshold="+strconv.Itoa(adLockoutThreshold),
				"--account-lockout-duration=60", "--reset-account-lockout-after=60")
		},
		// The parentheses in alice's CN put escaping to work in every DN filter.
		func() error { return user("alice", "--given-name=Alice", "--surname=Liddell (R&D)") },
		func() error { return user("bob", "--given-name=Bob", "--surname=Builder") },
		func() error { return user("carol", "--given-name=Carol", "--surname=Danvers") },
		func() error { return user("dave") },
		func() error { return user("erin") },
		func() error { return user("velox-svc") },
		func() error { return tool("user", "disable", "dave") },
		func() error { return tool("group", "add", "engineering") },
		func() error { return tool("group", "add", "staff") },
		func() error { return tool("group", "add", "managers") },
		func() error { return tool("group", "add", "all") },
		func() error { return tool("group", "addmembers", "engineering", "alice") },
		func() error { return tool("group", "addmembers", "staff", "engineering,bob") },
		func() error { return tool("group", "addmembers", "managers", "carol") },
		func() error { return tool("group", "addmembers", "all", "staff,managers") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// configureSamba rewrites the provisioned smb.conf for this run: paths
// (the domain may have been restored elsewhere), loopback only, simple
// binds over plain LDAP for the tests, our own certificate (Samba's
// generated one has no SAN, which Go rejects), and only the LDAP service.
func configureSamba(conf, dc string, certs TLSFiles) error {
	b, err := os.ReadFile(conf)
	if err != nil {
		return err
	}
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			switch strings.TrimSpace(k) {
			case "binddns dir":
				line = "\tbinddns dir = " + filepath.Join(dc, "bind-dns")
			case "cache directory":
				line = "\tcache directory = " + filepath.Join(dc, "cache")
			case "lock directory":
				line = "\tlock directory = " + dc
			case "private dir":
				line = "\tprivate dir = " + filepath.Join(dc, "private")
			case "state directory":
				line = "\tstate directory = " + filepath.Join(dc, "state")
			case "path":
				// share paths: keep everything after the old state dir
				if i := strings.Index(v, "/state/"); i >= 0 {
					line = "\tpath = " + filepath.Join(dc, "state", v[i+len("/state/"):])
				}
			}
		}
		out.WriteString(line + "\n")
		if strings.TrimSpace(line) == "[global]" {
			for _, s := range []string{
				"ldap server require strong auth = no",
				"interfaces = lo",
				"bind interfaces only = yes",
				"server services = ldap",
				"pid directory = " + filepath.Join(dc, "run"),
				"tls enabled = yes",
				"tls certfile = " + certs.CertFile,
				"tls keyfile = " + certs.KeyFile,
				"tls cafile = " + certs.CAFile,
				"log level = 0",
			} {
				out.WriteString("\t" + s + "\n")
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(dc, "run"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(conf, []byte(out.String()), 0o644)
}

// lockOut fails sam's login until AD locks the account.
func (e ADEnv) lockOut(sam string) error {
	dn, err := e.userDN(sam)
	if err != nil {
		return err
	}
	for i := 0; i < adLockoutThreshold+2; i++ {
		c, err := goldap.DialURL(e.URL, goldap.DialWithDialer(dialer()))
		if err != nil {
			return err
		}
		err = c.Bind(dn, "wrong-password")
		c.Close()
		if err == nil {
			return fmt.Errorf("lock %s: a wrong password was accepted", sam)
		}
		if strings.Contains(err.Error(), "data 775") {
			return nil
		}
	}
	return fmt.Errorf("lock %s: still not locked after %d failed logins", sam, adLockoutThreshold+2)
}

func (e ADEnv) adminConn() (*goldap.Conn, error) {
	c, err := goldap.DialURL(e.URL, goldap.DialWithDialer(dialer()))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(30 * time.Second)
	if err := c.Bind(e.AdminDN, e.AdminPassword); err != nil {
		c.Close()
		return nil, fmt.Errorf("bind %s: %w", e.AdminDN, err)
	}
	return c, nil
}

// AdminConn returns a connection bound as AdminDN, closed when tb ends.
func (e ADEnv) AdminConn(tb testing.TB) *goldap.Conn {
	tb.Helper()
	c, err := e.adminConn()
	if err != nil {
		tb.Fatalf("AD admin connection: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func (e ADEnv) userDN(sam string) (string, error) {
	c, err := e.adminConn()
	if err != nil {
		return "", err
	}
	defer c.Close()
	res, err := c.Search(goldap.NewSearchRequest(e.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 0, false,
		"(sAMAccountName="+goldap.EscapeFilter(sam)+")", []string{"1.1"}, nil))
	if err != nil {
		return "", err
	}
	if len(res.Entries) != 1 {
		return "", fmt.Errorf("sAMAccountName %q: %d entries", sam, len(res.Entries))
	}
	return res.Entries[0].DN, nil
}

// DN returns the DN of the user or group whose sAMAccountName is sam.
func (e ADEnv) DN(tb testing.TB, sam string) string {
	tb.Helper()
	dn, err := e.userDN(sam)
	if err != nil {
		tb.Fatalf("AD: %v", err)
	}
	return dn
}

// CreateGroup adds a global security group name with members (DNs) and
// deletes it when tb ends.
func (e ADEnv) CreateGroup(tb testing.TB, name string, members ...string) string {
	tb.Helper()
	c := e.AdminConn(tb)
	dn := "CN=" + goldap.EscapeDN(name) + ",CN=Users," + e.BaseDN
	a := goldap.NewAddRequest(dn, nil)
	a.Attribute("objectClass", []string{"group"})
	a.Attribute("sAMAccountName", []string{name})
	if len(members) > 0 {
		a.Attribute("member", members)
	}
	if err := c.Add(a); err != nil {
		tb.Fatalf("add group %s: %v", name, err)
	}
	tb.Cleanup(func() {
		c, err := e.adminConn()
		if err != nil {
			tb.Errorf("delete group %s: %v", name, err)
			return
		}
		defer c.Close()
		if err := c.Del(goldap.NewDelRequest(dn, nil)); err != nil {
			tb.Errorf("delete group %s: %v", name, err)
		}
	})
	return dn
}

// AddMember adds memberDN to the group with DN groupDN.
func (e ADEnv) AddMember(tb testing.TB, groupDN, memberDN string) {
	tb.Helper()
	m := goldap.NewModifyRequest(groupDN, nil)
	m.Add("member", []string{memberDN})
	if err := e.AdminConn(tb).Modify(m); err != nil {
		tb.Fatalf("add %s to %s: %v", memberDN, groupDN, err)
	}
}

// RemoveMember removes memberDN from the group with DN groupDN.
func (e ADEnv) RemoveMember(tb testing.TB, groupDN, memberDN string) {
	tb.Helper()
	m := goldap.NewModifyRequest(groupDN, nil)
	m.Delete("member", []string{memberDN})
	if err := e.AdminConn(tb).Modify(m); err != nil {
		tb.Fatalf("remove %s from %s: %v", memberDN, groupDN, err)
	}
}

// saveDomain writes dc as a tar file at path, atomically, so concurrent
// or interrupted runs never see half a cache.
func saveDomain(dc, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".samba-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	// The original location, so the restore can rewrite absolute paths.
	err = filepath.WalkDir(dc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dc, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets and the like are recreated by samba
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// restoreDomain unpacks a domain saved by saveDomain into dc.
func restoreDomain(path, dc string) error {
	if path == "" {
		return fs.ErrNotExist
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dc, filepath.FromSlash(hdr.Name))
		if !strings.HasPrefix(name, dc+string(filepath.Separator)) {
			return fmt.Errorf("bad path %q in %s", hdr.Name, path)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, fs.FileMode(hdr.Mode)|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(hdr.Mode))
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
