package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
)

// requireAdmin is requireUser plus the admin flag. Signed-in users who are
// not admins get 403: the admin API's existence is no secret.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return s.requireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !UserFrom(r).IsAdmin {
			writeError(w, http.StatusForbidden, files.CodeForbidden, "Only administrators may do this.")
			return
		}
		next.ServeHTTP(w, r)
	}))
}

func (s *Server) registerAdminAPI(api prefixed) {
	a := authedRouter{api, s.requireAdmin}
	a.HandleFunc("/admin/users", s.handleAdminUsers).Methods(http.MethodGet)
	a.HandleFunc("/admin/users", s.handleAdminCreateUser).Methods(http.MethodPost)
	a.HandleFunc("/admin/users/{id}", s.handleAdminUser).Methods(http.MethodGet)
	a.HandleFunc("/admin/users/{id}", s.handleAdminUpdateUser).Methods(http.MethodPatch)
	a.HandleFunc("/admin/users/{id}/password", s.handleAdminResetPassword).Methods(http.MethodPost)
	a.HandleFunc("/admin/users/{id}/sign-out", s.handleAdminSignOut).Methods(http.MethodPost)
	a.HandleFunc("/admin/groups", s.handleAdminGroups).Methods(http.MethodGet)
	a.HandleFunc("/admin/groups", s.handleAdminCreateGroup).Methods(http.MethodPost)
	a.HandleFunc("/admin/groups/{id}", s.handleAdminGroup).Methods(http.MethodGet)
	a.HandleFunc("/admin/groups/{id}", s.handleAdminDeleteGroup).Methods(http.MethodDelete)
	a.HandleFunc("/admin/groups/{id}/members/{user}", s.handleAdminMember(true)).Methods(http.MethodPut)
	a.HandleFunc("/admin/groups/{id}/members/{user}", s.handleAdminMember(false)).Methods(http.MethodDelete)
	a.HandleFunc("/admin/spaces", s.handleAdminSpaces).Methods(http.MethodGet)
	a.HandleFunc("/admin/spaces", s.handleAdminCreateSpace).Methods(http.MethodPost)
	a.HandleFunc("/admin/spaces/{id}", s.handleAdminSpace).Methods(http.MethodGet)
	a.HandleFunc("/admin/spaces/{id}", s.handleAdminUpdateSpace).Methods(http.MethodPatch)
	a.HandleFunc("/admin/spaces/{id}", s.handleAdminDeleteSpace).Methods(http.MethodDelete)
	a.HandleFunc("/admin/spaces/{id}/links", s.handleAdminLinkByName).Methods(http.MethodPost)
	a.HandleFunc("/admin/spaces/{id}/links/{group}", s.handleAdminLink).Methods(http.MethodPut)
	a.HandleFunc("/admin/spaces/{id}/links/{group}", s.handleAdminUnlink).Methods(http.MethodDelete)
	a.HandleFunc("/admin/directory", s.handleAdminDirectory).Methods(http.MethodGet)
	a.HandleFunc("/admin/directory/test", s.handleAdminDirectoryTest).Methods(http.MethodPost)
	a.HandleFunc("/admin/directory/sync", s.handleAdminDirectorySync).Methods(http.MethodPost)
	a.HandleFunc("/admin/audit", s.handleAdminAudit).Methods(http.MethodGet)
	a.HandleFunc("/admin/tokens", s.handleAdminTokens).Methods(http.MethodGet)
	a.HandleFunc("/admin/tokens", s.handleAdminCreateToken).Methods(http.MethodPost)
	a.HandleFunc("/admin/tokens/{id}", s.handleAdminRevokeToken).Methods(http.MethodDelete)
}

