package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/veloxhq/velox/auth/local"
	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage"
	localstore "github.com/veloxhq/velox/internal/storage/local"
	"github.com/veloxhq/velox/server"
)

type harness struct {
	t     *testing.T
	srv   *server.Server
	ts    *httptest.Server
	db    *metadata.DB
	blobs storage.Store
	root  string // alice's root folder
	space string
}

const alicePass = "alice-password"

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	db, err := metadata.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := localstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob"} {
		hash, _ := local.HashPassword(name + "-password")
		if err := db.CreateUser(ctx, &metadata.User{Username: name, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.DiscardHandler)
	srv := &server.Server{Files: files.New(db, blobs, logger), DB: db, Blobs: blobs, Auth: local.New(db), Logger: logger}
	srv.Init()
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	h := &harness{t: t, srv: srv, ts: ts, db: db, blobs: blobs}
	alice, _ := db.UserByName(ctx, "alice")
	sp, _ := db.PersonalSpace(ctx, alice.ID)
	h.root, h.space = sp.RootID, sp.ID
	return h
}

// do sends a request as alice (HTTP Basic) and returns the response with
// its body read.
func (h *harness) do(method, path string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	h.t.Helper()
	return h.doAs("alice", alicePass, method, path, body, hdr...)
}

func (h *harness) doAs(user, pass, method, path string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("bad JSON %q: %v", b, err)
	}
	return v
}

type nodeJSON struct {
	ID, Name, Kind, ETag, SHA256, Path, ParentID string
	Size                                         int64
}

func (n *nodeJSON) UnmarshalJSON(b []byte) error {
	var m struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		ETag     string `json:"etag"`
		SHA256   string `json:"sha256"`
		Path     string `json:"path"`
		ParentID string `json:"parent_id"`
		Size     int64  `json:"size"`
	}
	err := json.Unmarshal(b, &m)
	*n = nodeJSON{m.ID, m.Name, m.Kind, m.ETag, m.SHA256, m.Path, m.ParentID, m.Size}
	return err
}

type apiError struct {
	Error struct{ Code, Message string }
}

// wantError checks status and the JSON error code.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q", ct)
	}
	e := decode[apiError](t, body)
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %q with a message", e.Error, code)
	}
}

func (h *harness) upload(parent, name, content string) nodeJSON {
	h.t.Helper()
	resp, b := h.do("POST", "/api/v1/nodes/"+parent+"/files?name="+url.QueryEscape(name), strings.NewReader(content))
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("upload %q: %d %s", name, resp.StatusCode, b)
	}
	return decode[nodeJSON](h.t, b)
}

func TestUploadDownloadConditionalAndRanges(t *testing.T) {
	h := newHarness(t)
	content := strings.Repeat("0123456789", 1000)
	n := h.upload(h.root, "digits.txt", content)
	sum := sha256.Sum256([]byte(content))
	if n.Size != int64(len(content)) || n.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("uploaded node %+v", n)
	}
	resp, b := h.do("GET", "/api/v1/nodes/"+n.ID+"/content", nil)
	if resp.StatusCode != 200 || string(b) != content {
		t.Fatalf("download %d, %d bytes", resp.StatusCode, len(b))
	}
	etag := resp.Header.Get("ETag")
	lm := resp.Header.Get("Last-Modified")
	if etag != `"`+n.ETag+`"` {
		t.Fatalf("ETag %q, want %q", etag, n.ETag)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
		t.Errorf("Content-Disposition %q", cd)
	}
	resp, _ = h.do("GET", "/api/v1/nodes/"+n.ID+"/content", nil, "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	resp, _ = h.do("GET", "/api/v1/nodes/"+n.ID+"/content", nil, "If-Modified-Since", lm)
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-Modified-Since: %d", resp.StatusCode)
	}
	resp, b = h.do("GET", "/api/v1/nodes/"+n.ID+"/content", nil, "Range", "bytes=9995-10004")
	if resp.StatusCode != http.StatusPartialContent || string(b) != "56789" {
		t.Fatalf("range: %d %q", resp.StatusCode, b)
	}
	resp, b = h.do("GET", "/api/v1/nodes/"+n.ID+"/content", nil, "Range", "bytes=1-3,5-6")
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Fatalf("multi-range: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, _ = h.do("GET", "/api/v1/nodes/"+n.ID+"/content", nil, "Range", "bytes=20000-")
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range beyond the end: %d, want 416", resp.StatusCode)
	}

	// New version with If-Match: stale ETag → 412, current → 200.
	resp, b = h.do("PUT", "/api/v1/nodes/"+n.ID+"/content", strings.NewReader("v2"), "If-Match", `"stale"`)
	wantError(t, resp, b, http.StatusPreconditionFailed, "precondition_failed")
	resp, b = h.do("PUT", "/api/v1/nodes/"+n.ID+"/content", strings.NewReader("v2"), "If-Match", etag)
	if resp.StatusCode != 200 {
		t.Fatalf("overwrite: %d %s", resp.StatusCode, b)
	}
	resp, b = h.do("GET", "/api/v1/nodes/"+n.ID+"/versions", nil)
	vs := decode[struct {
		Items []struct {
			ID      string
			Current bool
			Size    int64
		}
	}](t, b)
	if len(vs.Items) != 2 || !vs.Items[0].Current || vs.Items[1].Size != int64(len(content)) {
		t.Fatalf("versions %+v", vs)
	}
	resp, b = h.do("GET", "/api/v1/nodes/"+n.ID+"/versions/"+vs.Items[1].ID+"/content", nil, "Range", "bytes=0-3")
	if resp.StatusCode != 206 || string(b) != "0123" {
		t.Fatalf("old version range: %d %q", resp.StatusCode, b)
	}
	resp, b = h.do("POST", "/api/v1/nodes/"+n.ID+"/versions/"+vs.Items[1].ID+"/restore", nil)
	if resp.StatusCode != 200 || decode[nodeJSON](t, b).Size != int64(len(content)) {
		t.Fatalf("restore version: %d %s", resp.StatusCode, b)
	}

	// Zero bytes.
	z := h.upload(h.root, "empty.bin", "")
	resp, b = h.do("GET", "/api/v1/nodes/"+z.ID+"/content", nil)
	if resp.StatusCode != 200 || len(b) != 0 || resp.Header.Get("Content-Length") != "0" {
		t.Fatalf("empty download: %d len=%d", resp.StatusCode, len(b))
	}
}

