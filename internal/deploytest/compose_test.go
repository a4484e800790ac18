package deploytest

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/veloxhq/velox/internal/config"
	"github.com/veloxhq/velox/internal/storage/encrypt"
	"github.com/veloxhq/velox/internal/testenv"
	"github.com/veloxhq/velox/proxy"
)

// compose is the part of docker-compose.yml the tests read. Fields that
// compose allows in two shapes (a list or a map, a string or a map) are
// kept as they come and read through the methods below.
type compose struct {
	root     string
	Services map[string]*service `yaml:"services"`
	Networks map[string]any      `yaml:"networks"`
	Volumes  map[string]any      `yaml:"volumes"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type service struct {
	name        string
	Image       string `yaml:"image"`
	Build       any    `yaml:"build"`
	Entrypoint  any    `yaml:"entrypoint"`
	Command     any    `yaml:"command"`
	Environment any    `yaml:"environment"`
	Secrets     []any  `yaml:"secrets"`
	Volumes     []any  `yaml:"volumes"`
	Ports       []any  `yaml:"ports"`
	Expose      []any  `yaml:"expose"`
	Networks    any    `yaml:"networks"`
	DependsOn   any    `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

func loadCompose(tb testing.TB) *compose {
	tb.Helper()
	root := repoRoot(tb)
	var c compose
	// The x-velox-app anchor is merged into the app services by yaml.v3.
	if err := yaml.Unmarshal([]byte(readFile(tb, filepath.Join(root, "docker-compose.yml"))), &c); err != nil {
		tb.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		tb.Fatal("docker-compose.yml has no services")
	}
	c.root = root
	for name, s := range c.Services {
		s.name = name
	}
	return &c
}

func strs(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return []string{v}
	case []any:
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = fmt.Sprint(x)
		}
		return out
	}
	panic(fmt.Sprintf("unexpected %T", v))
}

// env is the service's environment, from either of compose's forms.
func (s *service) env() map[string]string {
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case map[string]any:
		for k, v := range e {
			out[k] = fmt.Sprint(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			out[k] = v
		}
	}
	return out
}

// command is the entrypoint and command as one string, for searching.
func (s *service) command() string {
	return strings.Join(append(strs(s.Entrypoint), strs(s.Command)...), " ")
}

// build returns the build context and Dockerfile, relative to the compose
// file, or ok=false when the service uses a prebuilt image.
func (s *service) build() (context, dockerfile string, ok bool) {
	switch b := s.Build.(type) {
	case string:
		return b, "Dockerfile", true
	case map[string]any:
		context, _ = b["context"].(string)
		dockerfile, _ = b["dockerfile"].(string)
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		return context, dockerfile, true
	}
	return "", "", false
}

func (s *service) secretNames() []string {
	var out []string
	for _, x := range s.Secrets {
		switch x := x.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			out = append(out, fmt.Sprint(x["source"]))
		}
	}
	return out
}

type mount struct{ source, target string }

func (s *service) mounts() []mount {
	var out []mount
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			out = append(out, mount{parts[0], parts[1]})
		case map[string]any:
			out = append(out, mount{fmt.Sprint(v["source"]), fmt.Sprint(v["target"])})
		}
	}
	return out
}

func (s *service) exposes(port string) bool {
	for _, p := range append(slices.Clone(s.Expose), s.Ports...) {
		ps := fmt.Sprint(p)
		if ps == port || strings.HasSuffix(ps, ":"+port) {
			return true
		}
	}
	return false
}

// dependsOn maps each dependency to its condition.
func (s *service) dependsOn() map[string]string {
	out := map[string]string{}
	switch d := s.DependsOn.(type) {
	case []any:
		for _, x := range d {
			out[fmt.Sprint(x)] = "service_started"
		}
	case map[string]any:
		for k, v := range d {
			cond := "service_started"
			if m, ok := v.(map[string]any); ok && m["condition"] != nil {
				cond = fmt.Sprint(m["condition"])
			}
			out[k] = cond
		}
	}
	return out
}

func (s *service) networkNames() []string {
	switch n := s.Networks.(type) {
	case []any:
		return strs(n)
	case map[string]any:
		var out []string
		for k := range n {
			out = append(out, k)
		}
		return out
	}
	return nil
}

