package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/veloxhq/velox/auth/local"
	"github.com/veloxhq/velox/internal/config"
	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/encrypt"
	localstore "github.com/veloxhq/velox/internal/storage/local"
	"github.com/veloxhq/velox/internal/storage/swift"
	"github.com/veloxhq/velox/server"
)

// configFlags registers the flags every command that opens the data
// shares, and returns a function that loads the configuration with them.
func configFlags(fs *flag.FlagSet, getenv func(string) string) func() (*config.Config, error) {
	path := fs.String("config", getenv("VELOX_CONFIG"), "config file (YAML); env VELOX_CONFIG")
	data := fs.String("data", "", "data directory (default ./velox-data); env VELOX_DATA")
	listen := fs.String("listen", "", "listen address (default 127.0.0.1:8080); env VELOX_LISTEN")
	driver := fs.String("db-driver", "", "metadata database: sqlite or postgres; env VELOX_DB_DRIVER")
	dsn := fs.String("db-dsn", "", "database file or PostgreSQL connection string; env VELOX_DB_DSN")
	backend := fs.String("storage", "", "blob storage backend: local or swift; env VELOX_STORAGE_BACKEND")
	level := fs.String("log-level", "", "debug, info, warn or error; env VELOX_LOG_LEVEL")
	format := fs.String("log-format", "", "text or json; env VELOX_LOG_FORMAT")
	return func() (*config.Config, error) {
		c, err := config.Load(*path, getenv)
		if err != nil {
			return nil, err
		}
		// Flags win over the file and the environment.
		set := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		set(&c.Data, *data)
		set(&c.Listen, *listen)
		set(&c.DB.Driver, *driver)
		set(&c.DB.DSN, *dsn)
		set(&c.Storage.Backend, *backend)
		set(&c.Log.Level, *level)
		set(&c.Log.Format, *format)
		c.Resolve()
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("invalid configuration:\n%w", err)
		}
		return c, nil
	}
}