type adminUserJSON struct {
	userJSON
	DisabledBy string      `json:"disabled_by"`
	QuotaBytes *int64      `json:"quota_bytes"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
	Groups     []groupJSON `json:"groups,omitempty"`
}

func (s *Server) adminUserJSON(r *http.Request, u *metadata.User) adminUserJSON {
	return adminUserJSON{userJSON: s.userJSON(r, u), DisabledBy: u.DisabledBy, QuotaBytes: u.QuotaBytes, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func (s *Server) handleAdminUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.DB.Users(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]adminUserJSON, 0, len(users))
	for _, u := range users {
		out = append(out, s.adminUserJSON(r, u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (s *Server) handleAdminCreateUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username    string `json:"username"`
		Password    string `json:"password"`
		DisplayName string `json:"display_name"`
		Email       string `json:"email"`
		IsAdmin     bool   `json:"is_admin"`
		QuotaBytes  *int64 `json:"quota_bytes"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	u := &metadata.User{Username: req.Username, DisplayName: req.DisplayName, Email: req.Email, IsAdmin: req.IsAdmin, QuotaBytes: req.QuotaBytes}
	if err := s.Identity.CreateLocalUser(r.Context(), s.actor(r), u, req.Password); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.adminUserJSON(r, u))
}

func (s *Server) handleAdminUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.Identity.User(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	j := s.adminUserJSON(r, u)
	groups, err := s.DB.UserGroups(r.Context(), u.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	for _, g := range groups {
		j.Groups = append(j.Groups, groupOut(g))
	}
	writeJSON(w, http.StatusOK, j)
}

// optionalQuota distinguishes an absent quota_bytes (no change) from
// null (back to the default) and a number.
type optionalQuota struct {
	set   bool
	value *int64
}

func (q *optionalQuota) UnmarshalJSON(b []byte) error {
	q.set = true
	return json.Unmarshal(b, &q.value)
}

func (s *Server) handleAdminUpdateUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Disabled   *bool         `json:"disabled"`
		IsAdmin    *bool         `json:"is_admin"`
		QuotaBytes optionalQuota `json:"quota_bytes"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	id := mux.Vars(r)["id"]
	ctx, a := r.Context(), s.actor(r)
	var err error
	if req.Disabled != nil {
		err = s.Identity.SetDisabled(ctx, a, id, *req.Disabled)
	}
	if err == nil && req.IsAdmin != nil {
		err = s.Identity.SetAdmin(ctx, a, id, *req.IsAdmin)
	}
	if err == nil && req.QuotaBytes.set {
		err = s.Identity.SetUserQuota(ctx, a, id, req.QuotaBytes.value)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.handleAdminUser(w, r)
}

func (s *Server) handleAdminResetPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.Identity.ResetPassword(r.Context(), s.actor(r), mux.Vars(r)["id"], req.Password); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAdminSignOut(w http.ResponseWriter, r *http.Request) {
	if err := s.Identity.SignOutEverywhere(r.Context(), s.actor(r), mux.Vars(r)["id"]); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type groupJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Provider   string     `json:"provider"`
	Members    int        `json:"members"`
	CreatedAt  time.Time  `json:"created_at"`
	MemberList []userJSON `json:"member_list,omitempty"`
}

func groupOut(g *metadata.Group) groupJSON {
	return groupJSON{ID: g.ID, Name: g.Name, Provider: g.Provider, Members: g.Members, CreatedAt: g.CreatedAt}
}

func (s *Server) handleAdminGroups(w http.ResponseWriter, r *http.Request) {
	groups, err := s.DB.Groups(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]groupJSON, 0, len(groups))
	for _, g := range groups {
		out = append(out, groupOut(g))
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": out})
}

func (s *Server) handleAdminCreateGroup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	g, err := s.Identity.CreateLocalGroup(r.Context(), s.actor(r), req.Name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, groupOut(g))
}

func (s *Server) handleAdminGroup(w http.ResponseWriter, r *http.Request) {
	g, err := s.Identity.Group(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	members, err := s.DB.GroupMembers(r.Context(), g.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	j := groupOut(g)
	j.Members = len(members)
	j.MemberList = []userJSON{}
	for _, u := range members {
		j.MemberList = append(j.MemberList, userJSON{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Email: u.Email,
			Provider: u.Provider, IsAdmin: u.IsAdmin, Disabled: u.Disabled})
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) handleAdminDeleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := s.Identity.DeleteGroup(r.Context(), s.actor(r), mux.Vars(r)["id"]); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAdminMember(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := mux.Vars(r)
		if err := s.Identity.SetMember(r.Context(), s.actor(r), v["id"], v["user"], add); err != nil {
			s.error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

type teamSpaceJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	RootID     string     `json:"root_id"`
	QuotaBytes *int64     `json:"quota_bytes"`
	UsedBytes  int64      `json:"used_bytes"`
	CreatedAt  time.Time  `json:"created_at"`
	Links      []linkJSON `json:"links,omitempty"`
}

type linkJSON struct {
	GroupID   string `json:"group_id"`
	GroupName string `json:"group_name"`
	Provider  string `json:"provider"`
	Role      string `json:"role"`
}

func (s *Server) teamSpaceOut(r *http.Request, sp *metadata.Space, links bool) (teamSpaceJSON, error) {
	j := teamSpaceJSON{ID: sp.ID, Name: sp.Name, RootID: sp.RootID, QuotaBytes: sp.QuotaBytes, CreatedAt: sp.CreatedAt}
	used, err := s.DB.SpaceUsage(r.Context(), sp.ID)
	if err != nil {
		return j, err
	}
	j.UsedBytes = used
	if links {
		ls, err := s.DB.SpaceLinks(r.Context(), sp.ID)
		if err != nil {
			return j, err
		}
		j.Links = []linkJSON{}
		for _, l := range ls {
			j.Links = append(j.Links, linkJSON{GroupID: l.GroupID, GroupName: l.GroupName, Provider: l.Provider, Role: l.Role})
		}
	}
	return j, nil
}

func (s *Server) handleAdminSpaces(w http.ResponseWriter, r *http.Request) {
	spaces, err := s.DB.TeamSpaces(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]teamSpaceJSON, 0, len(spaces))
	for _, sp := range spaces {
		j, err := s.teamSpaceOut(r, sp, false)
		if err != nil {
			s.error(w, r, err)
			return
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"spaces": out})
}

func (s *Server) handleAdminCreateSpace(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name       string `json:"name"`
		QuotaBytes *int64 `json:"quota_bytes"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	sp, err := s.Identity.CreateTeamSpace(r.Context(), s.actor(r), req.Name, req.QuotaBytes)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeTeamSpace(w, r, sp, http.StatusCreated)
}

