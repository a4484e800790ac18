package metadata

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"
)

// Group is a set of users: a local group managed in Velox, or a directory
// group whose membership each login and sync copy from the directory.
type Group struct {
	ID         string
	Name       string
	Provider   string
	ExternalID string
	CreatedAt  time.Time
	// Members is filled by GroupsWithCounts only.
	Members int
}

// Group roles in a space; the names match files.Role's String.
const (
	RoleViewer  = "viewer"
	RoleEditor  = "editor"
	RoleManager = "manager"
)

// roleRank orders roles so the strongest of several links wins.
var roleRank = map[string]int{RoleViewer: 1, RoleEditor: 2, RoleManager: 3}

// ValidRole reports whether role is viewer, editor or manager.
func ValidRole(role string) bool { return roleRank[role] > 0 }

const groupCols = `id, name, provider, external_id, created_at`

func scanGroup(sc interface{ Scan(...any) error }) (*Group, error) {
	var g Group
	var created int64
	if err := sc.Scan(&g.ID, &g.Name, &g.Provider, &g.ExternalID, &created); err != nil {
		return nil, err
	}
	g.CreatedAt = fromMicros(created)
	return &g, nil
}

// CreateGroup inserts a group; ErrConflict if the provider already has one
// of that name.
func (q q) CreateGroup(ctx context.Context, g *Group) error {
	if g.ID == "" {
		g.ID = NewID()
	}
	now := q.now()
	g.CreatedAt = now.UTC()
	_, err := q.exec(ctx, `INSERT INTO groups (`+groupCols+`) VALUES (?, ?, ?, ?, ?)`,
		g.ID, g.Name, g.Provider, g.ExternalID, micros(now))
	if err != nil {
		return fmt.Errorf("create group %q: %w", g.Name, err)
	}
	return nil
}

// GroupByID returns a group or ErrNotFound.
func (q q) GroupByID(ctx context.Context, id string) (*Group, error) {
	g, err := scanGroup(q.row(ctx, `SELECT `+groupCols+` FROM groups WHERE id = ?`, id))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return g, nil
}

// GroupByName returns the group of a provider by name, or ErrNotFound.
func (q q) GroupByName(ctx context.Context, provider, name string) (*Group, error) {
	g, err := scanGroup(q.row(ctx, `SELECT `+groupCols+` FROM groups WHERE provider = ? AND name = ?`, provider, name))
	if err != nil {
		return nil, q.scanErr(err)
	}
	return g, nil
}

