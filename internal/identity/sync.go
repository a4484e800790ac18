package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/veloxhq/velox/internal/metadata"
)

// SyncResult reports one directory sync.
type SyncResult struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	// Listed is how many users the directory returned.
	Listed int `json:"listed"`
	// Known is how many Velox accounts belong to the directory.
	Known    int `json:"known"`
	Updated  int `json:"updated"`
	Disabled int `json:"disabled"`
	// Enabled counts accounts the sync had disabled that the directory
	// lists as active again.
	Enabled int `json:"enabled"`
	// Skipped explains why users missing from the directory were not
	// disabled, if they were not.
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Safety limits for disabling users the directory no longer lists: a
// sync that would disable more than maxMissingFraction of the known
// directory users, and more than minMissing of them, is far more likely a
// changed base DN, filter or service account than a mass departure.
const (
	maxMissingFraction = 0.2
	minMissing         = 5
	syncActor          = "directory-sync"
)

// Sync copies the directory's users and group memberships into Velox:
// groups of users already provisioned are refreshed, users the directory
// marks disabled or locked are disabled and signed out, and users it no
// longer lists are disabled — unless the listing failed or shrank
// suspiciously, in which case nobody is disabled. Users the sync disabled
// whom the directory lists as active again are enabled; users an
// administrator disabled stay disabled. Users who never signed
// in are not created; they are provisioned at first login.
func (s *Service) Sync(ctx context.Context) (SyncResult, error) {
	res := SyncResult{Started: s.DB.Now().UTC()}
	defer func() {
		res.Duration = s.DB.Now().Sub(res.Started)
		s.syncMu.Lock()
		r := res
		s.lastSync = &r
		s.syncMu.Unlock()
	}()
	if s.Directory == nil {
		res.Error = "no directory is configured"
		return res, errors.New("identity: no directory configured")
	}
	provider := s.Directory.Name()
	listed, err := s.Directory.ListUsers(ctx)
	if err != nil {
		res.Error = err.Error()
		s.audit(ctx, metadata.AuditEvent{Actor: syncActor, Action: "directory.sync", Provider: provider, Outcome: "failure",
			Details: details("error", err.Error())})
		return res, fmt.Errorf("identity: sync: %w", err)
	}
	res.Listed = len(listed)
	known, err := s.DB.UsersByProvider(ctx, provider)
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	res.Known = len(known)
	byName := make(map[string]int, len(listed))
	for i, du := range listed {
		byName[strings.ToLower(du.Username)] = i
	}
	var missing []*metadata.User
	active := 0
	for _, u := range known {
		if !u.Disabled {
			active++
		}
		i, ok := byName[strings.ToLower(u.Username)]
		if !ok {
			if !u.Disabled {
				missing = append(missing, u)
			}
			continue
		}
		du := listed[i]
		err := s.DB.WithTx(ctx, func(tx *metadata.Tx) error {
			if err := tx.SetProfile(ctx, u.ID, du.DisplayName, du.Email); err != nil {
				return err
			}
			return tx.SetUserGroups(ctx, u.ID, provider, du.Groups)
		})
		if err != nil {
			res.Error = err.Error()
			return res, fmt.Errorf("identity: sync %s: %w", u.Username, err)
		}
		res.Updated++
		if !du.Disabled && !du.Locked && u.Disabled && u.DisabledBy == metadata.DisabledByDirectory {
			if err := s.reenable(ctx, u, syncActor); err != nil {
				return res, err
			}
			res.Enabled++
		}
		if (du.Disabled || du.Locked) && !u.Disabled {
			why := "disabled in the directory"
			if du.Locked {
				why = "locked in the directory"
			}
			if err := s.disable(ctx, u, why); err != nil {
				return res, err
			}
			res.Disabled++
		}
	}
	switch {
	case len(missing) == 0:
	case len(listed) == 0:
		res.Skipped = "the directory listed no users at all"
	case len(missing) > minMissing && float64(len(missing)) > maxMissingFraction*float64(active):
		res.Skipped = fmt.Sprintf("%d of %d directory users are missing from the listing; check the base DN and filter", len(missing), active)
	default:
		for _, u := range missing {
			if err := s.disable(ctx, u, "no longer in the directory"); err != nil {
				return res, err
			}
			res.Disabled++
		}
	}
	if res.Skipped != "" {
		s.Logger.Warn("directory sync did not disable missing users", "reason", res.Skipped)
	}
	s.audit(ctx, metadata.AuditEvent{Actor: syncActor, Action: "directory.sync", Provider: provider, Outcome: "success",
		Details: details("listed", fmt.Sprint(res.Listed), "updated", fmt.Sprint(res.Updated), "disabled", fmt.Sprint(res.Disabled),
			"enabled", fmt.Sprint(res.Enabled), "skipped", res.Skipped)})
	return res, nil
}

// disable blocks a user and signs them out everywhere.
func (s *Service) disable(ctx context.Context, u *metadata.User, why string) error {
	err := s.DB.WithTx(ctx, func(tx *metadata.Tx) error {
		if err := tx.SetDisabled(ctx, u.ID, true, metadata.DisabledByDirectory); err != nil {
			return err
		}
		return tx.DeleteUserSessions(ctx, u.ID)
	})
	if err != nil {
		return err
	}
	s.audit(ctx, metadata.AuditEvent{Actor: syncActor, Action: "user.disable", Target: u.Username, Provider: u.Provider,
		Outcome: "success", Details: details("reason", why)})
	return nil
}

// reenable enables an account the directory sync had disabled, once the
// directory shows the user active again (actor: the sync, or the user
// signing in through the directory).
func (s *Service) reenable(ctx context.Context, u *metadata.User, actor string) error {
	if err := s.DB.SetDisabled(ctx, u.ID, false, ""); err != nil {
		return err
	}
	u.Disabled, u.DisabledBy = false, ""
	s.audit(ctx, metadata.AuditEvent{Actor: actor, Action: "user.enable", Target: u.Username, Provider: u.Provider,
		Outcome: "success", Details: details("reason", "active in the directory again")})
	return nil
}

// LastSync returns the result of this node's last sync, or nil.
func (s *Service) LastSync() *SyncResult {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.lastSync
}

// RunSync syncs every interval on whichever app node holds the
// "directory-sync" lease, until ctx ends.
func (s *Service) RunSync(ctx context.Context, holder string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The lease outlives the interval a little, so two nodes whose
		// tickers drift never both run the same round.
		ok, err := s.DB.AcquireLease(ctx, "directory-sync", holder, interval+time.Minute)
		if err != nil || !ok {
			continue
		}
		res, err := s.Sync(ctx)
		if err != nil {
			s.Logger.Warn("directory sync failed", "err", err)
			continue
		}
		s.Logger.Info("directory synced", "listed", res.Listed, "updated", res.Updated, "disabled", res.Disabled, "duration", res.Duration)
	}
}