func TestMultipartUpload(t *testing.T) {
	h := newHarness(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("note", "ignored")
	for _, name := range []string{"a.txt", "b.txt"} {
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write([]byte("content of " + name))
	}
	mw.Close()
	resp, b := h.do("POST", "/api/v1/nodes/"+h.root+"/files", &buf, "Content-Type", mw.FormDataContentType())
	if resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	got := decode[struct{ Items []nodeJSON }](t, b)
	if len(got.Items) != 2 || got.Items[1].Name != "b.txt" || got.Items[1].Size != int64(len("content of b.txt")) {
		t.Fatalf("items %+v", got.Items)
	}
}

func TestErrorsAreJSONWithStableCodes(t *testing.T) {
	h := newHarness(t)
	f := h.upload(h.root, "a.txt", "x")
	dir := decode[nodeJSON](t, mustDo(h, 201, "POST", "/api/v1/nodes/"+h.root+"/children", `{"name":"dir"}`))
	sub := decode[nodeJSON](t, mustDo(h, 201, "POST", "/api/v1/nodes/"+dir.ID+"/children", `{"name":"sub"}`))
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown node", "GET", "/api/v1/nodes/nope", "", 404, "not_found"},
		{"unknown endpoint", "GET", "/api/v1/nothing", "", 404, "not_found"},
		{"wrong method", "PUT", "/api/v1/spaces", "", 405, "method_not_allowed"},
		{"duplicate name", "POST", "/api/v1/nodes/" + h.root + "/files?name=a.txt", "y", 409, "conflict"},
		{"case clash", "POST", "/api/v1/nodes/" + h.root + "/children", `{"name":"DIR"}`, 409, "conflict"},
		{"empty name", "POST", "/api/v1/nodes/" + h.root + "/children", `{"name":""}`, 400, "invalid_name"},
		{"dot-dot name", "POST", "/api/v1/nodes/" + h.root + "/children", `{"name":".."}`, 400, "invalid_name"},
		{"slash in name", "POST", "/api/v1/nodes/" + h.root + "/files?name=a%2Fb", "y", 400, "invalid_name"},
		{"NUL in name", "POST", "/api/v1/nodes/" + h.root + "/files?name=a%00b", "y", 400, "invalid_name"},
		{"invalid UTF-8", "POST", "/api/v1/nodes/" + h.root + "/files?name=%ff%fe", "y", 400, "invalid_name"},
		{"name too long", "POST", "/api/v1/nodes/" + h.root + "/files?name=" + strings.Repeat("n", 256), "y", 400, "invalid_name"},
		{"traversal", "GET", "/api/v1/spaces/" + h.space + "/resolve?path=../../etc/passwd", "", 400, "invalid_name"},
		{"encoded traversal", "GET", "/api/v1/spaces/" + h.space + "/resolve?path=%2e%2e/x", "", 400, "invalid_name"},
		{"backslash traversal", "GET", "/api/v1/spaces/" + h.space + "/resolve?path=..%5C..%5Cx", "", 400, "invalid_name"},
		{"absolute path outside", "GET", "/api/v1/spaces/" + h.space + "/resolve?path=/etc/passwd", "", 404, "not_found"},
		{"move into own subtree", "PATCH", "/api/v1/nodes/" + dir.ID, `{"parent_id":"` + sub.ID + `"}`, 409, "conflict"},
		{"rename onto existing", "PATCH", "/api/v1/nodes/" + dir.ID, `{"name":"a.txt"}`, 409, "conflict"},
		{"unknown JSON field", "PATCH", "/api/v1/nodes/" + dir.ID, `{"nmae":"x"}`, 400, "invalid_request"},
		{"bad JSON", "POST", "/api/v1/nodes/" + h.root + "/children", `{`, 400, "invalid_request"},
		{"folder download", "GET", "/api/v1/nodes/" + dir.ID + "/content", "", 400, "invalid_request"},
		{"list a file", "GET", "/api/v1/nodes/" + f.ID + "/children", "", 400, "invalid_request"},
		{"bad cursor", "GET", "/api/v1/nodes/" + h.root + "/children?cursor=zzz", "", 400, "invalid_request"},
		{"bad limit", "GET", "/api/v1/nodes/" + h.root + "/children?limit=5000", "", 400, "invalid_request"},
		{"bad sort", "GET", "/api/v1/nodes/" + h.root + "/children?sort=color", "", 400, "invalid_request"},
		{"bad conflict", "POST", "/api/v1/nodes/" + h.root + "/files?name=z&conflict=maybe", "y", 400, "invalid_request"},
		{"bad checksum", "POST", "/api/v1/nodes/" + h.root + "/files?name=z&sha256=" + strings.Repeat("0", 64), "y", 400, "invalid_request"},
		{"missing name", "POST", "/api/v1/nodes/" + h.root + "/files", "y", 400, "invalid_request"},
		{"root delete", "DELETE", "/api/v1/nodes/" + h.root, "", 400, "invalid_request"},
	}
	for _, tc := range cases {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		resp, b := h.do(tc.method, tc.path, body)
		t.Run(tc.name, func(t *testing.T) { wantError(t, resp, b, tc.status, tc.code) })
	}
	// Nothing was created by the rejected requests.
	resp, b := h.do("GET", "/api/v1/nodes/"+h.root+"/children", nil)
	if items := decode[struct{ Items []nodeJSON }](t, b).Items; resp.StatusCode != 200 || len(items) != 2 {
		t.Fatalf("root holds %d items after bad requests, want 2", len(items))
	}
}

