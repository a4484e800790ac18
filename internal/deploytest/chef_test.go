package deploytest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/veloxhq/velox/internal/config"
	"github.com/veloxhq/velox/internal/storage/encrypt"
	"github.com/veloxhq/velox/internal/testenv"
	"github.com/veloxhq/velox/proxy"
)

// Every Ruby file of the cookbooks (and the test's Chef stand-in) parses.
func TestChefRubySyntax(t *testing.T) {
	ruby := tool(t, "ruby", "ruby")
	root := repoRoot(t)
	files := []string{filepath.Join(root, "internal/deploytest/testdata/chefstub.rb")}
	filepath.WalkDir(filepath.Join(root, "chef"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".rb") {
			files = append(files, p)
		}
		return err
	})
	if len(files) < 10 {
		t.Fatalf("found only %d Ruby files under chef/", len(files))
	}
	for _, f := range files {
		if out, err := exec.Command(ruby, "-c", f).CombinedOutput(); err != nil {
			t.Errorf("ruby -c %s: %v\n%s", f, err, out)
		}
	}
}

// chefRun is what the stand-in for chef-solo produced for one run list.
type chefRun struct {
	name      string
	root      string // rendered files, under their absolute paths
	resources []chefResource
}

type chefResource struct {
	Type  string         `json:"type"`
	Name  any            `json:"name"`
	ID    string         `json:"id"`
	Props map[string]any `json:"props"`
}

func (r *chefRun) file(path string) string { return filepath.Join(r.root, path) }

func (r *chefRun) resource(typ, name string) *chefResource {
	for i := range r.resources {
		if res := &r.resources[i]; res.Type == typ && fmt.Sprint(res.Name) == name {
			return res
		}
	}
	return nil
}

// runChef runs the cookbooks with the stand-in (testdata/chefstub.rb):
// role and environment files from chef/, data bags from testdata, and
// node attributes as chef-solo's -j file would give them.
func runChef(t *testing.T, name string, role, env string, runList []string, nodeAttrs map[string]any) *chefRun {
	t.Helper()
	ruby := tool(t, "ruby", "ruby")
	root := repoRoot(t)
	out := t.TempDir()
	args := []string{filepath.Join(root, "internal/deploytest/testdata/chefstub.rb"),
		"--cookbooks", filepath.Join(root, "chef/cookbooks"), "--out", out,
		"--data-bags", filepath.Join(root, "internal/deploytest/testdata/data_bags")}
	if role != "" {
		args = append(args, "--role", filepath.Join(root, "chef/roles", role+".json"))
	}
	if env != "" {
		args = append(args, "--environment", filepath.Join(root, "chef/environments", env+".json"))
	}
	if len(runList) > 0 {
		args = append(args, "--run-list", strings.Join(runList, ","))
	}
	if nodeAttrs != nil {
		b, _ := json.Marshal(nodeAttrs)
		p := filepath.Join(t.TempDir(), "node.json")
		os.WriteFile(p, b, 0o600)
		args = append(args, "--node", p)
	}
	if o, err := exec.Command(ruby, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: chef run failed: %v\n%s", name, err, o)
	}
	run := &chefRun{name: name, root: filepath.Join(out, "root")}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(out, "resources.json"))), &run.resources); err != nil {
		t.Fatal(err)
	}
	return run
}

// A file resource holding a secret: owned by the service's user, mode 0600.
func checkSecretFile(t *testing.T, run *chefRun, path, user string) {
	t.Helper()
	r := run.resource("file", path)
	if r == nil {
		t.Errorf("%s: nothing writes %s", run.name, path)
		return
	}
	if r.Props["mode"] != "0600" || r.Props["owner"] != user || r.Props["sensitive"] != true {
		t.Errorf("%s: %s: mode %v owner %v sensitive %v, want 0600, %s, true", run.name, path, r.Props["mode"], r.Props["owner"], r.Props["sensitive"], user)
	}
}