func (s *service) ipv4() string {
	if n, ok := s.Networks.(map[string]any); ok {
		for _, v := range n {
			if m, ok := v.(map[string]any); ok && m["ipv4_address"] != nil {
				return fmt.Sprint(m["ipv4_address"])
			}
		}
	}
	return ""
}

// appServices are the velox serve nodes: they are configured through
// VELOX_* variables.
func (c *compose) appServices(tb testing.TB) []*service {
	tb.Helper()
	var out []*service
	for _, name := range sortedKeys(c.Services) {
		if _, ok := c.Services[name].env()["VELOX_DB_DRIVER"]; ok {
			out = append(out, c.Services[name])
		}
	}
	if len(out) < 2 {
		tb.Fatalf("docker-compose.yml has %d app services (VELOX_DB_DRIVER set), want at least 2", len(out))
	}
	return out
}

// proxyService runs velox proxy.
func (c *compose) proxyService(tb testing.TB) *service {
	tb.Helper()
	for _, name := range sortedKeys(c.Services) {
		if s := c.Services[name]; regexp.MustCompile(`\bvelox proxy --config\b|^proxy --config`).MatchString(s.command()) {
			return s
		}
	}
	tb.Fatal("docker-compose.yml: no service runs velox proxy --config")
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// secretFile maps a path inside a service's container to the file in the
// repository compose puts there: a secret (/run/secrets/NAME, which the
// service must list) or a bind mount.
func (c *compose) secretFile(tb testing.TB, s *service, path string) string {
	tb.Helper()
	if name, ok := strings.CutPrefix(path, "/run/secrets/"); ok {
		if !slices.Contains(s.secretNames(), name) {
			tb.Fatalf("service %s: %s, but the service does not list the secret %s", s.name, path, name)
		}
		sec, ok := c.Secrets[name]
		if !ok || sec.File == "" {
			tb.Fatalf("secret %s is not declared with a file", name)
		}
		return filepath.Join(c.root, sec.File)
	}
	for _, m := range s.mounts() {
		if m.target == path && (strings.HasPrefix(m.source, "./") || strings.HasPrefix(m.source, "/")) {
			return filepath.Join(c.root, m.source)
		}
	}
	tb.Fatalf("service %s: nothing puts %s into the container", s.name, path)
	return ""
}

// service returns the compose service a URL or DSN host names, checking
// that it listens on the port.
func (c *compose) serviceAt(tb testing.TB, from, hostport string) *service {
	tb.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		tb.Fatalf("%s: %q: %v", from, hostport, err)
	}
	s, ok := c.Services[host]
	if !ok {
		tb.Fatalf("%s: host %q is not a compose service", from, host)
	}
	if !s.exposes(port) {
		tb.Errorf("%s: service %s does not expose port %s", from, host, port)
	}
	return s
}

// dockerfileCopies lists COPY sources and destinations (build-stage copies
// with --from are left out).
func dockerfileCopies(tb testing.TB, path string) (srcs []string, dests []string) {
	tb.Helper()
	for _, line := range strings.Split(readFile(tb, path), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (!strings.EqualFold(f[0], "COPY") && !strings.EqualFold(f[0], "ADD")) {
			continue
		}
		args := f[1:]
		from := false
		for len(args) > 0 && strings.HasPrefix(args[0], "--") {
			from = from || strings.HasPrefix(args[0], "--from")
			args = args[1:]
		}
		if from || len(args) < 2 {
			continue
		}
		srcs = append(srcs, args[:len(args)-1]...)
		dest := args[len(args)-1]
		for _, s := range args[:len(args)-1] {
			if strings.HasSuffix(dest, "/") {
				dests = append(dests, dest+filepath.Base(s))
			} else {
				dests = append(dests, dest)
			}
		}
	}
	return srcs, dests
}

