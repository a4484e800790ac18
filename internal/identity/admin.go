package identity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/veloxhq/velox/auth"
	"github.com/veloxhq/velox/auth/local"
	"github.com/veloxhq/velox/internal/files"
	"github.com/veloxhq/velox/internal/metadata"
)

// Actor is who performs an admin action, for the audit log.
type Actor struct {
	User *metadata.User
	IP   string
}

func (s *Service) adminAudit(ctx context.Context, a Actor, action, target string, kv ...string) {
	s.audit(ctx, metadata.AuditEvent{Actor: a.User.Username, Action: action, Target: target, IP: a.IP, Outcome: "success", Details: details(kv...)})
}

// CreateLocalUser creates a local account with a password.
func (s *Service) CreateLocalUser(ctx context.Context, a Actor, u *metadata.User, password string) error {
	u.Username = strings.TrimSpace(u.Username)
	if u.Username == "" || len(u.Username) > 256 || strings.ContainsAny(u.Username, "\x00/\\:") {
		return invalid("The username must be 1 to 256 characters without / \\ : or NUL.")
	}
	if err := checkNewPassword(password); err != nil {
		return err
	}
	hash, err := local.HashPassword(password)
	if err != nil {
		return err
	}
	u.Provider, u.PasswordHash = local.Name, hash
	if err := s.DB.WithTx(ctx, func(tx *metadata.Tx) error { return tx.CreateUser(ctx, u) }); err != nil {
		if errors.Is(err, metadata.ErrConflict) {
			return &files.Error{Code: files.CodeConflict, Message: "A user with that name exists."}
		}
		return err
	}
	s.adminAudit(ctx, a, "user.create", u.Username)
	return nil
}

// User returns a user by ID.
func (s *Service) User(ctx context.Context, id string) (*metadata.User, error) {
	u, err := s.DB.UserByID(ctx, id)
	return u, notFound(err, "No such user.")
}