// checkVeloxYAML loads a rendered velox.yaml with Velox's loader, as
// velox serve would, and checks the files it names.
func checkVeloxYAML(t *testing.T, run *chefRun, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(run.file(path), func(string) string { return "" })
	if err != nil {
		t.Fatalf("%s: %v", run.name, err)
	}
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: %s is invalid:\n%v\n%s", run.name, path, err, readFile(t, run.file(path)))
	}
	user := "velox"
	for _, f := range append(slices.Clone(cfg.Encryption.MasterKeyFiles), cfg.Session.KeyFile, cfg.DB.DSNFile, cfg.Storage.Swift.KeyFile, cfg.Auth.LDAP.BindPasswordFile) {
		if f != "" {
			checkSecretFile(t, run, f, user)
		}
	}
	if len(cfg.Encryption.MasterKeyFiles) == 0 {
		t.Errorf("%s: no master key files: each node would generate its own", run.name)
	}
	for _, f := range cfg.Encryption.MasterKeyFiles {
		if _, err := encrypt.LoadMasterKeyFile(run.file(f)); err != nil {
			t.Errorf("%s: %v", run.name, err)
		}
	}
	if k, err := hex.DecodeString(strings.TrimSpace(readFile(t, run.file(cfg.Session.KeyFile)))); err != nil || len(k) != 64 {
		t.Errorf("%s: session key: want 128 hex digits", run.name)
	}
	if cfg.DB.DSNFile != "" {
		if _, err := url.Parse(strings.TrimSpace(readFile(t, run.file(cfg.DB.DSNFile)))); err != nil {
			t.Errorf("%s: db.dsn_file: %v", run.name, err)
		}
	}
	if d := run.resource("directory", cfg.Data); d == nil || d.Props["owner"] != user || d.Props["mode"] != "0700" {
		t.Errorf("%s: data directory %s is not made (owner %s, mode 0700)", run.name, cfg.Data, user)
	}
	return cfg
}

// checkProxyYAML loads a rendered proxy.yaml with the proxy's loader.
// Certificates made by "velox proxy dev-cert" at converge time get
// stand-ins; those from the data bag were rendered.
func checkProxyYAML(t *testing.T, run *chefRun, path string) *proxy.Config {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, run.file(path))), &doc); err != nil {
		t.Fatalf("%s: %s: %v", run.name, path, err)
	}
	devCert := run.resource("execute", "velox-proxy-dev-cert")
	tmp := t.TempDir()
	for _, ce := range doc["tls"].(map[string]any)["certificates"].([]any) {
		ce := ce.(map[string]any)
		for _, k := range []string{"cert", "key"} {
			p := fmt.Sprint(ce[k])
			if _, err := os.Stat(run.file(p)); err == nil {
				ce[k] = run.file(p)
				continue
			}
			if devCert == nil || !strings.Contains(fmt.Sprint(devCert.Props["command"]), "dev-cert --out "+filepath.Dir(p)+" ") {
				t.Errorf("%s: certificate file %s is made by nothing", run.name, p)
			}
			ce[k] = filepath.Join(tmp, filepath.Base(p))
			os.WriteFile(ce[k].(string), nil, 0o600)
		}
	}
	b, _ := yaml.Marshal(doc)
	p := filepath.Join(tmp, "proxy.yaml")
	os.WriteFile(p, b, 0o600)
	cfg, err := proxy.LoadConfig(p)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", run.name, path, err, readFile(t, run.file(path)))
	}
	if r := run.resource("template", path); r == nil || !strings.HasPrefix(fmt.Sprint(r.Props["verify"]), "/usr/local/bin/velox proxy check --config ") {
		t.Errorf("%s: %s is not checked with velox proxy check before it is installed", run.name, path)
	}
	return cfg
}