func mustDo(h *harness, status int, method, path, body string) []byte {
	h.t.Helper()
	resp, b := h.do(method, path, strings.NewReader(body))
	if resp.StatusCode != status {
		h.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

func TestTrashFlow(t *testing.T) {
	h := newHarness(t)
	f := h.upload(h.root, "doc.txt", "hello")
	mustDo(h, 204, "DELETE", "/api/v1/nodes/"+f.ID, "")
	resp, b := h.do("GET", "/api/v1/nodes/"+f.ID+"/content", nil)
	wantError(t, resp, b, 404, "not_found")
	trash := decode[struct{ Items []nodeJSON }](t, mustDo(h, 200, "GET", "/api/v1/spaces/"+h.space+"/trash", ""))
	if len(trash.Items) != 1 || trash.Items[0].ID != f.ID {
		t.Fatalf("trash %+v", trash)
	}
	h.upload(h.root, "doc.txt", "new one")
	resp, b = h.do("POST", "/api/v1/trash/"+f.ID+"/restore", nil)
	wantError(t, resp, b, 409, "conflict")
	r := decode[nodeJSON](t, mustDo(h, 200, "POST", "/api/v1/trash/"+f.ID+"/restore", `{"name":"doc (restored).txt"}`))
	if r.Name != "doc (restored).txt" {
		t.Fatalf("restored as %q", r.Name)
	}
	mustDo(h, 204, "DELETE", "/api/v1/nodes/"+f.ID, "")
	mustDo(h, 204, "DELETE", "/api/v1/trash/"+f.ID, "")
	resp, b = h.do("POST", "/api/v1/trash/"+f.ID+"/restore", nil)
	wantError(t, resp, b, 404, "not_found")
}

func TestPaginationOverHTTP(t *testing.T) {
	h := newHarness(t)
	dir := decode[nodeJSON](t, mustDo(h, 201, "POST", "/api/v1/spaces/"+h.space+"/folders", `{"path":"/a/b/many"}`))
	for i := 0; i < 25; i++ {
		h.upload(dir.ID, fmt.Sprintf("f%02d", i), strings.Repeat("x", i))
	}
	var names []string
	next := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		u := "/api/v1/nodes/" + dir.ID + "/children?limit=10&sort=size&order=desc"
		if next != "" {
			u += "&cursor=" + next
		}
		page := decode[struct {
			Items      []nodeJSON
			NextCursor *string `json:"next_cursor"`
		}](t, mustDo(h, 200, "GET", u, ""))
		for _, it := range page.Items {
			names = append(names, it.Name)
		}
		if page.NextCursor == nil {
			break
		}
		next = *page.NextCursor
	}
	if len(names) != 25 || names[0] != "f24" || names[24] != "f00" {
		t.Fatalf("names %v", names)
	}
	got := decode[nodeJSON](t, mustDo(h, 200, "GET", "/api/v1/spaces/"+h.space+"/resolve?path=/a/b/many/f07", ""))
	if got.Path != "/a/b/many/f07" || got.Size != 7 {
		t.Fatalf("resolve %+v", got)
	}
	res := decode[struct{ Items []nodeJSON }](t, mustDo(h, 200, "GET", "/api/v1/spaces/"+h.space+"/search?q=F1", ""))
	if len(res.Items) != 10 {
		t.Fatalf("search found %d", len(res.Items))
	}
}

func TestOtherUserGets404(t *testing.T) {
	h := newHarness(t)
	f := h.upload(h.root, "private.txt", "secret")
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/nodes/" + f.ID, ""},
		{"GET", "/api/v1/nodes/" + f.ID + "/content", ""},
		{"PUT", "/api/v1/nodes/" + f.ID + "/content", "x"},
		{"PATCH", "/api/v1/nodes/" + f.ID, `{"name":"y"}`},
		{"DELETE", "/api/v1/nodes/" + f.ID, ""},
		{"GET", "/api/v1/nodes/" + h.root + "/children", ""},
		{"POST", "/api/v1/nodes/" + h.root + "/files?name=x", "x"},
		{"GET", "/api/v1/spaces/" + h.space, ""},
		{"GET", "/api/v1/spaces/" + h.space + "/trash", ""},
		{"GET", "/api/v1/spaces/" + h.space + "/search?q=p", ""},
	} {
		resp, b := h.doAs("bob", "bob-password", tc.method, tc.path, strings.NewReader(tc.body))
		wantError(t, resp, b, 404, "not_found")
	}
	resp, b := h.doAs("", "", "GET", "/api/v1/nodes/"+f.ID, nil)
	wantError(t, resp, b, 401, "unauthorized")
	resp, b = h.doAs("alice", "wrong", "GET", "/api/v1/nodes/"+f.ID, nil)
	wantError(t, resp, b, 401, "unauthorized")
}

