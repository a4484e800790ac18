package testenv

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// SlapdEnv describes an OpenLDAP server holding the test directory:
//
//	dc=example,dc=test
//	  ou=people   alice, bob, carol, dave (locked), frank
//	  ou=groups   engineering{alice} ⊂ staff{bob} ⊂ all{carol via managers};
//	              "R&D (West), EU"{carol} ⊂ all; loop-a ⊃ loop-b ⊃ loop-a {frank}
//	  ou=services cn=velox, the read-only service account
//
// Every fixture user's password is Password(uid).
type SlapdEnv struct {
	URL       string // ldap://127.0.0.1:port/, StartTLS available
	LDAPSURL  string // ldaps://127.0.0.1:port/
	CAFile    string // PEM of the CA that issued the server certificate
	BaseDN    string
	UserBase  string
	GroupBase string
	// BindDN and BindPassword are a read-only service account, the kind
	// Velox is configured with.
	BindDN, BindPassword string
	// AdminDN and AdminPassword may write; tests use them to change
	// group membership.
	AdminDN, AdminPassword string
	// Locking reports whether the server runs the ppolicy overlay, so
	// that dave is locked (pwdAccountLockedTime).
	Locking bool
}

// Environment variables that point Slapd at a running server instead of
// starting one. The server must use the layout above; missing fixtures
// are added through AdminDN.
const (
	envLDAPURL      = "VELOX_TEST_LDAP_URL"
	envLDAPSURL     = "VELOX_TEST_LDAPS_URL"
	envLDAPCA       = "VELOX_TEST_LDAP_CA_FILE"
	envLDAPBase     = "VELOX_TEST_LDAP_BASE_DN"
	envLDAPBindDN   = "VELOX_TEST_LDAP_BIND_DN"
	envLDAPBindPW   = "VELOX_TEST_LDAP_BIND_PASSWORD"
	envLDAPAdminDN  = "VELOX_TEST_LDAP_ADMIN_DN"
	envLDAPAdminPW  = "VELOX_TEST_LDAP_ADMIN_PASSWORD"
	envLDAPLocking  = "VELOX_TEST_LDAP_PPOLICY"
	slapdBaseDN     = "dc=example,dc=test"
	slapdAdminPW    = "admin-Secret-1"
	slapdServicePW  = "service-Secret-1"
	slapdStartLimit = 15 * time.Second
)

var (
	slapdOnce sync.Once
	slapdEnv  SlapdEnv
	slapdErr  error
)

// Slapd returns the test OpenLDAP server, starting a private slapd on free
// loopback ports the first time a test binary asks. It reports the server
// Unavailable (skip, or fail under VELOX_REQUIRE_INTEGRATION=1) when it can
// be neither found nor started. The server is stopped by Main.
func Slapd(tb testing.TB) SlapdEnv {
	tb.Helper()
	slapdOnce.Do(func() {
		if os.Getenv(envLDAPURL) != "" {
			slapdEnv, slapdErr = slapdFromEnv()
		} else {
			slapdEnv, slapdErr = startSlapd()
		}
		if slapdErr == nil {
			slapdErr = slapdEnv.loadFixtures()
		}
	})
	if slapdErr != nil {
		Unavailable(tb, "OpenLDAP (slapd)", slapdErr)
	}
	return slapdEnv
}

func slapdFromEnv() (SlapdEnv, error) {
	base := os.Getenv(envLDAPBase)
	if base == "" {
		base = slapdBaseDN
	}
	e := newSlapdEnv(base)
	e.URL = os.Getenv(envLDAPURL)
	e.LDAPSURL = os.Getenv(envLDAPSURL)
	e.CAFile = os.Getenv(envLDAPCA)
	e.BindDN = os.Getenv(envLDAPBindDN)
	e.BindPassword = os.Getenv(envLDAPBindPW)
	e.AdminDN = os.Getenv(envLDAPAdminDN)
	e.AdminPassword = os.Getenv(envLDAPAdminPW)
	e.Locking = os.Getenv(envLDAPLocking) == "1"
	if e.BindDN == "" || e.AdminDN == "" {
		return e, fmt.Errorf("%s is set but %s or %s is not", envLDAPURL, envLDAPBindDN, envLDAPAdminDN)
	}
	return e, nil
}