// Groups lists every group with its member count, by provider and name.
func (q q) Groups(ctx context.Context) ([]*Group, error) {
	rows, err := q.query(ctx, `SELECT g.id, g.name, g.provider, g.external_id, g.created_at,
		(SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id)
		FROM groups g ORDER BY g.provider, g.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Group
	for rows.Next() {
		var g Group
		var created int64
		if err := rows.Scan(&g.ID, &g.Name, &g.Provider, &g.ExternalID, &created, &g.Members); err != nil {
			return nil, err
		}
		g.CreatedAt = fromMicros(created)
		out = append(out, &g)
	}
	return out, rows.Err()
}

// DeleteGroup removes a group, its memberships and its links.
func (q q) DeleteGroup(ctx context.Context, id string) error {
	for _, stmt := range []string{`DELETE FROM group_links WHERE group_id = ?`, `DELETE FROM group_members WHERE group_id = ?`} {
		if _, err := q.exec(ctx, stmt, id); err != nil {
			return err
		}
	}
	res, err := q.exec(ctx, `DELETE FROM groups WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// AddGroupMember adds a user to a group; adding twice is not an error.
func (q q) AddGroupMember(ctx context.Context, groupID, userID string) error {
	_, err := q.exec(ctx, `INSERT INTO group_members (group_id, user_id) VALUES (?, ?)
		ON CONFLICT (group_id, user_id) DO NOTHING`, groupID, userID)
	return err
}

// RemoveGroupMember removes a user from a group.
func (q q) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	_, err := q.exec(ctx, `DELETE FROM group_members WHERE group_id = ? AND user_id = ?`, groupID, userID)
	return err
}

// GroupMembers lists the users of a group by username.
func (q q) GroupMembers(ctx context.Context, groupID string) ([]*User, error) {
	rows, err := q.query(ctx, `SELECT `+prefixCols("u.", userCols)+` FROM users u
		JOIN group_members m ON m.user_id = u.id WHERE m.group_id = ? ORDER BY u.username`, groupID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UserGroups lists the groups a user belongs to.
func (q q) UserGroups(ctx context.Context, userID string) ([]*Group, error) {
	rows, err := q.query(ctx, `SELECT `+prefixCols("g.", groupCols)+` FROM groups g
		JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.provider, g.name`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Group
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// SetUserGroups makes the user's memberships among provider's groups
// exactly names, creating groups that do not exist yet. Groups of other
// providers (local groups) are left alone. Run it in a transaction.
func (q q) SetUserGroups(ctx context.Context, userID, provider string, names []string) error {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	current, err := q.UserGroups(ctx, userID)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, g := range current {
		if g.Provider != provider {
			continue
		}
		have[g.Name] = true
		if !want[g.Name] {
			if err := q.RemoveGroupMember(ctx, g.ID, userID); err != nil {
				return err
			}
		}
	}
	sorted := make([]string, 0, len(want))
	for n := range want {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		if have[n] {
			continue
		}
		g, err := q.GroupByName(ctx, provider, n)
		if err == ErrNotFound {
			g = &Group{Name: n, Provider: provider}
			err = q.CreateGroup(ctx, g)
		}
		if err != nil {
			return err
		}
		if err := q.AddGroupMember(ctx, g.ID, userID); err != nil {
			return err
		}
	}
	return nil
}

// GroupLink is a group's role in a team space.
type GroupLink struct {
	SpaceID   string
	GroupID   string
	GroupName string
	Provider  string
	Role      string
	CreatedAt time.Time
}

// LinkGroup gives a group a role in a space, replacing any earlier role.
func (q q) LinkGroup(ctx context.Context, spaceID, groupID, role string) error {
	if !ValidRole(role) {
		return fmt.Errorf("link group: unknown role %q", role)
	}
	_, err := q.exec(ctx, `INSERT INTO group_links (space_id, group_id, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (space_id, group_id) DO UPDATE SET role = excluded.role`, spaceID, groupID, role, micros(q.now()))
	return err
}

// UnlinkGroup removes a group's role in a space; ErrNotFound if it had none.
func (q q) UnlinkGroup(ctx context.Context, spaceID, groupID string) error {
	res, err := q.exec(ctx, `DELETE FROM group_links WHERE space_id = ? AND group_id = ?`, spaceID, groupID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SpaceLinks lists the groups linked to a space.
func (q q) SpaceLinks(ctx context.Context, spaceID string) ([]GroupLink, error) {
	rows, err := q.query(ctx, `SELECT l.space_id, l.group_id, g.name, g.provider, l.role, l.created_at
		FROM group_links l JOIN groups g ON g.id = l.group_id WHERE l.space_id = ? ORDER BY g.provider, g.name`, spaceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []GroupLink
	for rows.Next() {
		var l GroupLink
		var created int64
		if err := rows.Scan(&l.SpaceID, &l.GroupID, &l.GroupName, &l.Provider, &l.Role, &created); err != nil {
			return nil, err
		}
		l.CreatedAt = fromMicros(created)
		out = append(out, l)
	}
	return out, rows.Err()
}

// SpaceRole returns the strongest role the user has in a space through
// their groups, or "" for none. One indexed join: links of the space
// against the user's memberships.
func (q q) SpaceRole(ctx context.Context, userID, spaceID string) (string, error) {
	rows, err := q.query(ctx, `SELECT l.role FROM group_links l
		JOIN group_members m ON m.group_id = l.group_id
		WHERE l.space_id = ? AND m.user_id = ?`, spaceID, userID)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	best := ""
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return "", err
		}
		if roleRank[r] > roleRank[best] {
			best = r
		}
	}
	return best, rows.Err()
}

// SpaceWithRole is a team space and the user's role in it.
type SpaceWithRole struct {
	*Space
	Role string
}

// LinkedSpaces lists the team spaces the user reaches through groups,
// each with the strongest role, by name.
func (q q) LinkedSpaces(ctx context.Context, userID string) ([]SpaceWithRole, error) {
	rows, err := q.query(ctx, `SELECT `+prefixCols("s.", spaceCols)+`, l.role FROM spaces s
		JOIN group_links l ON l.space_id = s.id
		JOIN group_members m ON m.group_id = l.group_id
		WHERE m.user_id = ? ORDER BY s.name, s.id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SpaceWithRole
	for rows.Next() {
		var role string
		var s Space
		var owner sql.NullString
		var quota sql.NullInt64
		var created int64
		if err := rows.Scan(&s.ID, &s.Kind, &s.Name, &owner, &s.RootID, &quota, &created, &role); err != nil {
			return nil, err
		}
		s.OwnerID = owner.String
		if quota.Valid {
			s.QuotaBytes = &quota.Int64
		}
		s.CreatedAt = fromMicros(created)
		if n := len(out); n > 0 && out[n-1].ID == s.ID {
			if roleRank[role] > roleRank[out[n-1].Role] {
				out[n-1].Role = role
			}
			continue
		}
		out = append(out, SpaceWithRole{Space: &s, Role: role})
	}
	return out, rows.Err()
}

// prefixCols qualifies a comma-separated column list with a table alias.
func prefixCols(prefix, cols string) string {
	out := ""
	start := 0
	for i := 0; i <= len(cols); i++ {
		if i == len(cols) || cols[i] == ',' {
			col := cols[start:i]
			for len(col) > 0 && col[0] == ' ' {
				col = col[1:]
			}
			if out != "" {
				out += ", "
			}
			out += prefix + col
			start = i + 1
		}
	}
	return out
}