// checkUnit checks a rendered systemd unit runs the installed binary as
// the service user, and waits long enough for a graceful stop.
func checkUnit(t *testing.T, run *chefRun, path, subcommand string, shutdown time.Duration) {
	t.Helper()
	u := parseINI(t, run.file(path))
	svc := u["Service"]
	exec := strings.Fields(svc["ExecStart"])
	if len(exec) < 2 || run.resource("remote_file", exec[0]) == nil || exec[1] != subcommand {
		t.Errorf("%s: %s: ExecStart %q does not run the installed binary's %s", run.name, path, svc["ExecStart"], subcommand)
	}
	if run.resource("user", svc["User"]) == nil {
		t.Errorf("%s: %s: User=%s is not created", run.name, path, svc["User"])
	}
	if stop, err := strconv.Atoi(svc["TimeoutStopSec"]); err != nil || time.Duration(stop)*time.Second <= shutdown {
		t.Errorf("%s: %s: TimeoutStopSec=%s does not exceed the shutdown timeout %v", run.name, path, svc["TimeoutStopSec"], shutdown)
	}
	if u["Install"]["WantedBy"] != "multi-user.target" {
		t.Errorf("%s: %s: not wanted by multi-user.target", run.name, path)
	}
}

// swiftEntryPoints lists the egg:swift#NAME entry points of the installed
// Swift (Debian's python3-swift).
func swiftEntryPoints(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob("/usr/lib/python3/dist-packages/swift-*.egg-info/entry_points.txt")
	if len(files) == 0 {
		testenv.Unavailable(t, "Swift's entry points (Debian package swift)", fmt.Errorf("no swift-*.egg-info under /usr/lib/python3/dist-packages"))
	}
	eps := map[string]bool{}
	section := ""
	for _, line := range strings.Split(readFile(t, files[0]), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
		} else if k, _, ok := strings.Cut(line, "="); ok && strings.HasPrefix(section, "[paste.") {
			eps[strings.TrimSpace(k)] = true
		}
	}
	return eps
}

// checkSwiftConf checks a paste.deploy config: every pipeline element is
// defined, and every egg:swift# name exists in the installed Swift.
func checkSwiftConf(t *testing.T, run *chefRun, path string, eps map[string]bool) ini {
	t.Helper()
	c := parseINI(t, run.file(path))
	pipeline := strings.Fields(c["pipeline:main"]["pipeline"])
	if len(pipeline) == 0 {
		t.Errorf("%s: %s has no pipeline", run.name, path)
	}
	for i, el := range pipeline {
		kind := "filter:"
		if i == len(pipeline)-1 {
			kind = "app:"
		}
		if c[kind+el] == nil {
			t.Errorf("%s: %s: pipeline element %s has no [%s%s] section", run.name, path, el, kind, el)
		}
	}
	for name, sec := range c {
		if use, ok := sec["use"]; ok {
			ep, found := strings.CutPrefix(use, "egg:swift#")
			if !found || !eps[ep] {
				t.Errorf("%s: %s: [%s] use = %s is not an entry point of the installed Swift", run.name, path, name, use)
			}
		}
	}
	if _, err := strconv.Atoi(c["DEFAULT"]["bind_port"]); err != nil {
		t.Errorf("%s: %s: bind_port %q", run.name, path, c["DEFAULT"]["bind_port"])
	}
	return c
}

// buildRings runs the rendered velox-swift-rings on the rendered spec, for
// real, in a temporary swift_dir.
func buildRings(t *testing.T, run *chefRun) {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import swift.common.ring").Run(); err != nil {
		testenv.Unavailable(t, "Debian's python3 with the swift module (package swift)", err)
	}
	script, spec := run.file("/usr/local/bin/velox-swift-rings"), run.file("/etc/swift/rings.json")
	dir := t.TempDir()
	if out, err := exec.Command(py, script, spec, dir).CombinedOutput(); err != nil {
		t.Fatalf("%s: velox-swift-rings: %v\n%s", run.name, err, out)
	}
	var s struct {
		Replicas int                         `json:"replicas"`
		Rings    map[string][]map[string]any `json:"rings"`
	}
	json.Unmarshal([]byte(readFile(t, spec)), &s)
	// Swift itself loads the rings: replicas and devices as in the spec.
	out, err := exec.Command(py, "-c", `import sys
from swift.common.ring import Ring
for name in ("account", "container", "object"):
    r = Ring(sys.argv[1], ring_name=name)
    print(name, int(r.replica_count), len([d for d in r.devs if d]))`, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: loading the rings: %v\n%s", run.name, err, out)
	}
	var want []string
	for _, ring := range []string{"account", "container", "object"} {
		want = append(want, fmt.Sprintf("%s %d %d", ring, s.Replicas, len(s.Rings[ring])))
	}
	if got := strings.Join(strings.Fields(string(out)), " "); got != strings.Join(strings.Fields(strings.Join(want, " ")), " ") {
		t.Errorf("%s: rings (name, replicas, devices): %s, want %s", run.name, out, strings.Join(want, "; "))
	}
	// Unchanged spec: the recipe's only_if guard says there is nothing to do.
	err = exec.Command(py, script, "--check", spec, dir).Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("%s: velox-swift-rings --check after a build: %v, want exit status 1 (nothing to do)", run.name, err)
	}
}