func newSlapdEnv(base string) SlapdEnv {
	return SlapdEnv{
		BaseDN:        base,
		UserBase:      "ou=people," + base,
		GroupBase:     "ou=groups," + base,
		BindDN:        "cn=velox,ou=services," + base,
		BindPassword:  slapdServicePW,
		AdminDN:       "cn=admin," + base,
		AdminPassword: slapdAdminPW,
	}
}

// findBinary looks in PATH and in the sbin directories, which are not in
// an ordinary user's PATH on Debian.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (install the Debian package that ships it)", name)
}

func startSlapd() (SlapdEnv, error) {
	slapd, err := findBinary("slapd")
	if err != nil {
		return SlapdEnv{}, err
	}
	slapadd, err := findBinary("slapadd")
	if err != nil {
		return SlapdEnv{}, err
	}
	dir, err := os.MkdirTemp("", "velox-slapd-")
	if err != nil {
		return SlapdEnv{}, err
	}
	fail := func(err error) (SlapdEnv, error) {
		os.RemoveAll(dir)
		return SlapdEnv{}, err
	}
	certs, err := WriteTestCerts(dir)
	if err != nil {
		return fail(err)
	}
	for _, sub := range []string{"slapd.d", "data"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return fail(err)
		}
	}
	locking := fileExists("/usr/lib/ldap/ppolicy.la")
	cfg := slapdConfig(dir, certs, locking)
	if err := os.WriteFile(filepath.Join(dir, "config.ldif"), []byte(cfg), 0o600); err != nil {
		return fail(err)
	}
	out, err := exec.Command(slapadd, "-n0", "-F", filepath.Join(dir, "slapd.d"), "-l", filepath.Join(dir, "config.ldif")).CombinedOutput()
	if err != nil {
		return fail(fmt.Errorf("slapadd cn=config: %w: %s", err, out))
	}

	var ldapPort, ldapsPort int
	for ldapPort == ldapsPort {
		if ldapPort, err = FreePort(); err != nil {
			return fail(err)
		}
		if ldapsPort, err = FreePort(); err != nil {
			return fail(err)
		}
	}
	e := newSlapdEnv(slapdBaseDN)
	e.URL = fmt.Sprintf("ldap://127.0.0.1:%d/", ldapPort)
	e.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d/", ldapsPort)
	e.CAFile = certs.CAFile
	e.Locking = locking

	logf, err := os.Create(filepath.Join(dir, "slapd.log"))
	if err != nil {
		return fail(err)
	}
	// -d 0 keeps slapd in the foreground (so we own its PID) without the
	// per-operation logging of -d stats, which slows the benchmarks.
	cmd := exec.Command(slapd, "-F", filepath.Join(dir, "slapd.d"),
		"-h", e.URL+" "+e.LDAPSURL, "-d", "0")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = serverProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fail(fmt.Errorf("start slapd: %w", err))
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		os.RemoveAll(dir)
	}

	deadline := time.Now().Add(slapdStartLimit)
	for {
		err = e.ping()
		if err == nil {
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
			os.RemoveAll(dir)
			return SlapdEnv{}, fmt.Errorf("slapd exited during start: %s", tail(log, 2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return SlapdEnv{}, fmt.Errorf("slapd not ready after %v: %w", slapdStartLimit, err)
		}
	}
	OnExit(stop)
	return e, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// slapdConfig renders cn=config. The memberof overlay fills memberOf (direct
// groups only), refint removes deleted users from groups, ppolicy makes
// pwdAccountLockedTime lock an account. The database skips fsync: test
// data need not survive a crash, and bulk loads get much faster. Anonymous users may only bind;
// the service account reads everything except passwords.
func slapdConfig(dir string, certs TLSFiles, locking bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %s
olcTLSCACertificateFile: %s
olcTLSCertificateFile: %s
olcTLSCertificateKeyFile: %s

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint
`, filepath.Join(dir, "slapd.pid"), certs.CAFile, certs.CertFile, certs.KeyFile)
	if locking {
		b.WriteString("olcModuleLoad: ppolicy\n")
	}
	b.WriteString(`
dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/nis.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

`)
	fmt.Fprintf(&b, `dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: %[1]s
olcRootDN: cn=admin,%[1]s
olcRootPW: %[2]s
olcDbDirectory: %[3]s
olcDbMaxSize: 1073741824
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,mail,cn eq,sub
olcDbIndex: member,memberOf eq
olcDbIndex: entryUUID eq
olcSizeLimit: size.soft=500 size.hard=500 size.prtotal=unlimited
olcAccess: {0}to attrs=userPassword by self =xw by anonymous auth by * none
olcAccess: {1}to dn.subtree="%[1]s" by users read by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}refint,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {1}refint
olcRefintAttribute: member
`, slapdBaseDN, slapdAdminPW, filepath.Join(dir, "data"))
	if locking {
		fmt.Fprintf(&b, `
dn: olcOverlay={2}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {2}ppolicy
olcPPolicyDefault: cn=default,ou=policies,%s
olcPPolicyUseLockout: TRUE
`, slapdBaseDN)
	}
	return b.String()
}

func (e SlapdEnv) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: "127.0.0.1"}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", e.CAFile)
		}
	}
	return cfg, nil
}

// ping checks the server answers a root DSE search.
func (e SlapdEnv) ping() error {
	c, err := goldap.DialURL(e.URL, goldap.DialWithDialer(dialer()))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetTimeout(2 * time.Second)
	_, err = c.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 2, false, "(objectClass=*)", []string{"namingContexts"}, nil))
	return err
}

// AdminConn returns a connection bound as AdminDN, closed when tb ends.
func (e SlapdEnv) AdminConn(tb testing.TB) *goldap.Conn {
	tb.Helper()
	c, err := e.adminConn()
	if err != nil {
		tb.Fatalf("slapd admin connection: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func (e SlapdEnv) adminConn() (*goldap.Conn, error) {
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

// Password returns the password of fixture user uid.
func (e SlapdEnv) Password(uid string) string { return uid + "-Secret-1" }

// UserDN returns the DN of user uid.
func (e SlapdEnv) UserDN(uid string) string {
	return "uid=" + goldap.EscapeDN(uid) + "," + e.UserBase
}

// GroupDN returns the DN of group cn.
func (e SlapdEnv) GroupDN(cn string) string {
	return "cn=" + goldap.EscapeDN(cn) + "," + e.GroupBase
}

// AddMember adds memberDN to group cn.
func (e SlapdEnv) AddMember(tb testing.TB, cn, memberDN string) {
	tb.Helper()
	e.modifyMember(tb, cn, memberDN, true)
}

// RemoveMember removes memberDN from group cn.
func (e SlapdEnv) RemoveMember(tb testing.TB, cn, memberDN string) {
	tb.Helper()
	e.modifyMember(tb, cn, memberDN, false)
}

func (e SlapdEnv) modifyMember(tb testing.TB, cn, memberDN string, add bool) {
	tb.Helper()
	c := e.AdminConn(tb)
	m := goldap.NewModifyRequest(e.GroupDN(cn), nil)
	if add {
		m.Add("member", []string{memberDN})
	} else {
		m.Delete("member", []string{memberDN})
	}
	if err := c.Modify(m); err != nil {
		tb.Fatalf("modify member of %s: %v", cn, err)
	}
}

// CreateGroup adds a groupOfNames cn with members (at least one, as the
// schema demands) and deletes it when tb ends. Tests that change
// membership use their own groups so they cannot disturb each other on a
// shared server.
func (e SlapdEnv) CreateGroup(tb testing.TB, cn string, members ...string) string {
	tb.Helper()
	c := e.AdminConn(tb)
	dn := e.GroupDN(cn)
	a := goldap.NewAddRequest(dn, nil)
	a.Attribute("objectClass", []string{"groupOfNames"})
	a.Attribute("cn", []string{cn})
	a.Attribute("member", members)
	if err := c.Add(a); err != nil {
		tb.Fatalf("add group %s: %v", cn, err)
	}
	tb.Cleanup(func() {
		c, err := e.adminConn()
		if err != nil {
			tb.Errorf("delete group %s: %v", cn, err)
			return
		}
		defer c.Close()
		if err := c.Del(goldap.NewDelRequest(dn, nil)); err != nil {
			tb.Errorf("delete group %s: %v", cn, err)
		}
	})
	return dn
}

// BulkUsers makes sure ou=<name> holds n users (<name>-0000 ...) spread
// over 10 groups that nest 3 levels deep under one <name>-all group, and
// returns the users' base DN. It is idempotent so that a shared server
// is loaded once; the entries go through the server so memberOf is kept.
func (e SlapdEnv) BulkUsers(tb testing.TB, name string, n int) string {
	tb.Helper()
	c := e.AdminConn(tb)
	ou := "ou=" + goldap.EscapeDN(name) + "," + e.BaseDN
	marker := "cn=" + name + "-all," + ou
	if _, err := c.Search(goldap.NewSearchRequest(marker, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil)); err == nil {
		return ou
	}
	var entries []*goldap.AddRequest
	add := func(dn string, attrs map[string][]string) {
		a := goldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			a.Attribute(k, v)
		}
		entries = append(entries, a)
	}
	add(ou, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {name}})
	// Ten leaf groups; leaf i is in mid i%3; all mids are in -all.
	leaves := make([][]string, 10)
	for i := 0; i < n; i++ {
		uid := fmt.Sprintf("%s-%04d", name, i)
		dn := "uid=" + uid + "," + ou
		add(dn, map[string][]string{
			"objectClass":  {"inetOrgPerson"},
			"uid":          {uid},
			"cn":           {"Bulk User " + uid},
			"sn":           {"User"},
			"mail":         {uid + "@example.test"},
			"userPassword": {e.Password(uid)},
		})
		leaves[i%10] = append(leaves[i%10], dn)
	}
	mids := make([][]string, 3)
	for i, members := range leaves {
		if len(members) == 0 {
			continue
		}
		dn := fmt.Sprintf("cn=%s-leaf-%d,%s", name, i, ou)
		add(dn, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {fmt.Sprintf("%s-leaf-%d", name, i)}, "member": members})
		mids[i%3] = append(mids[i%3], dn)
	}
	var top []string
	for i, members := range mids {
		if len(members) == 0 {
			continue
		}
		dn := fmt.Sprintf("cn=%s-mid-%d,%s", name, i, ou)
		add(dn, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {fmt.Sprintf("%s-mid-%d", name, i)}, "member": members})
		top = append(top, dn)
	}
	add(marker, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {name + "-all"}, "member": top})
	for _, a := range entries {
		if err := c.Add(a); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
			tb.Fatalf("add %s: %v", a.DN, err)
		}
	}
	return ou
}

// loadFixtures adds the fixture entries that are missing, in order, so
// that groups come after their members and memberOf gets filled.
func (e SlapdEnv) loadFixtures() error {
	c, err := e.adminConn()
	if err != nil {
		return err
	}
	defer c.Close()
	type entry struct {
		dn    string
		attrs [][2]string // attribute, value; repeated attributes allowed
	}
	user := func(uid, cn, sn string) entry {
		return entry{e.UserDN(uid), [][2]string{
			{"objectClass", "inetOrgPerson"}, {"uid", uid}, {"cn", cn}, {"sn", sn},
			{"mail", uid + "@example.test"}, {"userPassword", e.Password(uid)},
		}}
	}
	group := func(cn string, members ...string) entry {
		en := entry{e.GroupDN(cn), [][2]string{{"objectClass", "groupOfNames"}, {"cn", cn}}}
		for _, m := range members {
			en.attrs = append(en.attrs, [2]string{"member", m})
		}
		return en
	}
	ou := func(name string) entry {
		return entry{"ou=" + name + "," + e.BaseDN, [][2]string{{"objectClass", "organizationalUnit"}, {"ou", name}}}
	}
	rnd := "R&D (West), EU"
	entries := []entry{
		{e.BaseDN, [][2]string{{"objectClass", "dcObject"}, {"objectClass", "organization"}, {"dc", strings.TrimPrefix(strings.Split(e.BaseDN, ",")[0], "dc=")}, {"o", "Velox test"}}},
		ou("people"), ou("groups"), ou("services"), ou("policies"),
		{"cn=default,ou=policies," + e.BaseDN, [][2]string{
			{"objectClass", "device"}, {"objectClass", "pwdPolicy"}, {"cn", "default"},
			{"pwdAttribute", "userPassword"}, {"pwdLockout", "TRUE"}, {"pwdMaxFailure", "0"},
		}},
		{e.BindDN, [][2]string{{"objectClass", "applicationProcess"}, {"objectClass", "simpleSecurityObject"}, {"cn", "velox"}, {"userPassword", e.BindPassword}}},
		user("alice", "Alice Liddell", "Liddell"),
		user("bob", "Bob Builder", "Builder"),
		user("carol", "Carol Danvers", "Danvers"),
		user("dave", "Dave Locked", "Locked"),
		user("frank", "Frank Loop", "Loop"),
		group("engineering", e.UserDN("alice")),
		group("staff", e.GroupDN("engineering"), e.UserDN("bob")),
		group("managers", e.UserDN("carol")),
		group(rnd, e.UserDN("carol")),
		group("all", e.GroupDN("staff"), e.GroupDN("managers"), e.GroupDN(rnd)),
		group("loop-a", e.UserDN("frank")),
		group("loop-b", e.GroupDN("loop-a")),
	}
	if !e.Locking {
		entries = append(entries[:5], entries[6:]...) // no pwdPolicy schema
	}
	for _, en := range entries {
		a := goldap.NewAddRequest(en.dn, nil)
		vals := map[string][]string{}
		var order []string
		for _, av := range en.attrs {
			if _, ok := vals[av[0]]; !ok {
				order = append(order, av[0])
			}
			vals[av[0]] = append(vals[av[0]], av[1])
		}
		for _, k := range order {
			a.Attribute(k, vals[k])
		}
		if err := c.Add(a); err != nil {
			if goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
				continue
			}
			return fmt.Errorf("add fixture %s: %w", en.dn, err)
		}
	}
	// Close the loop after both ends exist; ignore "already there".
	m := goldap.NewModifyRequest(e.GroupDN("loop-a"), nil)
	m.Add("member", []string{e.GroupDN("loop-b")})
	if err := c.Modify(m); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultAttributeOrValueExists) {
		return fmt.Errorf("close group loop: %w", err)
	}
	if e.Locking {
		// 000001010000Z locks the account until an administrator unlocks it.
		m := goldap.NewModifyRequest(e.UserDN("dave"), nil)
		m.Replace("pwdAccountLockedTime", []string{"000001010000Z"})
		if err := c.Modify(m); err != nil {
			return fmt.Errorf("lock dave: %w", err)
		}
	}
	return nil
}

// dialer bounds connection attempts so a dead server fails fast.
func dialer() *net.Dialer { return &net.Dialer{Timeout: 5 * time.Second} }

// AddUser adds an inetOrgPerson uid under UserBase with password
// Password(uid); it is deleted when tb ends if still there.
func (e SlapdEnv) AddUser(tb testing.TB, uid string) string {
	tb.Helper()
	c := e.AdminConn(tb)
	dn := e.UserDN(uid)
	a := goldap.NewAddRequest(dn, nil)
	a.Attribute("objectClass", []string{"inetOrgPerson"})
	a.Attribute("uid", []string{uid})
	a.Attribute("cn", []string{uid})
	a.Attribute("sn", []string{uid})
	a.Attribute("mail", []string{uid + "@example.test"})
	a.Attribute("userPassword", []string{e.Password(uid)})
	if err := c.Add(a); err != nil {
		tb.Fatalf("add user %s: %v", uid, err)
	}
	tb.Cleanup(func() {
		if c, err := e.adminConn(); err == nil {
			c.Del(goldap.NewDelRequest(dn, nil))
			c.Close()
		}
	})
	return dn
}

// DeleteUser deletes user uid; refint removes it from its groups.
func (e SlapdEnv) DeleteUser(tb testing.TB, uid string) {
	tb.Helper()
	if err := e.AdminConn(tb).Del(goldap.NewDelRequest(e.UserDN(uid), nil)); err != nil {
		tb.Fatalf("delete user %s: %v", uid, err)
	}
}
