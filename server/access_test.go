package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/veloxhq/velox/auth/local"
	"github.com/veloxhq/velox/internal/metadata"
)

// addAdmin creates a local administrator "root".
func (h *harness) addAdmin() {
	h.t.Helper()
	hash, _ := local.HashPassword("root-password")
	if err := h.db.CreateUser(context.Background(), &metadata.User{Username: "root", PasswordHash: hash, IsAdmin: true}); err != nil {
		h.t.Fatal(err)
	}
}

// admin sends a request as root and checks the status.
func (h *harness) admin(status int, method, path, body string) []byte {
	h.t.Helper()
	resp, b := h.doAs("root", "root-password", method, "/api/v1/admin"+path, strings.NewReader(body), "Content-Type", "application/json")
	if resp.StatusCode != status {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, b)
	}
	return b
}

func jsonField(t *testing.T, b []byte, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bad JSON %s", b)
	}
	return fmt.Sprint(m[field])
}

// TestTeamSpaceRoles tries every file operation on a team space as a user
// with no access (404 for everything, so the space does not leak), as a
// viewer (reads work, writes 403), as an editor (writes work, purging the
// trash 403) and as a manager (everything).
func TestTeamSpaceRoles(t *testing.T) {
	h := newHarness(t)
	h.addAdmin()
	b := h.admin(201, "POST", "/spaces", `{"name":"Projects"}`)
	space, root := jsonField(t, b, "id"), jsonField(t, b, "root_id")
	users := map[string]string{}
	for _, name := range []string{"nora", "vera", "eddy", "mona"} {
		b := h.admin(201, "POST", "/users", `{"username":"`+name+`","password":"`+name+`-password"}`)
		users[name] = jsonField(t, b, "id")
	}
	for group, member := range map[string]string{"viewers": "vera", "editors": "eddy", "managers": "mona"} {
		g := jsonField(t, h.admin(201, "POST", "/groups", `{"name":"`+group+`"}`), "id")
		h.admin(204, "PUT", "/groups/"+g+"/members/"+users[member], "")
		h.admin(200, "PUT", "/spaces/"+space+"/links/"+g, `{"role":"`+strings.TrimSuffix(group, "s")+`"}`)
	}
	as := func(user string, method, path, body string) (*http.Response, []byte) {
		return h.doAs(user, user+"-password", method, path, strings.NewReader(body), "Content-Type", "application/json")
	}
	mona := func(status int, method, path, body string) string {
		t.Helper()
		resp, b := as("mona", method, path, body)
		if resp.StatusCode != status {
			t.Fatalf("setup %s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if len(b) == 0 {
			return ""
		}
		return jsonField(t, b, "id")
	}
	file := mona(201, "POST", "/api/v1/nodes/"+root+"/files?name=report.txt", "quarterly")

	type op struct {
		name, method, path, body string
		write, manage            bool
	}
	ops := func(user string) []op {
		// Fresh items per user, so each write acts on something that exists.
		victim := mona(201, "POST", "/api/v1/nodes/"+root+"/files?name="+user+"-victim.txt", "v")
		renamee := mona(201, "POST", "/api/v1/nodes/"+root+"/files?name="+user+"-renamee.txt", "r")
		trashed := mona(201, "POST", "/api/v1/nodes/"+root+"/files?name="+user+"-trashed.txt", "t")
		mona(204, "DELETE", "/api/v1/nodes/"+trashed, "")
		purgee := mona(201, "POST", "/api/v1/nodes/"+root+"/files?name="+user+"-purgee.txt", "p")
		mona(204, "DELETE", "/api/v1/nodes/"+purgee, "")
		return []op{
			{"space", "GET", "/api/v1/spaces/" + space, "", false, false},
			{"get", "GET", "/api/v1/nodes/" + file, "", false, false},
			{"list", "GET", "/api/v1/nodes/" + root + "/children", "", false, false},
			{"download", "GET", "/api/v1/nodes/" + file + "/content", "", false, false},
			{"versions", "GET", "/api/v1/nodes/" + file + "/versions", "", false, false},
			{"search", "GET", "/api/v1/spaces/" + space + "/search?q=report", "", false, false},
			{"trash", "GET", "/api/v1/spaces/" + space + "/trash", "", false, false},
			{"changes", "GET", "/api/v1/spaces/" + space + "/changes?cursor=0", "", false, false},
			{"upload new", "POST", "/api/v1/nodes/" + root + "/files?name=" + url.QueryEscape(user+" new.txt"), "n", true, false},
			{"overwrite", "PUT", "/api/v1/nodes/" + file + "/content", "rewritten by " + user, true, false},
			{"mkdir", "POST", "/api/v1/nodes/" + root + "/children", `{"name":"` + user + ` folder"}`, true, false},
			{"move", "PATCH", "/api/v1/nodes/" + renamee, `{"name":"` + user + ` renamed.txt"}`, true, false},
			{"copy", "POST", "/api/v1/nodes/" + file + "/copy", `{"parent_id":"` + root + `","name":"` + user + ` copy.txt"}`, true, false},
			{"delete", "DELETE", "/api/v1/nodes/" + victim, "", true, false},
			{"restore", "POST", "/api/v1/trash/" + trashed + "/restore", `{}`, true, false},
			{"purge", "DELETE", "/api/v1/trash/" + purgee, "", true, true},
		}
	}
	for _, tc := range []struct {
		user               string
		see, write, manage bool
	}{
		{"nora", false, false, false}, // in no linked group
		{"vera", true, false, false},
		{"eddy", true, true, false},
		{"mona", true, true, true},
	} {
		t.Run(tc.user, func(t *testing.T) {
			for _, o := range ops(tc.user) {
				resp, b := as(tc.user, o.method, o.path, o.body)
				allowed := tc.see && (!o.write || tc.write) && (!o.manage || tc.manage)
				switch {
				case allowed && resp.StatusCode >= 300:
					t.Errorf("%s as %s: %d %s, want success", o.name, tc.user, resp.StatusCode, b)
				case !allowed && !tc.see:
					if resp.StatusCode != 404 {
						t.Errorf("%s as %s: %d %s, want 404 (the space must not leak)", o.name, tc.user, resp.StatusCode, b)
					}
				case !allowed:
					if resp.StatusCode != 403 {
						t.Errorf("%s as %s: %d %s, want 403", o.name, tc.user, resp.StatusCode, b)
					}
				}
			}
			// GET /spaces lists the team space exactly for members.
			resp, b := as(tc.user, "GET", "/api/v1/spaces", "")
			if resp.StatusCode != 200 || strings.Contains(string(b), space) != tc.see {
				t.Errorf("spaces of %s: %d %s (want team space listed: %v)", tc.user, resp.StatusCode, b, tc.see)
			}
		})
	}

	// Removing a link takes access away at once.
	groups := h.admin(200, "GET", "/groups", "")
	var gl struct{ Groups []struct{ ID, Name string } }
	json.Unmarshal(groups, &gl)
	for _, g := range gl.Groups {
		if g.Name == "viewers" {
			h.admin(204, "DELETE", "/spaces/"+space+"/links/"+g.ID, "")
		}
	}
	resp, b2 := as("vera", "GET", "/api/v1/nodes/"+file, "")
	wantError(t, resp, b2, 404, "not_found")
}

// TestAdminAPIForbidden: signed-in users who are not admins get 403 on
// every admin route.
func TestAdminAPIForbidden(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/api/v1/admin/users", "/api/v1/admin/groups", "/api/v1/admin/spaces", "/api/v1/admin/audit", "/api/v1/admin/directory"} {
		resp, b := h.do("GET", p, nil)
		wantError(t, resp, b, 403, "forbidden")
	}
	resp, b := h.do("POST", "/api/v1/admin/spaces", strings.NewReader(`{"name":"x"}`))
	wantError(t, resp, b, 403, "forbidden")
}