func (s *Server) writeTeamSpace(w http.ResponseWriter, r *http.Request, sp *metadata.Space, status int) {
	j, err := s.teamSpaceOut(r, sp, true)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, status, j)
}

func (s *Server) handleAdminSpace(w http.ResponseWriter, r *http.Request) {
	sp, err := s.Identity.TeamSpace(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeTeamSpace(w, r, sp, http.StatusOK)
}

func (s *Server) handleAdminUpdateSpace(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name       *string       `json:"name"`
		QuotaBytes optionalQuota `json:"quota_bytes"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	var quota **int64
	if req.QuotaBytes.set {
		quota = &req.QuotaBytes.value
	}
	sp, err := s.Identity.UpdateTeamSpace(r.Context(), s.actor(r), mux.Vars(r)["id"], req.Name, quota)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeTeamSpace(w, r, sp, http.StatusOK)
}

func (s *Server) handleAdminDeleteSpace(w http.ResponseWriter, r *http.Request) {
	if err := s.Identity.DeleteTeamSpace(r.Context(), s.actor(r), mux.Vars(r)["id"]); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAdminLink(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role string `json:"role"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	v := mux.Vars(r)
	if err := s.Identity.Link(r.Context(), s.actor(r), v["id"], v["group"], req.Role); err != nil {
		s.error(w, r, err)
		return
	}
	s.handleAdminSpace(w, r)
}

// handleAdminLinkByName links a group by provider and name, so a
// directory group can be linked before any of its members signed in.
func (s *Server) handleAdminLinkByName(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Provider string `json:"provider"`
		Group    string `json:"group"`
		Role     string `json:"role"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if req.Provider == "" || strings.TrimSpace(req.Group) == "" {
		s.error(w, r, badRequest("Name the group's provider (local, ldap) and its name."))
		return
	}
	if _, err := s.Identity.LinkDirectoryGroup(r.Context(), s.actor(r), mux.Vars(r)["id"], req.Provider, req.Group, req.Role); err != nil {
		s.error(w, r, err)
		return
	}
	s.handleAdminSpace(w, r)
}

func (s *Server) handleAdminUnlink(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	if err := s.Identity.Unlink(r.Context(), s.actor(r), v["id"], v["group"]); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAdminDirectory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Identity.Status())
}

func (s *Server) handleAdminDirectoryTest(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if err := s.Identity.TestDirectory(r.Context()); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "duration_ms": time.Since(start).Milliseconds()})
}

func (s *Server) handleAdminDirectorySync(w http.ResponseWriter, r *http.Request) {
	if s.Identity.Directory == nil {
		s.error(w, r, &files.Error{Code: files.CodeNotFound, Message: "No directory is configured."})
		return
	}
	res, err := s.Identity.Sync(r.Context())
	if err != nil {
		s.error(w, r, &files.Error{Code: files.CodeUnavailable, Message: "The directory sync failed: " + res.Error, Err: err})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

type auditJSON struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Target   string          `json:"target,omitempty"`
	IP       string          `json:"ip,omitempty"`
	Provider string          `json:"provider,omitempty"`
	Outcome  string          `json:"outcome"`
	Details  json.RawMessage `json:"details"`
}

func (s *Server) handleAdminAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := metadata.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Limit: 100}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.error(w, r, badRequest(p.name+" must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z."))
				return
			}
			*p.dst = t
		}
	}
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			s.error(w, r, badRequest("Invalid cursor."))
			return
		}
		f.Before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.error(w, r, badRequest("limit must be between 1 and 1000."))
			return
		}
		f.Limit = n
	}
	events, err := s.Identity.QueryAudit(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]auditJSON, 0, len(events))
	for _, e := range events {
		out = append(out, auditJSON{Seq: e.Seq, At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, IP: e.IP,
			Provider: e.Provider, Outcome: e.Outcome, Details: json.RawMessage(e.Details)})
	}
	resp := map[string]any{"events": out}
	if len(events) == f.Limit {
		resp["next_cursor"] = strconv.FormatInt(events[len(events)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, resp)
}

type tokenJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	UserID     string     `json:"user_id"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Token      string     `json:"token,omitempty"`
}

func tokenOut(t *metadata.APIToken) tokenJSON {
	j := tokenJSON{ID: t.ID, Name: t.Name, UserID: t.UserID, Scopes: t.Scopes, CreatedAt: t.CreatedAt}
	if !t.ExpiresAt.IsZero() {
		x := t.ExpiresAt
		j.ExpiresAt = &x
	}
	if !t.LastUsedAt.IsZero() {
		x := t.LastUsedAt
		j.LastUsedAt = &x
	}
	return j
}

func (s *Server) handleAdminTokens(w http.ResponseWriter, r *http.Request) {
	list, err := s.DB.APITokens(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]tokenJSON, 0, len(list))
	for _, t := range list {
		out = append(out, tokenOut(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) handleAdminCreateToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name      string   `json:"name"`
		User      string   `json:"user"`
		Scopes    []string `json:"scopes"`
		ExpiresIn string   `json:"expires_in"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			s.error(w, r, badRequest("expires_in must be a positive duration such as 720h."))
			return
		}
		ttl = d
	}
	t, secret, err := s.Identity.CreateToken(r.Context(), UserFrom(r), req.Name, req.User, req.Scopes, ttl, s.clientIP(r))
	if err != nil {
		s.error(w, r, err)
		return
	}
	j := tokenOut(t)
	j.Token = secret
	writeJSON(w, http.StatusCreated, j)
}

func (s *Server) handleAdminRevokeToken(w http.ResponseWriter, r *http.Request) {
	if err := s.Identity.RevokeToken(r.Context(), UserFrom(r), mux.Vars(r)["id"], s.clientIP(r)); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