// SetDisabled disables (signing the user out everywhere) or enables a
// user.
func (s *Service) SetDisabled(ctx context.Context, a Actor, id string, disabled bool) error {
	u, err := s.User(ctx, id)
	if err != nil {
		return err
	}
	if disabled && u.ID == a.User.ID {
		return invalid("You cannot disable your own account.")
	}
	err = s.DB.WithTx(ctx, func(tx *metadata.Tx) error {
		if err := tx.SetDisabled(ctx, id, disabled, metadata.DisabledByAdmin); err != nil {
			return err
		}
		if disabled {
			return tx.DeleteUserSessions(ctx, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	s.adminAudit(ctx, a, action, u.Username)
	return nil
}

// SetAdmin grants or revokes admin rights.
func (s *Service) SetAdmin(ctx context.Context, a Actor, id string, admin bool) error {
	u, err := s.User(ctx, id)
	if err != nil {
		return err
	}
	if !admin && u.ID == a.User.ID {
		return invalid("You cannot revoke your own admin rights.")
	}
	if err := s.DB.SetAdmin(ctx, id, admin); err != nil {
		return err
	}
	s.adminAudit(ctx, a, "user.set_admin", u.Username, "admin", boolStr(admin))
	return nil
}

// ResetPassword sets a local user's password and signs them out.
func (s *Service) ResetPassword(ctx context.Context, a Actor, id, password string) error {
	u, err := s.User(ctx, id)
	if err != nil {
		return err
	}
	if u.Provider != local.Name {
		return &files.Error{Code: files.CodeInvalidRequest, Message: "This user's password is managed by the directory."}
	}
	if err := checkNewPassword(password); err != nil {
		return err
	}
	hash, err := local.HashPassword(password)
	if err != nil {
		return err
	}
	err = s.DB.WithTx(ctx, func(tx *metadata.Tx) error {
		if err := tx.SetPassword(ctx, id, hash); err != nil {
			return err
		}
		return tx.DeleteUserSessions(ctx, id)
	})
	if err != nil {
		return err
	}
	s.adminAudit(ctx, a, "user.reset_password", u.Username)
	return nil
}

// SetUserQuota overrides a user's personal quota (nil: the default).
func (s *Service) SetUserQuota(ctx context.Context, a Actor, id string, quota *int64) error {
	u, err := s.User(ctx, id)
	if err != nil {
		return err
	}
	if quota != nil && *quota < 0 {
		return invalid("The quota must not be negative (0 means unlimited).")
	}
	if err := s.DB.SetUserQuota(ctx, id, quota); err != nil {
		return err
	}
	s.adminAudit(ctx, a, "user.set_quota", u.Username, "quota", quotaStr(quota))
	return nil
}

// SignOutEverywhere ends every session of a user and invalidates their
// cached HTTP Basic logins.
func (s *Service) SignOutEverywhere(ctx context.Context, a Actor, id string) error {
	u, err := s.User(ctx, id)
	if err != nil {
		return err
	}
	err = s.DB.WithTx(ctx, func(tx *metadata.Tx) error {
		if err := tx.DeleteUserSessions(ctx, id); err != nil {
			return err
		}
		return tx.TouchUser(ctx, id)
	})
	if err != nil {
		return err
	}
	s.adminAudit(ctx, a, "user.sign_out_everywhere", u.Username)
	return nil
}

// CreateLocalGroup creates a group managed in Velox.
func (s *Service) CreateLocalGroup(ctx context.Context, a Actor, name string) (*metadata.Group, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 256 {
		return nil, invalid("The group name must be 1 to 256 characters.")
	}
	g := &metadata.Group{Name: name, Provider: local.Name}
	if err := s.DB.CreateGroup(ctx, g); err != nil {
		if errors.Is(err, metadata.ErrConflict) {
			return nil, &files.Error{Code: files.CodeConflict, Message: "A local group with that name exists."}
		}
		return nil, err
	}
	s.adminAudit(ctx, a, "group.create", name)
	return g, nil
}

// Group returns a group by ID.
func (s *Service) Group(ctx context.Context, id string) (*metadata.Group, error) {
	g, err := s.DB.GroupByID(ctx, id)
	return g, notFound(err, "No such group.")
}

// DeleteGroup deletes a local group (directory groups come back at the
// next sync, so deleting them is refused).
func (s *Service) DeleteGroup(ctx context.Context, a Actor, id string) error {
	g, err := s.Group(ctx, id)
	if err != nil {
		return err
	}
	if g.Provider != local.Name {
		return invalid("Directory groups follow the directory; unlink them from spaces instead.")
	}
	if err := s.DB.WithTx(ctx, func(tx *metadata.Tx) error { return tx.DeleteGroup(ctx, id) }); err != nil {
		return err
	}
	s.adminAudit(ctx, a, "group.delete", g.Name)
	return nil
}

// SetMember adds a user to or removes one from a local group.
func (s *Service) SetMember(ctx context.Context, a Actor, groupID, userID string, member bool) error {
	g, err := s.Group(ctx, groupID)
	if err != nil {
		return err
	}
	if g.Provider != local.Name {
		return invalid("Membership of directory groups is managed in the directory.")
	}
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	action := "group.add_member"
	if member {
		err = s.DB.AddGroupMember(ctx, groupID, userID)
	} else {
		action = "group.remove_member"
		err = s.DB.RemoveGroupMember(ctx, groupID, userID)
	}
	if err != nil {
		return err
	}
	s.adminAudit(ctx, a, action, g.Name, "user", u.Username)
	return nil
}

// CreateTeamSpace creates a team space with an optional quota.
func (s *Service) CreateTeamSpace(ctx context.Context, a Actor, name string, quota *int64) (*metadata.Space, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 256 {
		return nil, invalid("The space name must be 1 to 256 characters.")
	}
	if quota != nil && *quota < 0 {
		return nil, invalid("The quota must not be negative (0 means unlimited).")
	}
	var sp *metadata.Space
	err := s.DB.WithTx(ctx, func(tx *metadata.Tx) error {
		var err error
		sp, err = tx.CreateSpace(ctx, &metadata.Space{Kind: metadata.SpaceTeam, Name: name, QuotaBytes: quota})
		return err
	})
	if err != nil {
		return nil, err
	}
	s.adminAudit(ctx, a, "space.create", name, "id", sp.ID)
	return sp, nil
}

// TeamSpace returns a team space by ID.
func (s *Service) TeamSpace(ctx context.Context, id string) (*metadata.Space, error) {
	sp, err := s.DB.SpaceByID(ctx, id)
	if err == nil && sp.Kind != metadata.SpaceTeam {
		err = metadata.ErrNotFound
	}
	return sp, notFound(err, "No such team space.")
}

// UpdateTeamSpace renames a team space and/or sets its quota.
func (s *Service) UpdateTeamSpace(ctx context.Context, a Actor, id string, name *string, quota **int64) (*metadata.Space, error) {
	sp, err := s.TeamSpace(ctx, id)
	if err != nil {
		return nil, err
	}
	if name != nil {
		n := strings.TrimSpace(*name)
		if n == "" || len(n) > 256 {
			return nil, invalid("The space name must be 1 to 256 characters.")
		}
		if err := s.DB.RenameSpace(ctx, id, n); err != nil {
			return nil, err
		}
		s.adminAudit(ctx, a, "space.rename", sp.Name, "name", n)
	}
	if quota != nil {
		if *quota != nil && **quota < 0 {
			return nil, invalid("The quota must not be negative (0 means unlimited).")
		}
		if err := s.DB.SetSpaceQuota(ctx, id, *quota); err != nil {
			return nil, err
		}
		s.adminAudit(ctx, a, "space.set_quota", sp.Name, "quota", quotaStr(*quota))
	}
	return s.TeamSpace(ctx, id)
}

// DeleteTeamSpace deletes an empty team space (no files, empty trash).
// Refusing non-empty spaces keeps a mistaken click from destroying data;
// managers empty the space first.
func (s *Service) DeleteTeamSpace(ctx context.Context, a Actor, id string) error {
	sp, err := s.TeamSpace(ctx, id)
	if err != nil {
		return err
	}
	err = s.DB.WithTx(ctx, func(tx *metadata.Tx) error { return tx.DeleteEmptySpace(ctx, id) })
	if errors.Is(err, metadata.ErrConflict) {
		return &files.Error{Code: files.CodeConflict, Message: fmt.Sprintf("%q still holds files or trash; empty it first.", sp.Name)}
	}
	if err != nil {
		return err
	}
	s.adminAudit(ctx, a, "space.delete", sp.Name, "id", id)
	return nil
}

// Link gives a group a role in a team space.
func (s *Service) Link(ctx context.Context, a Actor, spaceID, groupID, role string) error {
	sp, err := s.TeamSpace(ctx, spaceID)
	if err != nil {
		return err
	}
	g, err := s.Group(ctx, groupID)
	if err != nil {
		return err
	}
	if !metadata.ValidRole(role) {
		return invalid("The role must be viewer, editor or manager.")
	}
	if err := s.DB.LinkGroup(ctx, spaceID, groupID, role); err != nil {
		return err
	}
	s.adminAudit(ctx, a, "space.link_group", sp.Name, "group", g.Name, "provider", g.Provider, "role", role)
	return nil
}

// Unlink removes a group's role in a team space.
func (s *Service) Unlink(ctx context.Context, a Actor, spaceID, groupID string) error {
	sp, err := s.TeamSpace(ctx, spaceID)
	if err != nil {
		return err
	}
	if err := s.DB.UnlinkGroup(ctx, spaceID, groupID); err != nil {
		return notFound(err, "That group is not linked to this space.")
	}
	s.adminAudit(ctx, a, "space.unlink_group", sp.Name, "group", groupID)
	return nil
}

// LinkDirectoryGroup links a directory group by name, creating its row
// if nobody from it has signed in yet (the name must match what the
// directory reports, e.g. the cn).
func (s *Service) LinkDirectoryGroup(ctx context.Context, a Actor, spaceID, provider, name, role string) (*metadata.Group, error) {
	g, err := s.DB.GroupByName(ctx, provider, name)
	if errors.Is(err, metadata.ErrNotFound) {
		if provider == local.Name {
			return nil, &files.Error{Code: files.CodeNotFound, Message: "No such local group."}
		}
		g = &metadata.Group{Name: name, Provider: provider}
		err = s.DB.CreateGroup(ctx, g)
	}
	if err != nil {
		return nil, err
	}
	return g, s.Link(ctx, a, spaceID, g.ID, role)
}

// DirectoryStatus describes the configured directory.
type DirectoryStatus struct {
	Configured bool        `json:"configured"`
	Provider   string      `json:"provider,omitempty"`
	LastSync   *SyncResult `json:"last_sync,omitempty"`
}

// Status returns the directory status.
func (s *Service) Status() DirectoryStatus {
	if s.Directory == nil {
		return DirectoryStatus{}
	}
	return DirectoryStatus{Configured: true, Provider: s.Directory.Name(), LastSync: s.LastSync()}
}

// TestDirectory binds to the directory and reports the outcome.
func (s *Service) TestDirectory(ctx context.Context) error {
	if s.Directory == nil {
		return &files.Error{Code: files.CodeNotFound, Message: "No directory is configured."}
	}
	err := s.Directory.Ping(ctx)
	if err != nil && errors.Is(err, auth.ErrUnavailable) {
		return &files.Error{Code: files.CodeUnavailable, Message: "The directory cannot be reached: " + err.Error(), Err: err}
	}
	if err != nil {
		return &files.Error{Code: files.CodeInvalidRequest, Message: "The directory refused the service account or the base DN: " + err.Error()}
	}
	return nil
}

// Audit queries the audit log.
func (s *Service) QueryAudit(ctx context.Context, f metadata.AuditFilter) ([]*metadata.AuditEvent, error) {
	return s.DB.Audit(ctx, f)
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func quotaStr(q *int64) string {
	if q == nil {
		return "default"
	}
	return strconv.FormatInt(*q, 10)
}
