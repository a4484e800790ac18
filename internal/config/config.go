// Package config holds Velox's configuration: defaults, loading from a
// YAML file, overrides from environment variables, and validation with
// clear messages.
//
// Every key has an environment variable named after its path:
// storage.local.dir is VELOX_STORAGE_LOCAL_DIR. Precedence, lowest first:
// defaults, the config file, environment variables, command-line flags.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration of "velox serve".
type Config struct {
	// Listen is the address the HTTP server listens on.
	Listen string `yaml:"listen"`
	// Data is the data directory: the SQLite database, local blobs and
	// generated keys live here unless configured elsewhere.
	Data string `yaml:"data"`
	// BaseURL is the public URL users reach Velox at; empty means derived
	// from Listen.
	BaseURL string `yaml:"base_url"`

	Log     Log     `yaml:"log"`
	DB      DB      `yaml:"db"`
	Storage Storage `yaml:"storage"`
	HTTP    HTTP    `yaml:"http"`
	Session Session `yaml:"session"`
	GC      GC      `yaml:"gc"`
	Auth    Auth    `yaml:"auth"`
	Quota   Quota   `yaml:"quota"`
	Uploads Uploads `yaml:"uploads"`

	Encryption Encryption `yaml:"encryption"`
}

// Encryption configures encryption at rest of file contents.
type Encryption struct {
	// Enabled encrypts new blobs. It cannot be turned off once blobs are
	// encrypted: start-up fails instead of serving ciphertext.
	Enabled bool `yaml:"enabled"`
	// MasterKeyFiles hold "id:base64key" lines. With no file and no
	// VELOX_MASTER_KEYS, <data>/master.key is used, and generated on the
	// first start of an installation without encrypted blobs.
	MasterKeyFiles []string `yaml:"master_key_files"`
	// ActiveKeyID names the master key that wraps new data keys; empty
	// means the last key loaded.
	ActiveKeyID string `yaml:"active_key_id"`
	// MasterKeys comes only from the environment variable
	// VELOX_MASTER_KEYS ("id:base64key,..."), never from the file.
	MasterKeys string `yaml:"-"`
}

