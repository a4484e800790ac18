package files

import (
	"context"
	"fmt"

	"github.com/veloxhq/velox/internal/metadata"
)

// GroupAccess is the default Service.Access: a user's role in a team space
// is the strongest role of the groups they belong to that are linked to
// the space. Membership is what the last login or directory sync
// recorded, so a change in the directory takes effect then.
func (s *Service) GroupAccess(ctx context.Context, u *User, sp *metadata.Space) (Role, error) {
	if sp.Kind != metadata.SpaceTeam {
		return RoleNone, nil
	}
	r, err := s.DB.SpaceRole(ctx, u.ID, sp.ID)
	if err != nil {
		return RoleNone, err
	}
	return ParseRole(r), nil
}

// ParseRole turns "viewer", "editor" or "manager" into a Role; anything
// else is RoleNone.
func ParseRole(s string) Role {
	switch s {
	case metadata.RoleViewer:
		return RoleViewer
	case metadata.RoleEditor:
		return RoleEditor
	case metadata.RoleManager:
		return RoleManager
	}
	return RoleNone
}

// teamSpaces lists the team spaces the user reaches through groups.
func (s *Service) teamSpaces(ctx context.Context, u *User) ([]SpaceView, error) {
	if u.Disabled {
		return nil, nil
	}
	linked, err := s.DB.LinkedSpaces(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]SpaceView, 0, len(linked))
	for _, l := range linked {
		out = append(out, SpaceView{Space: l.Space, Role: ParseRole(l.Role)})
	}
	return out, nil
}

// SpaceQuotaBytes returns the quota of a space in bytes, 0 meaning unlimited: the
// space's own quota if set, else for a personal space the owner's
// override, else DefaultQuota.
func (s *Service) SpaceQuotaBytes(ctx context.Context, sp *metadata.Space) (int64, error) {
	if sp.QuotaBytes != nil {
		return *sp.QuotaBytes, nil
	}
	if sp.Kind != metadata.SpacePersonal {
		return 0, nil
	}
	owner, err := s.DB.UserByID(ctx, sp.OwnerID)
	if err != nil {
		return 0, err
	}
	if owner.QuotaBytes != nil {
		return *owner.QuotaBytes, nil
	}
	return s.DefaultQuota, nil
}

// SpaceQuota is the default Service.Quota: it fails with
// CodeQuotaExceeded if adding delta bytes would take the space over its
// quota. Used bytes are the live files (the root folder's size): the
// trash and old versions do not count, so deleting files frees quota at
// once. Two uploads racing for the last free bytes may both pass; the
// overshoot is bounded by one upload.
func (s *Service) SpaceQuota(ctx context.Context, spaceID string, delta int64) error {
	sp, err := s.DB.SpaceByID(ctx, spaceID)
	if err != nil {
		return err
	}
	quota, err := s.SpaceQuotaBytes(ctx, sp)
	if err != nil || quota <= 0 {
		return err
	}
	used, err := s.DB.SpaceUsage(ctx, spaceID)
	if err != nil {
		return err
	}
	if used+delta > quota {
		return errorf(CodeQuotaExceeded, "Not enough space in %q: %s used of %s, and this upload needs %s more.",
			sp.Name, humanBytes(used), humanBytes(quota), humanBytes(delta))
	}
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
