package swift

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/veloxhq/velox/internal/storage"
)

// Parts of resumable uploads are stored as objects
// parts/<uploadID>/<index> in the segment container of uploadID, and
// become the segments of the finished blob.

func (s *Store) partPrefix(uploadID string) string { return "parts/" + uploadID + "/" }

func (s *Store) partName(uploadID string, index int) string {
	return fmt.Sprintf("%s%08d", s.partPrefix(uploadID), index)
}

// PutPart implements storage.Parts. The part is streamed to Swift; a part
// of unknown size is sent chunked, and a reader error aborts the request
// so Swift keeps nothing of it.
func (s *Store) PutPart(ctx context.Context, uploadID string, index int, r io.Reader, size int64) error {
	if !storage.ValidKey(uploadID) {
		return fmt.Errorf("swift: put part of %q: %w", uploadID, storage.ErrInvalidKey)
	}
	if index < 0 || index >= storage.MaxParts {
		return fmt.Errorf("swift: put part %d of %s: index outside [0, %d)", index, uploadID, storage.MaxParts)
	}
	if size > maxObjectSize {
		return fmt.Errorf("swift: put part %d of %s: %d bytes is above Swift's limit", index, uploadID, size)
	}
	name := s.partName(uploadID, index)
	_, err := s.putStream(ctx, s.segmentContainer(uploadID), name, ctxReader{ctx, r}, size)
	return translate("put part", name, err)
}

// CompleteParts implements storage.Parts. It checks every part with a HEAD,
// then writes a Static Large Object manifest listing the parts, with their
// sizes and ETags so that Swift refuses it if a part changed meanwhile.
func (s *Store) CompleteParts(ctx context.Context, key, uploadID string, sizes []int64) error {
	if !storage.ValidKey(key) || !storage.ValidKey(uploadID) {
		return fmt.Errorf("swift: complete %q from %q: %w", key, uploadID, storage.ErrInvalidKey)
	}
	if len(sizes) > storage.MaxParts {
		return fmt.Errorf("swift: complete %s: %d parts, at most %d allowed", key, len(sizes), storage.MaxParts)
	}
	var total int64
	for i, n := range sizes {
		if n < 0 {
			return fmt.Errorf("swift: complete %s: part %d has negative size: %w", key, i, storage.ErrSizeMismatch)
		}
		if i < len(sizes)-1 && n < storage.MinPartSize {
			return fmt.Errorf("swift: complete %s: part %d has %d bytes: %w", key, i, n, storage.ErrPartTooSmall)
		}
		total += n
	}
	container := s.segmentContainer(uploadID)
	segs := make([]segment, len(sizes))
	err := s.forEach(ctx, len(sizes), func(i int) error {
		name := s.partName(uploadID, i)
		h, err := s.head(ctx, container, name)
		if err != nil {
			return translate("complete: part", name, err)
		}
		got, err := objectSize(h)
		if err != nil {
			return translate("complete: part", name, err)
		}
		if got != sizes[i] {
			return fmt.Errorf("swift: complete %s: part %d has %d bytes, want %d: %w", key, i, got, sizes[i], storage.ErrSizeMismatch)
		}
		segs[i] = segment{Path: container + "/" + name, Etag: strings.Trim(h["Etag"], `"`), Size: got}
		return nil
	})
	if err != nil {
		return err
	}
	if total == 0 {
		// SLO has no empty segments; an empty blob is a plain object.
		if err := s.putBytes(ctx, s.container(key), key, nil, nil); err != nil {
			return translate("complete", key, err)
		}
		return s.AbortParts(ctx, uploadID)
	}
	if segs[len(segs)-1].Size == 0 {
		segs = segs[:len(segs)-1]
	}
	// Sub-manifests, if any, live beside the parts, so AbortParts after
	// a failure here removes them with the parts.
	_, err = s.putManifest(ctx, key, container, s.partPrefix(uploadID), segs)
	if isStatus(err, http.StatusBadRequest) {
		// Swift checked the parts again and found one missing or changed.
		err = fmt.Errorf("%w: %w", storage.ErrSizeMismatch, err)
	}
	return translate("complete", key, err)
}

// AbortParts implements storage.Parts. It finds the parts by listing, which
// in Swift can lag a moment behind very recent uploads.
func (s *Store) AbortParts(ctx context.Context, uploadID string) error {
	if !storage.ValidKey(uploadID) {
		return fmt.Errorf("swift: abort %q: %w", uploadID, storage.ErrInvalidKey)
	}
	container := s.segmentContainer(uploadID)
	var names []string
	err := s.list(ctx, container, s.partPrefix(uploadID), func(e listEntry) error {
		names = append(names, e.Name)
		return nil
	})
	if isStatus(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return translate("abort", uploadID, err)
	}
	err = s.forEach(ctx, len(names), func(i int) error {
		err := s.deleteObject(ctx, container, names[i], false)
		if isStatus(err, http.StatusNotFound) {
			return nil
		}
		return err
	})
	return translate("abort", uploadID, err)
}