func TestQuotas(t *testing.T) {
	h := newHarness(t)
	h.addAdmin()
	alice, _ := h.db.UserByName(context.Background(), "alice")
	h.admin(200, "PATCH", "/users/"+alice.ID, `{"quota_bytes":10}`)
	h.upload(h.root, "small.txt", "12345")
	// Declared size over the remaining quota: refused before the body.
	resp, b := h.do("POST", "/api/v1/nodes/"+h.root+"/files?name=big.txt", strings.NewReader("123456"))
	wantError(t, resp, b, 507, "quota_exceeded")
	// Unknown size (chunked): refused at commit, nothing kept.
	req, _ := http.NewRequest("POST", h.ts.URL+"/api/v1/nodes/"+h.root+"/files?name=chunked.txt", struct{ *strings.Reader }{strings.NewReader("123456")})
	req.SetBasicAuth("alice", alicePass)
	req.ContentLength = -1
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e apiError
	json.NewDecoder(r2.Body).Decode(&e)
	r2.Body.Close()
	if r2.StatusCode != 507 || e.Error.Code != "quota_exceeded" {
		t.Fatalf("chunked over quota: %d %+v", r2.StatusCode, e)
	}
	// Replacing a file only counts the difference; deleting frees quota
	// (the trash does not count).
	small := h.upload(h.root, "five.txt", "12345")
	resp, b = h.do("PUT", "/api/v1/nodes/"+small.ID+"/content", strings.NewReader("123"))
	if resp.StatusCode != 200 {
		t.Fatalf("overwrite smaller: %d %s", resp.StatusCode, b)
	}
	resp, _ = h.do("DELETE", "/api/v1/nodes/"+small.ID, nil)
	if resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	h.upload(h.root, "fits.txt", "12345")

	// Team space quota.
	b = h.admin(201, "POST", "/spaces", `{"name":"Tiny","quota_bytes":4}`)
	space, root := jsonField(t, b, "id"), jsonField(t, b, "root_id")
	g := jsonField(t, h.admin(201, "POST", "/groups", `{"name":"tiny"}`), "id")
	h.admin(204, "PUT", "/groups/"+g+"/members/"+alice.ID, "")
	h.admin(200, "PUT", "/spaces/"+space+"/links/"+g, `{"role":"editor"}`)
	resp, b = h.do("POST", "/api/v1/nodes/"+root+"/files?name=a.txt", strings.NewReader("12345"))
	wantError(t, resp, b, 507, "quota_exceeded")
	h.admin(200, "PATCH", "/spaces/"+space, `{"quota_bytes":null}`)
	h.upload(root, "a.txt", "12345")
}