func newLogger(c *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// app is everything "velox serve" and "velox admin" open.
type app struct {
	cfg   *config.Config
	db    *metadata.DB
	blobs storage.Store
	// masterKey is set to the ID of a master key generated on this start.
	masterKey string
	ring      *encrypt.Keyring
}

func openApp(ctx context.Context, c *config.Config, logger *slog.Logger) (*app, error) {
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	dsn, err := c.DatabaseDSN()
	if err != nil {
		return nil, err
	}
	db, err := metadata.Open(ctx, c.DB.Driver, dsn)
	if err != nil {
		return nil, err
	}
	var blobs storage.Store
	switch c.Storage.Backend {
	case "local":
		blobs, err = localstore.New(c.Storage.Local.Dir)
	case "swift":
		blobs, err = openSwift(ctx, c)
	default:
		err = fmt.Errorf("unknown storage backend %q", c.Storage.Backend)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	a := &app{cfg: c, db: db, blobs: blobs}
	if err := a.encrypt(ctx, logger); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

// encrypt wraps a.blobs in the encrypting store, loading master keys from
// the configured files and VELOX_MASTER_KEYS, or from <data>/master.key,
// which it generates for an installation without encrypted blobs. It
// fails rather than start with keys that cannot read what is stored.
func (a *app) encrypt(ctx context.Context, logger *slog.Logger) error {
	ec := a.cfg.Encryption
	samples, err := a.db.MasterKeySamples(ctx)
	if err != nil {
		return fmt.Errorf("encryption: %w", err)
	}
	if !ec.Enabled {
		if len(samples) > 0 {
			return errors.New("encryption: encryption.enabled is false but stored blobs are encrypted; enable it and configure their master keys")
		}
		return nil
	}
	var keys []encrypt.MasterKey
	for _, f := range ec.MasterKeyFiles {
		ks, err := encrypt.LoadMasterKeyFile(f)
		if err != nil {
			return fmt.Errorf("encryption: %w", err)
		}
		keys = append(keys, ks...)
	}
	if ec.MasterKeys != "" {
		ks, err := encrypt.ParseMasterKeys(ec.MasterKeys)
		if err != nil {
			return fmt.Errorf("encryption: VELOX_MASTER_KEYS: %w", err)
		}
		keys = append(keys, ks...)
	}
	if len(keys) == 0 {
		path := filepath.Join(a.cfg.Data, "master.key")
		ks, err := encrypt.LoadMasterKeyFile(path)
		switch {
		case err == nil:
			keys = ks
		case errors.Is(err, fs.ErrNotExist) && len(samples) == 0:
			k, err := encrypt.GenerateMasterKeyFile(path, time.Now())
			if err != nil {
				return fmt.Errorf("encryption: %w", err)
			}
			keys = []encrypt.MasterKey{k}
			a.masterKey = k.ID
			if logger != nil {
				logger.Warn("generated a master key for encryption at rest; back it up apart from the database", "file", path, "key_id", k.ID)
			}
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("encryption: stored blobs are encrypted but no master key is configured and %s is missing", path)
		default:
			return fmt.Errorf("encryption: %w", err)
		}
	}
	ring, err := encrypt.NewKeyring(keys, ec.ActiveKeyID)
	if err != nil {
		return fmt.Errorf("encryption: %w", err)
	}
	if err := encrypt.CheckKeys(ctx, a.db, ring); err != nil {
		return fmt.Errorf("encryption: %w", err)
	}
	a.ring = ring
	a.blobs = encrypt.New(a.blobs, a.db, ring, logger)
	return nil
}

func (a *app) Close() error { return a.db.Close() }

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("velox serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	load := configFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	a, err := openApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()

	adminPassword, err := bootstrapAdmin(ctx, a.db, getenv("VELOX_ADMIN_PASSWORD"))
	if err != nil {
		return err
	}
	keys, err := sessionKeys(cfg.Session.KeyFile)
	if err != nil {
		return err
	}
	var proxies []netip.Prefix
	for _, p := range cfg.HTTP.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, _ := netip.ParseAddr(p)
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		proxies = append(proxies, pfx)
	}
	stopping := make(chan struct{})
	svc := files.New(a.db, a.blobs, logger)
	svc.UploadTTL = cfg.Uploads.SessionTTL
	svc.DefaultQuota = cfg.Quota.PersonalDefault
	ids, dir, err := newIdentity(cfg, a.db, logger)
	if err != nil {
		return err
	}
	if dir != nil {
		defer dir.Close()
	}
	srv := &server.Server{Files: svc, DB: a.db, Blobs: a.blobs, Auth: ids.Auth, Identity: ids, Logger: logger, Stopping: stopping,
		Opts: server.Options{MaxUploadBytes: cfg.HTTP.MaxUploadBytes, CookieSecure: cfg.Session.Secure, TrustedProxies: proxies,
			SessionIdle: cfg.Session.IdleTimeout, SessionMaxAge: cfg.Session.MaxAge, SessionKeys: keys}}
	wireExtras(srv, svc, logger)
	srv.Init()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	url := cfg.BaseURL
	if url == "" {
		url = "http://" + displayAddr(ln.Addr().String())
	}
	fmt.Fprintf(stdout, "Velox is running at %s\n", url)
	if adminPassword != "" {
		fmt.Fprintf(stdout, "Sign in as \"admin\" with password: %s\n(shown once; change it with 'velox admin user passwd admin')\n", adminPassword)
	}
	// Start-up work (the admin's password hash, migrations, key checks)
	// leaves garbage behind; hand it back before going idle.
	debug.FreeOSMemory()
	logger.Info("velox started", "url", url, "data", cfg.Data, "db", cfg.DB.Driver, "storage", cfg.Storage.Backend)

	if cfg.GC.Interval > 0 {
		host, _ := os.Hostname()
		go svc.RunGC(ctx, host+"/"+randomPassword(), cfg.GC.Interval, cfg.GC.Grace)
	}
	if dir != nil && cfg.Auth.LDAP.SyncInterval > 0 {
		host, _ := os.Hostname()
		go ids.RunSync(ctx, host+"/"+randomPassword(), cfg.Auth.LDAP.SyncInterval)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Stop accepting, let requests in flight (uploads) finish, bounded.
	logger.Info("shutting down; waiting for requests in flight", "timeout", cfg.HTTP.ShutdownTimeout)
	close(stopping)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// bootstrapAdmin creates the administrator on first start (no users yet)
// and returns the password to show, or "" if nothing was created or the
// password came from the environment.
func bootstrapAdmin(ctx context.Context, db *metadata.DB, fromEnv string) (string, error) {
	n, err := db.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	password := fromEnv
	if password == "" {
		password = randomPassword()
	}
	hash, err := local.HashPassword(password)
	if err != nil {
		return "", err
	}
	if err := db.CreateUser(ctx, &metadata.User{Username: "admin", DisplayName: "Administrator", PasswordHash: hash, IsAdmin: true}); err != nil {
		return "", fmt.Errorf("create admin: %w", err)
	}
	if fromEnv != "" {
		return "", nil
	}
	return password, nil
}

func randomPassword() string {
	b := make([]byte, 15)
	rand.Read(b)
	return strings.NewReplacer("-", "x", "_", "y").Replace(base64.RawURLEncoding.EncodeToString(b))
}

// sessionKeys reads the cookie keys, creating the file (mode 0600) with
// fresh random keys on first start.
func sessionKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := make([]byte, 64)
		rand.Read(k)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("session key file: %w", err)
		}
		return [][]byte{k[:32], k[32:]}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session key file: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 64 {
		return nil, fmt.Errorf("session key file %s: want 128 hex characters", path)
	}
	return [][]byte{k[:32], k[32:]}, nil
}

// waitTimeout is how long subcommands wait for the database.
const waitTimeout = 30 * time.Second

func openSwift(ctx context.Context, c *config.Config) (storage.Store, error) {
	key, err := c.SwiftKey()
	if err != nil {
		return nil, err
	}
	sw := c.Storage.Swift
	return swift.New(ctx, swift.Config{AuthURL: sw.AuthURL, User: sw.User, Key: key, AuthVersion: sw.AuthVersion,
		Domain: sw.Domain, Project: sw.Project, ProjectDomain: sw.ProjectDomain, Region: sw.Region, StorageURL: sw.StorageURL,
		ContainerPrefix: sw.ContainerPrefix, Shards: sw.Shards, SegmentSize: sw.SegmentSize, ManifestSegments: sw.ManifestSegments,
		LargeObjectThreshold: sw.LargeObjectThreshold, Concurrency: sw.Concurrency, Timeout: sw.Timeout, Retries: sw.Retries,
		CACertFile: sw.CAFile})
}
