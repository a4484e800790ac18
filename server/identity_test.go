package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/veloxhq/velox/server"
	"github.com/veloxhq/velox/server/dav"
)

// browser is a cookie-carrying client signed in through /auth/login.
type browser struct {
	t    *testing.T
	h    *harness
	c    *http.Client
	csrf string
}

func (h *harness) signIn(user, pass, agent string) (*browser, *http.Response, []byte) {
	h.t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: h.t, h: h, c: &http.Client{Jar: jar}}
	resp, body := b.do("POST", "/api/v1/auth/login", `{"username":"`+user+`","password":"`+pass+`"}`, "User-Agent", agent)
	if resp.StatusCode == 200 {
		var me struct {
			CSRFToken string `json:"csrf_token"`
		}
		json.Unmarshal(body, &me)
		b.csrf = me.CSRFToken
	}
	return b, resp, body
}

func (b *browser) do(method, path, body string, hdr ...string) (*http.Response, []byte) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.h.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if b.csrf != "" {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, out
}

func TestSessionsListRevokeAndPasswordChange(t *testing.T) {
	h := newHarness(t)
	laptop, resp, b := h.signIn("alice", alicePass, "laptop-browser")
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	phone, _, _ := h.signIn("alice", alicePass, "phone-browser")
	resp, b = laptop.do("GET", "/api/v1/me/sessions", "")
	var list struct {
		Sessions []struct {
			ID, IP    string
			UserAgent string `json:"user_agent"`
			Current   bool
		}
	}
	if err := json.Unmarshal(b, &list); err != nil || len(list.Sessions) != 2 {
		t.Fatalf("sessions: %d %s", resp.StatusCode, b)
	}
	cookies := laptop.c.Jar.Cookies(mustURL(h.ts.URL))
	var phoneID string
	for _, s := range list.Sessions {
		for _, c := range cookies {
			if strings.Contains(c.Value, s.ID) || strings.Contains(s.ID, c.Value) {
				t.Fatalf("session ID %q is derived visibly from the cookie", s.ID)
			}
		}
		if s.IP == "" || s.UserAgent == "" {
			t.Errorf("session without IP or user agent: %+v", s)
		}
		if s.UserAgent == "phone-browser" {
			phoneID = s.ID
			if s.Current {
				t.Error("the phone's session is marked current on the laptop")
			}
		}
	}
	resp, b = laptop.do("DELETE", "/api/v1/me/sessions/"+phoneID, "")
	if resp.StatusCode != 204 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, b)
	}
	if resp, _ := phone.do("GET", "/api/v1/me", ""); resp.StatusCode != 401 {
		t.Fatalf("revoked session still works: %d", resp.StatusCode)
	}

	// Password change: wrong old password refused; success signs out the
	// other sessions but keeps this one.
	other, _, _ := h.signIn("alice", alicePass, "other")
	resp, b = laptop.do("POST", "/api/v1/me/password", `{"old_password":"nope","new_password":"a-new-long-password"}`)
	wantError(t, resp, b, 400, "invalid_request")
	resp, b = laptop.do("POST", "/api/v1/me/password", `{"old_password":"`+alicePass+`","new_password":"a-new-long-password"}`)
	if resp.StatusCode != 204 {
		t.Fatalf("change password: %d %s", resp.StatusCode, b)
	}
	if resp, _ := other.do("GET", "/api/v1/me", ""); resp.StatusCode != 401 {
		t.Fatalf("other session survived a password change: %d", resp.StatusCode)
	}
	if resp, _ := laptop.do("GET", "/api/v1/me", ""); resp.StatusCode != 200 {
		t.Fatalf("the session that changed the password was signed out: %d", resp.StatusCode)
	}
	if resp, _ := h.doAs("alice", alicePass, "GET", "/api/v1/me", nil); resp.StatusCode != 401 {
		t.Fatalf("old password still works over Basic: %d", resp.StatusCode)
	}
	if resp, _ := h.doAs("alice", "a-new-long-password", "GET", "/api/v1/me", nil); resp.StatusCode != 200 {
		t.Fatalf("new password: %d", resp.StatusCode)
	}
}

func TestAdminDisableAndSignOutEverywhere(t *testing.T) {
	h := newHarness(t)
	h.addAdmin()
	alice, _ := h.db.UserByName(context.Background(), "alice")
	br, _, _ := h.signIn("alice", alicePass, "b")
	// Basic is cached after the first request.
	h.doAs("alice", alicePass, "GET", "/api/v1/me", nil)
	h.admin(204, "POST", "/users/"+alice.ID+"/sign-out", "")
	if resp, _ := br.do("GET", "/api/v1/me", ""); resp.StatusCode != 401 {
		t.Fatalf("session survived sign-out everywhere: %d", resp.StatusCode)
	}
	h.admin(200, "PATCH", "/users/"+alice.ID, `{"disabled":true}`)
	resp, b := h.doAs("alice", alicePass, "GET", "/api/v1/me", nil)
	wantError(t, resp, b, 403, "forbidden")
	_, resp, b = h.signIn("alice", alicePass, "b")
	wantError(t, resp, b, 403, "forbidden")
	h.admin(200, "PATCH", "/users/"+alice.ID, `{"disabled":false}`)
	if resp, _ := h.doAs("alice", alicePass, "GET", "/api/v1/me", nil); resp.StatusCode != 200 {
		t.Fatalf("re-enabled: %d", resp.StatusCode)
	}
}

