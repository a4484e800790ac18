package dav

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage/local"
)

// env is a DAV server over a real metadata DB and blob store, with users
// alice and bob (passwords "alice-pass", "bob-pass").
type env struct {
	t     *testing.T
	svc   *files.Service
	srv   *httptest.Server
	users map[string]*files.User
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := metadata.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	svc := files.New(db, store, logger)
	e := &env{t: t, svc: svc, users: map[string]*files.User{}}
	for _, name := range []string{"alice", "bob"} {
		u := &metadata.User{Username: name, DisplayName: strings.ToUpper(name[:1]) + name[1:], Email: name + "@example.org"}
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		e.users[name] = u
	}
	auth := func(r *http.Request) *files.User {
		name, pass, ok := r.BasicAuth()
		if !ok || pass != name+"-pass" {
			return nil
		}
		return e.users[name]
	}
	e.srv = httptest.NewServer(New(svc, auth, logger))
	t.Cleanup(e.srv.Close)
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// do sends a request as alice to path (relative to the server) and returns
// the response with its body read.
func (e *env) do(method, path string, body string, hdr ...string) (*http.Response, string) {
	return e.doAs("alice", method, path, body, hdr...)
}

func (e *env) doAs(user, method, path string, body string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, user+"-pass")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

// must checks the status of a response.
func (e *env) must(want int, method, path, body string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	resp, b := e.do(method, path, body, hdr...)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: got status %d, want %d; body: %s", method, path, resp.StatusCode, want, b)
	}
	return resp, b
}

// node resolves a path in alice's space through the file service.
func (e *env) node(path string) (*files.Node, error) {
	ctx := context.Background()
	u := e.users["alice"]
	sv, err := e.svc.PersonalSpace(ctx, u)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.Resolve(ctx, u, sv.ID, path)
}

const aliceRoot = "/remote.php/dav/files/alice"