func TestSessionCookieAndCSRF(t *testing.T) {
	h := newHarness(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	post := func(path, body string, hdr ...string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", h.ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	resp, b := post("/api/v1/auth/login", `{"username":"alice","password":"nope"}`)
	wantError(t, resp, b, 401, "unauthorized")
	resp, b = post("/api/v1/auth/login", `{"username":"alice","password":"`+alicePass+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("login %d %s", resp.StatusCode, b)
	}
	var ck *http.Cookie
	for _, cookie := range resp.Cookies() {
		if cookie.Name == "velox_session" {
			ck = cookie
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie %+v: want HttpOnly and SameSite=Lax", ck)
	}
	me := decode[struct {
		User      struct{ Username string }
		CSRFToken string `json:"csrf_token"`
	}](t, b)
	if me.User.Username != "alice" || me.CSRFToken == "" {
		t.Fatalf("login response %s", b)
	}
	// Cookie-authenticated writes need the CSRF token.
	resp, b = post("/api/v1/nodes/"+h.root+"/children", `{"name":"x"}`)
	wantError(t, resp, b, 403, "csrf_failed")
	resp, b = post("/api/v1/nodes/"+h.root+"/children", `{"name":"x"}`, "X-CSRF-Token", me.CSRFToken)
	if resp.StatusCode != 201 {
		t.Fatalf("with token: %d %s", resp.StatusCode, b)
	}
	// Logging in again rotates the session: the old cookie is dead.
	oldCookie := ck.Value
	post("/api/v1/auth/login", `{"username":"alice","password":"`+alicePass+`"}`)
	req, _ := http.NewRequest("GET", h.ts.URL+"/api/v1/me", nil)
	req.AddCookie(&http.Cookie{Name: "velox_session", Value: oldCookie})
	r2, _ := http.DefaultClient.Do(req)
	r2.Body.Close()
	if r2.StatusCode != 401 {
		t.Fatalf("old session still valid after re-login: %d", r2.StatusCode)
	}
	// Logout revokes at once.
	resp, b = post("/api/v1/auth/logout", "", "X-CSRF-Token", currentCSRF(t, c, h))
	if resp.StatusCode != 204 {
		t.Fatalf("logout %d %s", resp.StatusCode, b)
	}
	r3, _ := c.Get(h.ts.URL + "/api/v1/me")
	r3.Body.Close()
	if r3.StatusCode != 401 {
		t.Fatalf("after logout /me = %d", r3.StatusCode)
	}
}

func currentCSRF(t *testing.T, c *http.Client, h *harness) string {
	resp, err := c.Get(h.ts.URL + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&me)
	return me.CSRFToken
}

// A client that disconnects half-way through an upload leaves nothing
// visible and no version.
func TestUploadCutOffMidStream(t *testing.T) {
	h := newHarness(t)
	conn, err := net.Dial("tcp", h.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf("POST /api/v1/nodes/%s/files?name=cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Length: 1000000\r\n\r\n",
		h.root, basic("alice", alicePass))
	conn.Write([]byte(req))
	conn.Write(bytes.Repeat([]byte("x"), 300000))
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	// Wait until the server has given up on the request.
	deadline := time.Now().Add(10 * time.Second)
	for files.UploadsInFlight() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	resp, b := h.do("GET", "/api/v1/spaces/"+h.space+"/resolve?path=/cut.bin", nil)
	wantError(t, resp, b, 404, "not_found")
	n := 0
	h.blobs.(storage.Lister).List(context.Background(), func(storage.Info) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d blobs stored for a cut-off upload", n)
	}
}

func basic(u, p string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(u, p)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestConcurrentConditionalOverwrites(t *testing.T) {
	h := newHarness(t)
	f := h.upload(h.root, "c.txt", "v1")
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := h.do("PUT", "/api/v1/nodes/"+f.ID+"/content", strings.NewReader(fmt.Sprint("writer ", i)), "If-Match", `"`+f.ETag+`"`)
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case 200:
			won++
		case 412:
		default:
			t.Fatalf("status %d", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won, want 1 (codes %v)", won, codes)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, b := h.doAs("", "", "GET", p, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, b)
		}
	}
	h.upload(h.root, "m.txt", "12345")
	resp, b := h.doAs("", "", "GET", "/metrics", nil)
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	for _, want := range []string{
		`velox_http_requests_total{code="201",method="POST",route="/api/v1/nodes/{id}/files"} 1`,
		"velox_http_request_duration_seconds_bucket",
		"velox_uploads_in_progress 0",
		"velox_http_request_bytes_total",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID")
	}
}

func TestChangesEndpoint(t *testing.T) {
	h := newHarness(t)
	cur := decode[struct{ Cursor string }](t, mustDo(h, 200, "GET", "/api/v1/spaces/"+h.space+"/changes", "")).Cursor
	done := make(chan []byte, 1)
	go func() {
		_, b := h.do("GET", "/api/v1/spaces/"+h.space+"/changes?wait=30&cursor="+cur, nil)
		done <- b
	}()
	time.Sleep(100 * time.Millisecond)
	f := h.upload(h.root, "x", "y")
	select {
	case b := <-done:
		cs := decode[struct {
			Cursor  string
			Changes []struct {
				NodeID string `json:"node_id"`
				Op     string
			}
		}](t, b)
		if len(cs.Changes) != 1 || cs.Changes[0].NodeID != f.ID || cs.Cursor == cur {
			t.Fatalf("changes %s", b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long poll did not return after a change")
	}
}

// Every route is documented in openapi.json, and everything documented
// exists.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	h := newHarness(t)
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(server.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	routed := map[string]bool{}
	h.srv.Router().Walk(func(route *mux.Route, router *mux.Router, ancestors []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil || !strings.HasPrefix(tpl, "/api/v1/") {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil
		}
		for _, m := range methods {
			routed[m+" "+tpl] = true
		}
		return nil
	})
	for r := range routed {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("openapi.json documents %s, which is not routed", d)
		}
	}
	resp, b := h.doAs("", "", "GET", "/api/v1/openapi.json", nil)
	if resp.StatusCode != 200 || !bytes.Equal(b, server.OpenAPI) {
		t.Fatal("openapi.json not served")
	}
}