// GC configures the removal of stored blobs that no metadata references
// (left by crashes between storing a blob and committing it).
type GC struct {
	// Interval between sweeps; 0 disables the background sweep ("velox
	// admin gc" still works).
	Interval time.Duration `yaml:"interval"`
	// Grace is the minimum age of an unreferenced blob before it is
	// removed; it must exceed the longest upload.
	Grace time.Duration `yaml:"grace"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// DB selects the metadata database.
type DB struct {
	Driver string `yaml:"driver"` // sqlite or postgres
	// DSN is a file path for sqlite (default <data>/velox.db) or a
	// connection string for postgres.
	DSN string `yaml:"dsn"`
	// DSNFile reads the DSN from a file, so a password need not be in the
	// config file.
	DSNFile string `yaml:"dsn_file"`
}

// Storage selects where file contents go.
type Storage struct {
	Backend string `yaml:"backend"` // local or swift
	Local   struct {
		Dir string `yaml:"dir"` // default <data>/blobs
	} `yaml:"local"`
	Swift Swift `yaml:"swift"`
}

// Swift configures the OpenStack Swift backend.
type Swift struct {
	AuthURL string `yaml:"auth_url"`
	User    string `yaml:"user"`
	// Key is the password or API key; prefer KeyFile or the environment
	// variable VELOX_STORAGE_SWIFT_KEY to keeping it in this file.
	Key                  string        `yaml:"key"`
	KeyFile              string        `yaml:"key_file"`
	AuthVersion          int           `yaml:"auth_version"`
	Domain               string        `yaml:"domain"`
	Project              string        `yaml:"project"`
	ProjectDomain        string        `yaml:"project_domain"`
	Region               string        `yaml:"region"`
	StorageURL           string        `yaml:"storage_url"`
	ContainerPrefix      string        `yaml:"container_prefix"`
	Shards               int           `yaml:"shards"`
	SegmentSize          int64         `yaml:"segment_size"`
	ManifestSegments     int           `yaml:"manifest_segments"`
	LargeObjectThreshold int64         `yaml:"large_object_threshold"`
	Concurrency          int           `yaml:"concurrency"`
	Timeout              time.Duration `yaml:"timeout"`
	Retries              int           `yaml:"retries"`
	CAFile               string        `yaml:"ca_file"`
}

// SwiftKey returns the Swift key, reading KeyFile if set.
func (c *Config) SwiftKey() (string, error) {
	sw := c.Storage.Swift
	if sw.KeyFile != "" {
		b, err := os.ReadFile(sw.KeyFile)
		if err != nil {
			return "", fmt.Errorf("storage.swift.key_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return sw.Key, nil
}

// Uploads configures resumable upload sessions.
type Uploads struct {
	// SessionTTL is how long an unfinished upload session (and its
	// chunks) is kept.
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// HTTP tunes the server.
type HTTP struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout bounds how long uploads in flight may take to finish
	// when the server stops.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxUploadBytes caps one upload; 0 means no limit.
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// TrustedProxies lists the CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Session configures browser sessions.
type Session struct {
	// KeyFile holds the cookie signing and encryption keys; generated on
	// first start if missing (default <data>/session.key).
	KeyFile string `yaml:"key_file"`
	// Secure sets the Secure flag on cookies: "auto" (when the request
	// came over HTTPS, directly or through a trusted proxy), "always" or
	// "never".
	Secure string `yaml:"secure"`
	// IdleTimeout signs a browser out after this long without requests.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxAge signs a browser out this long after sign-in, whatever it does.
	MaxAge time.Duration `yaml:"max_age"`
}

// Default returns the embedded-default configuration.
func Default() *Config {
	c := &Config{
		Listen: "127.0.0.1:8080",
		Data:   "./velox-data",
		Log:    Log{Level: "info", Format: "text"},
		DB:     DB{Driver: "sqlite"},
		HTTP: HTTP{
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ShutdownTimeout:   60 * time.Second,
		},
		Session: Session{Secure: "auto", IdleTimeout: 24 * time.Hour, MaxAge: 30 * 24 * time.Hour},
		GC:      GC{Interval: time.Hour, Grace: 24 * time.Hour},
		Auth: Auth{Providers: []string{"local"}, LDAP: LDAP{SyncInterval: 15 * time.Minute},
			RateLimit: RateLimit{AccountFailures: 5, IPFailures: 20, MaxBackoff: 15 * time.Minute}},
		Uploads:    Uploads{SessionTTL: 24 * time.Hour},
		Encryption: Encryption{Enabled: true},
	}
	c.Storage.Backend = "local"
	return c
}

// Load builds the configuration from defaults, the file at path (if not
// empty), and environment variables read through getenv.
func Load(path string, getenv func(string) string) (*Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true) // a misspelt key is an error, not a silent default
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(reflect.ValueOf(c).Elem(), "VELOX", getenv); err != nil {
		return nil, err
	}
	c.Encryption.MasterKeys = getenv("VELOX_MASTER_KEYS")
	return c, nil
}

// applyEnv overrides fields from VELOX_<PATH> variables.
func applyEnv(v reflect.Value, prefix string, getenv func(string) string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if key == "" || key == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(key)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			if err := applyEnv(fv, name, getenv); err != nil {
				return err
			}
			continue
		}
		s := getenv(name)
		if s == "" {
			continue
		}
		if err := setValue(fv, s); err != nil {
			return fmt.Errorf("config: environment variable %s=%q: %w", name, s, err)
		}
	}
	return nil
}

func setValue(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Slice:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// Resolve fills in paths derived from the data directory.
func (c *Config) Resolve() {
	if c.DB.DSN == "" && c.DB.Driver == "sqlite" {
		c.DB.DSN = filepath.Join(c.Data, "velox.db")
	}
	if c.Storage.Local.Dir == "" {
		c.Storage.Local.Dir = filepath.Join(c.Data, "blobs")
	}
	if c.Session.KeyFile == "" {
		c.Session.KeyFile = filepath.Join(c.Data, "session.key")
	}
}

// Validate checks the configuration and reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %q is not a host:port address", c.Listen)
	}
	if c.Data == "" {
		bad("data: the data directory must be set")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format: %q is not text or json", c.Log.Format)
	}
	switch c.DB.Driver {
	case "sqlite":
	case "postgres":
		if c.DB.DSN == "" && c.DB.DSNFile == "" {
			bad("db.dsn: a connection string is required for postgres (or set db.dsn_file)")
		}
	default:
		bad("db.driver: %q is not sqlite or postgres", c.DB.Driver)
	}
	switch c.Storage.Backend {
	case "local":
	case "swift":
		sw := c.Storage.Swift
		if sw.AuthURL == "" || sw.User == "" {
			bad("storage.swift: auth_url and user are required for the swift backend")
		}
		if sw.Key == "" && sw.KeyFile == "" {
			bad("storage.swift: set key_file or VELOX_STORAGE_SWIFT_KEY (the key is required)")
		}
		if sw.AuthVersion != 0 && sw.AuthVersion != 1 && sw.AuthVersion != 2 && sw.AuthVersion != 3 {
			bad("storage.swift.auth_version: %d is not 1, 2 or 3", sw.AuthVersion)
		}
	default:
		bad("storage.backend: %q is not a known backend (local or swift)", c.Storage.Backend)
	}
	if c.Uploads.SessionTTL < time.Minute {
		bad("uploads.session_ttl: must be at least 1m")
	}
	switch c.Session.Secure {
	case "auto", "always", "never":
	default:
		bad("session.secure: %q is not auto, always or never", c.Session.Secure)
	}
	if c.Session.IdleTimeout <= 0 || c.Session.MaxAge <= 0 {
		bad("session: idle_timeout and max_age must be positive")
	}
	for _, cidr := range c.HTTP.TrustedProxies {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			if net.ParseIP(cidr) == nil {
				bad("http.trusted_proxies: %q is not an IP address or CIDR", cidr)
			}
		}
	}
	if c.GC.Interval < 0 || c.GC.Grace < time.Minute {
		bad("gc: interval must not be negative and grace must be at least 1m")
	}
	if c.HTTP.MaxUploadBytes < 0 {
		bad("http.max_upload_bytes: must not be negative")
	}
	if !c.Encryption.Enabled && (len(c.Encryption.MasterKeyFiles) > 0 || c.Encryption.MasterKeys != "") {
		bad("encryption: master keys are configured but encryption.enabled is false")
	}
	errs = append(errs, c.validateAuth()...)
	return errors.Join(errs...)
}

// DatabaseDSN returns the DSN, reading DSNFile if set.
func (c *Config) DatabaseDSN() (string, error) {
	if c.DB.DSNFile != "" {
		b, err := os.ReadFile(c.DB.DSNFile)
		if err != nil {
			return "", fmt.Errorf("db.dsn_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return c.DB.DSN, nil
}