func TestAppPasswordsAndTokens(t *testing.T) {
	h := newHarness(t)
	h.addAdmin()
	h.srv.DAV = dav.New(h.srv.Files, server.UserFrom, h.srv.Logger)
	h.srv.Init() // again, to mount WebDAV
	resp, b := h.do("POST", "/api/v1/me/app-passwords", strings.NewReader(`{"name":"laptop sync"}`))
	if resp.StatusCode != 201 {
		t.Fatalf("create app password: %d %s", resp.StatusCode, b)
	}
	var ap struct{ ID, Password string }
	json.Unmarshal(b, &ap)
	if !strings.HasPrefix(ap.Password, "vxa_") {
		t.Fatalf("app password %q", ap.Password)
	}
	if resp, b := h.doAs("alice", ap.Password, "GET", "/api/v1/spaces", nil); resp.StatusCode != 200 {
		t.Fatalf("API with app password: %d %s", resp.StatusCode, b)
	}
	if resp, b := h.doAs("alice", ap.Password, "PROPFIND", "/remote.php/dav/files/alice/", nil, "Depth", "0"); resp.StatusCode != 207 {
		t.Fatalf("WebDAV with app password: %d %s", resp.StatusCode, b)
	}
	if resp, _ := h.doAs("bob", ap.Password, "GET", "/api/v1/spaces", nil); resp.StatusCode != 401 {
		t.Fatalf("alice's app password works for bob: %d", resp.StatusCode)
	}
	// Not for the browser login: that takes the account password only.
	if _, resp, _ := h.signIn("alice", ap.Password, "x"); resp.StatusCode != 401 {
		t.Fatalf("browser login with an app password: %d", resp.StatusCode)
	}
	_, b = h.do("GET", "/api/v1/me/app-passwords", nil)
	if strings.Contains(string(b), ap.Password) || !strings.Contains(string(b), "last_used_at\":\"") {
		t.Fatalf("listing leaks the secret or lacks last use: %s", b)
	}
	if resp, _ := h.do("DELETE", "/api/v1/me/app-passwords/"+ap.ID, nil); resp.StatusCode != 204 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp, _ := h.doAs("alice", ap.Password, "GET", "/api/v1/spaces", nil); resp.StatusCode != 401 {
		t.Fatalf("revoked app password still works: %d", resp.StatusCode)
	}

	// Scoped tokens.
	b = h.admin(201, "POST", "/tokens", `{"name":"backup","user":"alice","scopes":["files:read"]}`)
	var tok struct{ Token string }
	json.Unmarshal(b, &tok)
	bearer := func(token, method, path string) int {
		req, _ := http.NewRequest(method, h.ts.URL+path, strings.NewReader("x"))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/spaces", 200},
		{"POST", "/api/v1/nodes/" + h.root + "/files?name=t.txt", 403},
		{"GET", "/api/v1/admin/users", 403},
		{"GET", "/api/v1/me/app-passwords", 403},
	} {
		if got := bearer(tok.Token, tc.method, tc.path); got != tc.want {
			t.Errorf("read-only token %s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	h.admin(400, "POST", "/tokens", `{"name":"bad","user":"alice","scopes":["admin:read"]}`)
	b = h.admin(201, "POST", "/tokens", `{"name":"monitor","scopes":["admin:read"]}`)
	json.Unmarshal(b, &tok)
	if got := bearer(tok.Token, "GET", "/api/v1/admin/audit"); got != 200 {
		t.Errorf("admin:read token on audit: %d", got)
	}
	if got := bearer(tok.Token, "POST", "/api/v1/admin/groups"); got != 403 {
		t.Errorf("admin:read token writing: %d", got)
	}
	if got := bearer("vxt_forged", "GET", "/api/v1/spaces"); got != 401 {
		t.Errorf("forged token: %d", got)
	}
}

func TestLoginRateLimitAndAudit(t *testing.T) {
	h := newHarness(t)
	h.addAdmin()
	for i := 0; i < 5; i++ {
		_, resp, b := h.signIn("alice", "wrong", "x")
		wantError(t, resp, b, 401, "unauthorized")
	}
	_, resp, b := h.signIn("alice", alicePass, "x")
	wantError(t, resp, b, 429, "too_many_attempts")
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// HTTP Basic is limited the same way.
	resp, b = h.doAs("alice", alicePass, "GET", "/api/v1/me", nil)
	wantError(t, resp, b, 429, "too_many_attempts")
	// Other accounts are unaffected (the address allows more failures).
	if resp, _ := h.doAs("bob", "bob-password", "GET", "/api/v1/me", nil); resp.StatusCode != 200 {
		t.Fatalf("bob: %d", resp.StatusCode)
	}

	b = h.admin(200, "GET", "/audit?actor=alice&action=login&limit=3", "")
	var page struct {
		Events []struct {
			Actor, Action, Outcome, IP string
			Details                    map[string]string
		}
		NextCursor string `json:"next_cursor"`
	}
	json.Unmarshal(b, &page)
	if len(page.Events) != 3 || page.NextCursor == "" {
		t.Fatalf("audit page: %s", b)
	}
	for _, e := range page.Events {
		if e.Actor != "alice" || e.Action != "login" || e.IP == "" {
			t.Errorf("audit event %+v", e)
		}
	}
	b = h.admin(200, "GET", "/audit?actor=alice&action=login&cursor="+page.NextCursor, "")
	var rest struct{ Events []struct{ Outcome string } }
	json.Unmarshal(b, &rest)
	fails := 0
	for _, e := range append(rest.Events, struct{ Outcome string }{page.Events[0].Outcome}) {
		if e.Outcome == "failure" {
			fails++
		}
	}
	if fails < 3 {
		t.Errorf("failed logins not audited: %s", b)
	}
	h.admin(200, "GET", "/audit?actor=bob&action=login", "")
	h.admin(400, "GET", "/audit?since=yesterday", "")
}

func mustURL(s string) *url.URL {
	u, _ := url.Parse(s)
	return u
}