// Everything compose builds from or mounts exists in the repository, and
// nothing it needs is left out of the build context.
func TestComposeFilesExist(t *testing.T) {
	c := loadCompose(t)
	ignored := strings.Fields(readFile(t, filepath.Join(c.root, ".dockerignore")))
	built := map[string]bool{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if ctx, df, ok := s.build(); ok {
			built[s.Image] = true
			ctxDir := filepath.Join(c.root, ctx)
			dfPath := filepath.Join(ctxDir, df)
			if _, err := os.Stat(dfPath); err != nil {
				t.Errorf("service %s: Dockerfile: %v", name, err)
				continue
			}
			srcs, _ := dockerfileCopies(t, dfPath)
			for _, src := range srcs {
				if _, err := os.Stat(filepath.Join(ctxDir, src)); err != nil {
					t.Errorf("service %s: %s copies %s: %v", name, df, src, err)
				}
				for _, ig := range ignored {
					if !strings.HasPrefix(ig, "#") && src != "." && (src == ig || strings.HasPrefix(src, ig+"/")) {
						t.Errorf("service %s: %s copies %s, which .dockerignore leaves out", name, df, src)
					}
				}
			}
		}
		for _, m := range s.mounts() {
			if strings.HasPrefix(m.source, "./") || strings.HasPrefix(m.source, "/") {
				if _, err := os.Stat(filepath.Join(c.root, m.source)); err != nil {
					t.Errorf("service %s: bind mount %s: %v", name, m.source, err)
				}
			} else if _, ok := c.Volumes[m.source]; !ok {
				t.Errorf("service %s: volume %s is not declared under volumes", name, m.source)
			}
		}
		for _, sec := range s.secretNames() {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("service %s: secret %s is not declared under secrets", name, sec)
			}
		}
		for _, n := range s.networkNames() {
			if _, ok := c.Networks[n]; !ok {
				t.Errorf("service %s: network %s is not declared under networks", name, n)
			}
		}
	}
	for name, s := range c.Services {
		// Images of this project cannot be pulled: some service builds them.
		if strings.HasPrefix(s.Image, "velox") && !built[s.Image] {
			t.Errorf("service %s: image %s is built by no service", name, s.Image)
		}
	}
	for name, sec := range c.Secrets {
		if _, err := os.Stat(filepath.Join(c.root, sec.File)); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
		// Secrets must not be baked into an image.
		if !slices.ContainsFunc(ignored, func(ig string) bool { return strings.HasPrefix(strings.TrimPrefix(sec.File, "./"), ig+"/") }) {
			t.Errorf("secret %s: %s is not excluded by .dockerignore", name, sec.File)
		}
	}
}

// Every service has a health check, and services wait for what they talk
// to: each app node for the database, Swift and the directory it is
// configured with.
func TestComposeHealthAndOrder(t *testing.T) {
	c := loadCompose(t)
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 {
			t.Errorf("service %s has no health check", name)
		} else if ctx, df, ok := s.build(); ok && s.Healthcheck.Test[0] == "CMD" {
			// The probe must be in the image: copied in, or busybox's wget.
			_, dests := dockerfileCopies(t, filepath.Join(c.root, ctx, df))
			if bin := s.Healthcheck.Test[1]; !slices.Contains(dests, bin) && bin != "wget" {
				t.Errorf("service %s: health check runs %s, which its Dockerfile does not install", name, bin)
			}
		}
		for dep, cond := range s.dependsOn() {
			d, ok := c.Services[dep]
			if !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
				continue
			}
			if cond == "service_healthy" && d.Healthcheck == nil {
				t.Errorf("service %s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
	}
	for _, app := range c.appServices(t) {
		cfg := composeAppConfig(t, c, app)
		dsn, err := url.Parse(strings.TrimSpace(readFile(t, c.secretFile(t, app, cfg.DB.DSNFile))))
		if err != nil {
			t.Fatal(err)
		}
		swiftURL, _ := url.Parse(cfg.Storage.Swift.AuthURL)
		ldapURL, _ := url.Parse(cfg.Auth.LDAP.URLs[0])
		for _, host := range []string{dsn.Hostname(), swiftURL.Hostname(), ldapURL.Hostname()} {
			if cond := app.dependsOn()[host]; cond != "service_healthy" {
				t.Errorf("service %s talks to %s but does not wait for it to be healthy (depends_on condition %q)", app.name, host, cond)
			}
		}
	}
}

// composeAppConfig is the configuration an app service starts with: its
// environment through Velox's own loader, validated as velox serve does.
func composeAppConfig(tb testing.TB, c *compose, s *service) *config.Config {
	tb.Helper()
	env := s.env()
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		tb.Fatalf("service %s: %v", s.name, err)
	}
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("service %s: invalid configuration:\n%v", s.name, err)
	}
	return cfg
}

