package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// PostgresDir holds the Debian PostgreSQL binaries.
var postgresBinDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

var (
	pgOnce sync.Once
	pgDSN  string
	pgErr  error
)

// Postgres returns the DSN of a fresh, empty database for this test. It uses
// the server at VELOX_TEST_POSTGRES_DSN if set, and otherwise starts a
// private server once per test binary (initdb in a temporary directory,
// loopback, a free port).
func Postgres(tb testing.TB) string {
	tb.Helper()
	pgOnce.Do(func() {
		if dsn := os.Getenv("VELOX_TEST_POSTGRES_DSN"); dsn != "" {
			pgDSN = dsn
			return
		}
		pgDSN, pgErr = startPostgres()
	})
	if pgErr != nil {
		Unavailable(tb, "PostgreSQL", pgErr)
	}
	name := "velox_test_" + strings.ToLower(strconv.FormatInt(time.Now().UnixNano(), 36))
	admin, err := sql.Open("pgx", pgDSN)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE DATABASE ` + name + ` TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		Unavailable(tb, "PostgreSQL", fmt.Errorf("create database: %w", err))
	}
	tb.Cleanup(func() {
		admin, err := sql.Open("pgx", pgDSN)
		if err == nil {
			admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
			admin.Close()
		}
	})
	return withDatabase(pgDSN, name)
}

// withDatabase replaces the database of a URL- or keyword-style DSN.
func withDatabase(dsn, db string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		base, query, _ := strings.Cut(dsn, "?")
		i := strings.LastIndex(base, "/")
		if i > len("postgres://") {
			base = base[:i]
		}
		out := base + "/" + db
		if query != "" {
			out += "?" + query
		}
		return out
	}
	return dsn + " dbname=" + db
}

func postgresBin(name string) (string, error) {
	for _, d := range postgresBinDirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// StartPostgres starts a private PostgreSQL server and returns its DSN and
// a stop function. It is used by Postgres and by the velox-testenv command.
func StartPostgres() (dsn string, stop func(), err error) {
	dsn, err = startPostgres()
	return dsn, stopPostgres, err
}

var pgStop func()

func stopPostgres() {
	if pgStop != nil {
		pgStop()
	}
}

func startPostgres() (string, error) {
	initdb, err := postgresBin("initdb")
	if err != nil {
		return "", fmt.Errorf("initdb not found (install the postgresql package): %w", err)
	}
	server, err := postgresBin("postgres")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "velox-pg-")
	if err != nil {
		return "", err
	}
	// PostgreSQL refuses to run as root; run it as the postgres user then.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		pu, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(pu.Uid)
		gid, _ := strconv.Atoi(pu.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "velox", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return "", err
	}
	srv := exec.Command(server, "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	srv.Stdout, srv.Stderr = logf, logf
	srv.Dir = dir
	if err := srv.Start(); err != nil {
		return "", fmt.Errorf("start postgres: %w", err)
	}
	pgStop = func() {
		srv.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
			<-done
		}
		os.RemoveAll(dir)
	}
	OnExit(pgStop)
	dsn := fmt.Sprintf("postgres://velox@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", dsn)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
		}
		if err == nil {
			return dsn, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return "", fmt.Errorf("postgres did not become ready: %v\n%s", err, bytes.TrimSpace(log))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