func TestDeleteTeamSpaceOnlyWhenEmpty(t *testing.T) {
	h := newHarness(t)
	h.addAdmin()
	alice, _ := h.db.UserByName(context.Background(), "alice")
	b := h.admin(201, "POST", "/spaces", `{"name":"Old"}`)
	space, root := jsonField(t, b, "id"), jsonField(t, b, "root_id")
	g := jsonField(t, h.admin(201, "POST", "/groups", `{"name":"old"}`), "id")
	h.admin(204, "PUT", "/groups/"+g+"/members/"+alice.ID, "")
	h.admin(200, "PUT", "/spaces/"+space+"/links/"+g, `{"role":"manager"}`)
	f := h.upload(root, "keep.txt", "x")
	h.admin(409, "DELETE", "/spaces/"+space, "")
	h.do("DELETE", "/api/v1/nodes/"+f.ID, nil)
	h.admin(409, "DELETE", "/spaces/"+space, "") // the trash counts
	if resp, b := h.do("DELETE", "/api/v1/spaces/"+space+"/trash", nil); resp.StatusCode >= 300 {
		t.Fatalf("empty trash: %d %s", resp.StatusCode, b)
	}
	h.admin(204, "DELETE", "/spaces/"+space, "")
	h.admin(404, "GET", "/spaces/"+space, "")
	resp, b2 := h.do("GET", "/api/v1/spaces/"+space, nil)
	wantError(t, resp, b2, 404, "not_found")
}
