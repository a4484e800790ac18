package files

import "context"

// checkQuota returns an error if adding delta bytes to a space would
// exceed its quota. Quotas are configured by the identity layer through
// Quota; without it there is no limit.
func (s *Service) checkQuota(ctx context.Context, spaceID string, delta int64) error {
	if s.Quota == nil || delta <= 0 {
		return nil
	}
	return s.Quota(ctx, spaceID, delta)
}