// The app services' environment is a valid configuration whose secret
// files exist and hold what the other services were given.
func TestComposeAppConfig(t *testing.T) {
	c := loadCompose(t)
	px := c.proxyService(t)
	for _, app := range c.appServices(t) {
		cfg := composeAppConfig(t, c, app)
		if cfg.DB.Driver != "postgres" || cfg.Storage.Backend != "swift" || !cfg.Auth.UsesLDAP() {
			t.Errorf("service %s: db %s, storage %s, ldap %v; want postgres, swift, ldap", app.name, cfg.DB.Driver, cfg.Storage.Backend, cfg.Auth.UsesLDAP())
		}
		if _, port, _ := net.SplitHostPort(cfg.Listen); !app.exposes(port) {
			t.Errorf("service %s listens on %s but does not expose that port", app.name, cfg.Listen)
		}

		// Encryption and sessions: keys every app node shares.
		if len(cfg.Encryption.MasterKeyFiles) == 0 {
			t.Errorf("service %s: no master key file (each node would generate its own)", app.name)
		}
		for _, f := range cfg.Encryption.MasterKeyFiles {
			if _, err := encrypt.LoadMasterKeyFile(c.secretFile(t, app, f)); err != nil {
				t.Errorf("service %s: %v", app.name, err)
			}
		}
		if cfg.Session.KeyFile == filepath.Join(cfg.Data, "session.key") {
			t.Errorf("service %s: session key in the data directory; app nodes must share one", app.name)
		} else if k, err := hex.DecodeString(strings.TrimSpace(readFile(t, c.secretFile(t, app, cfg.Session.KeyFile)))); err != nil || len(k) != 64 {
			t.Errorf("service %s: session key file: want 128 hex digits", app.name)
		}

		// PostgreSQL: the DSN's host, user, database and password are the
		// postgres service's.
		dsn, err := url.Parse(strings.TrimSpace(readFile(t, c.secretFile(t, app, cfg.DB.DSNFile))))
		if err != nil {
			t.Fatalf("service %s: DSN: %v", app.name, err)
		}
		db := c.serviceAt(t, app.name+" db DSN", dsn.Host)
		denv := db.env()
		pw, _ := dsn.User.Password()
		if want := strings.TrimSpace(readFile(t, c.secretFile(t, db, denv["POSTGRES_PASSWORD_FILE"]))); pw != want {
			t.Errorf("service %s: the DSN's password is not the one %s is given", app.name, db.name)
		}
		if dsn.User.Username() != denv["POSTGRES_USER"] || strings.TrimPrefix(dsn.Path, "/") != denv["POSTGRES_DB"] {
			t.Errorf("service %s: DSN user/database %s/%s, %s creates %s/%s", app.name, dsn.User.Username(), dsn.Path, db.name, denv["POSTGRES_USER"], denv["POSTGRES_DB"])
		}

		// Swift: the tempauth user and key of the swift service.
		au, err := url.Parse(cfg.Storage.Swift.AuthURL)
		if err != nil {
			t.Fatal(err)
		}
		sw := c.serviceAt(t, app.name+" storage.swift.auth_url", au.Host)
		senv := sw.env()
		if senv["SWIFT_USER"] != cfg.Storage.Swift.User {
			t.Errorf("service %s: Swift user %q, %s has %q", app.name, cfg.Storage.Swift.User, sw.name, senv["SWIFT_USER"])
		}
		if a, b := readFile(t, c.secretFile(t, app, cfg.Storage.Swift.KeyFile)), readFile(t, c.secretFile(t, sw, senv["SWIFT_KEY_FILE"])); strings.TrimSpace(a) != strings.TrimSpace(b) {
			t.Errorf("service %s: Swift key differs from %s's", app.name, sw.name)
		}

		// LDAP: the service account and base of the seeded directory.
		lu, err := url.Parse(cfg.Auth.LDAP.URLs[0])
		if err != nil {
			t.Fatal(err)
		}
		ld := c.serviceAt(t, app.name+" auth.ldap.urls", lu.Host)
		lenv := ld.env()
		if a, b := readFile(t, c.secretFile(t, app, cfg.Auth.LDAP.BindPasswordFile)), readFile(t, c.secretFile(t, ld, lenv["LDAP_SERVICE_PASSWORD_FILE"])); strings.TrimSpace(a) != strings.TrimSpace(b) {
			t.Errorf("service %s: LDAP bind password differs from %s's service account", app.name, ld.name)
		}
		seed := readFile(t, filepath.Join(c.root, "deploy/openldap/seed.ldif"))
		if !strings.Contains(seed, "\ndn: "+cfg.Auth.LDAP.BindDN+"\n") {
			t.Errorf("service %s: bind DN %s is not in deploy/openldap/seed.ldif", app.name, cfg.Auth.LDAP.BindDN)
		}
		if !strings.Contains(readFile(t, filepath.Join(c.root, "deploy/openldap/config.ldif")), "\nolcSuffix: "+cfg.Auth.LDAP.BaseDN+"\n") {
			t.Errorf("service %s: base DN %s is not the directory's suffix (deploy/openldap/config.ldif)", app.name, cfg.Auth.LDAP.BaseDN)
		}

		// Forwarded headers are believed from the proxy, and only from it.
		if ip := px.ipv4(); ip == "" || !slices.Contains(cfg.HTTP.TrustedProxies, ip) {
			t.Errorf("service %s: http.trusted_proxies %v does not hold the proxy's fixed address %q", app.name, cfg.HTTP.TrustedProxies, ip)
		}
	}
}

