package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSampleConfigIsValidAndComplete(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "velox.yaml")
	c, err := Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	c.Resolve()
	if err := c.Validate(); err != nil {
		t.Fatalf("sample config invalid: %v", err)
	}
	if len(c.HTTP.TrustedProxies) == 0 {
		c.HTTP.TrustedProxies = nil
	}
	if !reflect.DeepEqual(c.HTTP, Default().HTTP) || c.Listen != Default().Listen {
		t.Errorf("sample config values differ from the defaults it documents")
	}
	sample, _ := os.ReadFile(path)
	for _, key := range keys(reflect.TypeOf(Config{}), "") {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(sample), leaf+":") {
			t.Errorf("configs/velox.yaml does not document %s", key)
		}
	}
}

func keys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		k := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if k == "" || k == "-" { // "-": set from the environment only
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, keys(f.Type, prefix+k+".")...)
			continue
		}
		out = append(out, prefix+k)
	}
	return out
}

func TestPrecedenceAndErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "v.yaml")
	os.WriteFile(file, []byte("listen: 0.0.0.0:9000\nstorage:\n  local:\n    dir: /srv/blobs\nhttp:\n  idle_timeout: 5m\n"), 0o600)
	env := map[string]string{"VELOX_LISTEN": "127.0.0.1:9100", "VELOX_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1",
		"VELOX_SESSION_IDLE_TIMEOUT": "1h"}
	c, err := Load(file, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9100" || c.Storage.Local.Dir != "/srv/blobs" || c.HTTP.IdleTimeout != 5*time.Minute ||
		c.Session.IdleTimeout != time.Hour || len(c.HTTP.TrustedProxies) != 2 {
		t.Fatalf("loaded %+v", c)
	}

	os.WriteFile(file, []byte("listn: x\n"), 0o600)
	if _, err := Load(file, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "field listn not found") {
		t.Fatalf("unknown key error = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), func(string) string { return "" }); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, err := Load("", func(k string) string {
		if k == "VELOX_HTTP_IDLE_TIMEOUT" {
			return "soon"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "VELOX_HTTP_IDLE_TIMEOUT") {
		t.Fatalf("bad env error = %v", err)
	}

	bad := Default()
	bad.Listen, bad.DB.Driver, bad.Storage.Backend, bad.Log.Level = "nowhere", "oracle", "tape", "loud"
	bad.HTTP.TrustedProxies = []string{"not-an-ip"}
	err = bad.Validate()
	for _, want := range []string{`listen: "nowhere"`, `db.driver: "oracle"`, `storage.backend: "tape"`, `log.level: "loud"`, `trusted_proxies: "not-an-ip"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to mention %s", err, want)
		}
	}
}