func duration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The example roles, converged with the example environment: every file
// they render is what the software it configures accepts, and the nodes
// agree with each other.
func TestChefRoles(t *testing.T) {
	eps := swiftEntryPoints(t)
	runs := map[string]*chefRun{}
	for _, role := range []string{"velox-app", "velox-proxy", "swift-proxy", "swift-storage", "swift-ring-builder"} {
		runs[role] = runChef(t, "role "+role, role, "example", nil, nil)
	}

	app := checkVeloxYAML(t, runs["velox-app"], "/etc/velox/velox.yaml")
	checkUnit(t, runs["velox-app"], "/etc/systemd/system/velox.service", "serve", app.HTTP.ShutdownTimeout)

	px := checkProxyYAML(t, runs["velox-proxy"], "/etc/velox/proxy.yaml")
	checkUnit(t, runs["velox-proxy"], "/etc/systemd/system/velox-proxy.service", "proxy", px.ShutdownTimeout)
	if len(px.Upstreams["swift"].Targets) == 0 || !slices.ContainsFunc(px.Routes, func(r proxy.RouteSpec) bool { return r.Upstream == "swift" }) {
		t.Errorf("velox-proxy: no Swift pool or route for temp URLs")
	}

	sp := checkSwiftConf(t, runs["swift-proxy"], "/etc/swift/proxy-server.conf", eps)
	// The app's Swift account is a tempauth user of the Swift proxies, with
	// the app's key.
	acct, user, _ := strings.Cut(app.Storage.Swift.User, ":")
	line := sp["filter:tempauth"]["user_"+acct+"_"+user]
	key := strings.TrimSpace(readFile(t, runs["velox-app"].file(app.Storage.Swift.KeyFile)))
	if f := strings.Fields(line); len(f) < 2 || f[0] != key || !slices.Contains(f[1:], ".admin") {
		t.Errorf("swift-proxy: tempauth user %s is %q, want the app's key and .admin", app.Storage.Swift.User, line)
	}
	au, _ := url.Parse(app.Storage.Swift.AuthURL)
	if au.Port() != sp["DEFAULT"]["bind_port"] {
		t.Errorf("velox-app: Swift auth URL port %s, the Swift proxies listen on %s", au.Port(), sp["DEFAULT"]["bind_port"])
	}
	for _, target := range px.Upstreams["swift"].Targets {
		if u, _ := url.Parse(target); u.Port() != sp["DEFAULT"]["bind_port"] {
			t.Errorf("velox-proxy: Swift target %s, the Swift proxies listen on %s", target, sp["DEFAULT"]["bind_port"])
		}
	}
	for _, target := range px.Upstreams["app"].Targets {
		u, _ := url.Parse(target)
		if _, port, _ := net.SplitHostPort(app.Listen); u.Port() != port {
			t.Errorf("velox-proxy: app target %s, the app nodes listen on %s", target, app.Listen)
		}
	}

	var spec struct {
		Rings map[string][]struct {
			Port int `json:"port"`
		} `json:"rings"`
	}
	json.Unmarshal([]byte(readFile(t, runs["swift-ring-builder"].file("/etc/swift/rings.json"))), &spec)
	for _, srv := range []string{"account", "container", "object"} {
		c := checkSwiftConf(t, runs["swift-storage"], "/etc/swift/"+srv+"-server.conf", eps)
		for _, d := range spec.Rings[srv] {
			if strconv.Itoa(d.Port) != c["DEFAULT"]["bind_port"] {
				t.Errorf("the %s ring points at port %d, the %s servers listen on %s", srv, d.Port, srv, c["DEFAULT"]["bind_port"])
			}
		}
		if runs["swift-storage"].resource("service", "swift-"+srv) == nil {
			t.Errorf("swift-storage: service swift-%s is not managed", srv)
		}
	}
	rsync := parseINI(t, runs["swift-storage"].file("/etc/rsyncd.conf"))
	devicesDir := parseINI(t, runs["swift-storage"].file("/etc/swift/object-server.conf"))["DEFAULT"]["devices"]
	for _, m := range []string{"account", "container", "object"} {
		if rsync[m]["path"] != devicesDir || rsync[m]["read only"] != "false" {
			t.Errorf("swift-storage: rsync module %s: %v, want path %s, writable", m, rsync[m], devicesDir)
		}
	}
	for role, run := range runs {
		if strings.HasPrefix(role, "swift-") {
			h := parseINI(t, run.file("/etc/swift/swift.conf"))["swift-hash"]
			if h["swift_hash_path_prefix"] == "" || h["swift_hash_path_suffix"] == "" {
				t.Errorf("%s: swift.conf has no hash path secret", role)
			}
		}
	}
	buildRings(t, runs["swift-ring-builder"])
}

// The cookbooks' default attributes, with only the secrets (the test data
// bags) and the binary's URL given, render valid configurations too.
func TestChefDefaults(t *testing.T) {
	eps := swiftEntryPoints(t)
	url := map[string]any{"velox": map[string]any{"install": map[string]any{"url": "file:///srv/velox/velox"}}}

	run := runChef(t, "velox::app defaults", "", "", []string{"recipe[velox::app]"}, url)
	app := checkVeloxYAML(t, run, "/etc/velox/velox.yaml")
	checkUnit(t, run, "/etc/systemd/system/velox.service", "serve", app.HTTP.ShutdownTimeout)

	run = runChef(t, "velox::proxy defaults", "", "", []string{"recipe[velox::proxy]"}, url)
	px := checkProxyYAML(t, run, "/etc/velox/proxy.yaml")
	checkUnit(t, run, "/etc/systemd/system/velox-proxy.service", "proxy", px.ShutdownTimeout)
	if _, ok := px.Upstreams["swift"]; ok {
		t.Errorf("velox::proxy defaults: a Swift pool without targets was rendered")
	}

	run = runChef(t, "velox_swift::storage defaults", "", "", []string{"recipe[velox_swift::storage]"}, nil)
	for _, srv := range []string{"account", "container", "object"} {
		c := checkSwiftConf(t, run, "/etc/swift/"+srv+"-server.conf", eps)
		if c["DEFAULT"]["mount_check"] != "true" {
			t.Errorf("velox_swift::storage defaults: mount_check is %q, want true", c["DEFAULT"]["mount_check"])
		}
	}
	run = runChef(t, "velox_swift::proxy defaults", "", "", []string{"recipe[velox_swift::proxy]"}, nil)
	checkSwiftConf(t, run, "/etc/swift/proxy-server.conf", eps)

	keystone := map[string]any{"velox_swift": map[string]any{"proxy": map[string]any{"auth": "keystone"}}}
	run = runChef(t, "velox_swift::proxy keystone", "", "", []string{"recipe[velox_swift::proxy]"}, keystone)
	c := checkSwiftConf(t, run, "/etc/swift/proxy-server.conf", eps)
	if !regexp.MustCompile(`\bauthtoken keystoneauth\b`).MatchString(c["pipeline:main"]["pipeline"]) || c["filter:tempauth"] != nil {
		t.Errorf("keystone: pipeline %q", c["pipeline:main"]["pipeline"])
	}
	if c["filter:authtoken"]["paste.filter_factory"] != "keystonemiddleware.auth_token:filter_factory" || c["filter:authtoken"]["password"] == "" {
		t.Errorf("keystone: [filter:authtoken] %v", c["filter:authtoken"])
	}
	if !slices.ContainsFunc(run.resources, func(r chefResource) bool {
		return r.ID == "package[swift-proxy, memcached, python3-keystonemiddleware]"
	}) {
		t.Errorf("keystone: python3-keystonemiddleware is not installed")
	}
}