// The proxy's config file (configs/proxy.compose.yaml) loads with the
// proxy's own loader, and its pools name the compose services.
func TestComposeProxyConfig(t *testing.T) {
	c := loadCompose(t)
	px := c.proxyService(t)
	m := regexp.MustCompile(`--config (\S+)`).FindStringSubmatch(px.command())
	path := c.secretFile(t, px, m[1])

	// The certificate files are made by "velox proxy dev-cert --out DIR"
	// in the proxy's command, in a volume: stand-ins take their place.
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, path)), &doc); err != nil {
		t.Fatal(err)
	}
	out := regexp.MustCompile(`dev-cert --out (\S+)`).FindStringSubmatch(px.command())
	if out == nil {
		t.Fatal("the proxy service does not make its certificate (velox proxy dev-cert --out DIR)")
	}
	tmp := t.TempDir()
	certs := doc["tls"].(map[string]any)["certificates"].([]any)
	for _, ce := range certs {
		ce := ce.(map[string]any)
		for _, k := range []string{"cert", "key"} {
			p := fmt.Sprint(ce[k])
			if filepath.Dir(p) != out[1] || !slices.Contains([]string{"cert.pem", "key.pem"}, filepath.Base(p)) {
				t.Errorf("proxy config: tls %s %s is not a file dev-cert writes to %s", k, p, out[1])
			}
			stand := filepath.Join(tmp, filepath.Base(p))
			os.WriteFile(stand, nil, 0o600)
			ce[k] = stand
		}
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tmpConf := filepath.Join(tmp, "proxy.yaml")
	os.WriteFile(tmpConf, b, 0o600)
	cfg, err := proxy.LoadConfig(tmpConf)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}

	var appTargets []string
	for _, app := range c.appServices(t) {
		appCfg := composeAppConfig(t, c, app)
		_, port, _ := net.SplitHostPort(appCfg.Listen)
		appTargets = append(appTargets, "http://"+net.JoinHostPort(app.name, port))
	}
	for name, pool := range cfg.Upstreams {
		for _, target := range pool.Targets {
			u, _ := url.Parse(target)
			c.serviceAt(t, "proxy upstream "+name, u.Host)
		}
		if name == "app" && !slices.Equal(slices.Sorted(slices.Values(pool.Targets)), appTargets) {
			t.Errorf("proxy pool app: targets %v, want every app service %v", pool.Targets, appTargets)
		}
	}
	for _, l := range []string{cfg.Listen, cfg.HTTPListen} {
		if _, port, _ := net.SplitHostPort(l); !slices.ContainsFunc(px.Ports, func(p any) bool { return strings.HasSuffix(fmt.Sprint(p), ":"+port) }) {
			t.Errorf("proxy listens on %s but compose does not publish that port", l)
		}
	}
	if _, port, _ := net.SplitHostPort(cfg.AdminListen); !strings.Contains(strings.Join(px.Healthcheck.Test, " "), ":"+port+"/") {
		t.Errorf("proxy health check %v does not ask the admin listener %s", px.Healthcheck.Test, cfg.AdminListen)
	}
}

// docker-compose (v1, Debian's package) checks the file against the
// compose schema without a container engine.
func TestComposeSchema(t *testing.T) {
	bin := tool(t, "docker-compose", "docker-compose")
	root := repoRoot(t)
	cmd := exec.Command(bin, "-f", filepath.Join(root, "docker-compose.yml"), "config", "-q")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }
