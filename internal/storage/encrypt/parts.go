package encrypt

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/sio"

	"github.com/veloxhq/velox/internal/storage"
)

// uploadKey returns the data key of an upload session, creating it on the
// first part. Concurrent first parts agree through CreateBlobKey.
func (s partsStore) uploadKey(ctx context.Context, uploadID string, create bool) ([]byte, error) {
	id := uploadPrefix + uploadID
	for {
		dk, _, err := s.blobKey(ctx, id)
		if err == nil || !errors.Is(err, ErrNoKey) || !create {
			return dk, err
		}
		dk, bk, err := s.newKey(id, -1)
		if err != nil {
			return nil, err
		}
		err = s.keys.CreateBlobKey(ctx, id, bk)
		if err == nil {
			return dk, nil
		}
		if !errors.Is(err, ErrKeyExists) {
			return nil, err
		}
	}
}

// PutPart encrypts part index as its own DARE stream under the upload's
// data key (or, from part 1024 on, a key derived from it), with sequence
// numbers that bind the part's index (partCipher). sio draws a fresh random
// nonce for every stream, so a retried part never reuses a nonce.
func (s partsStore) PutPart(ctx context.Context, uploadID string, index int, r io.Reader, size int64) error {
	p := s.inner.(storage.Parts)
	if !storage.ValidKey(uploadID) {
		return fmt.Errorf("encrypt: put part of %q: %w", uploadID, storage.ErrInvalidKey)
	}
	if index < 0 || index >= storage.MaxParts {
		return fmt.Errorf("encrypt: part index %d out of range", index)
	}
	if size > maxPartSize {
		return fmt.Errorf("encrypt: part of %d bytes exceeds %d", size, maxPartSize)
	}
	dk, err := s.uploadKey(ctx, uploadID, true)
	if err != nil {
		return fmt.Errorf("encrypt: put part %d of %s: %w", index, uploadID, err)
	}
	lr := &limitErr{r: r, n: maxPartSize}
	key, seq := partCipher(dk, index)
	er, err := sio.EncryptReader(lr, config(key, seq))
	if err != nil {
		return err
	}
	return p.PutPart(ctx, uploadID, index, er, encSize(size))
}

// limitErr fails instead of stopping once more than n bytes were read.
type limitErr struct {
	r io.Reader
	n int64
}

func (l *limitErr) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errors.New("encrypt: part too large")
	}
	return n, err
}

// CompleteParts records the part layout under key's own key row (the
// upload's data key re-wrapped for key), then completes the inner upload.
func (s partsStore) CompleteParts(ctx context.Context, key, uploadID string, sizes []int64) error {
	p := s.inner.(storage.Parts)
	if !storage.ValidKey(key) {
		return fmt.Errorf("encrypt: complete %q: %w", key, storage.ErrInvalidKey)
	}
	var total int64
	enc := make([]int64, len(sizes))
	for i, n := range sizes {
		if n < 0 {
			return fmt.Errorf("encrypt: complete %s: part %d: %w", key, i, storage.ErrSizeMismatch)
		}
		// Checked on plaintext sizes, as for an unencrypted store.
		if i < len(sizes)-1 && n < storage.MinPartSize {
			return fmt.Errorf("encrypt: complete %s: part %d: %w", key, i, storage.ErrPartTooSmall)
		}
		enc[i] = encSize(n)
		total += n
	}
	var dk []byte
	var err error
	if len(sizes) == 0 {
		dk, err = newDataKey()
	} else {
		dk, err = s.uploadKey(ctx, uploadID, false)
		if errors.Is(err, ErrNoKey) {
			// No part was ever stored.
			return fmt.Errorf("encrypt: complete %s: upload %s: %w", key, uploadID, storage.ErrNotFound)
		}
	}
	if err != nil {
		return fmt.Errorf("encrypt: complete %s: %w", key, err)
	}
	kid, wrapped, err := s.ring.Wrap(key, dk)
	if err != nil {
		return err
	}
	parts := append([]int64{}, sizes...)
	if err := s.keys.PutBlobKey(ctx, key, BlobKey{KeyID: kid, Wrapped: wrapped, Size: total, Parts: parts}); err != nil {
		return fmt.Errorf("encrypt: complete %s: store data key: %w", key, err)
	}
	if err := p.CompleteParts(ctx, key, uploadID, enc); err != nil {
		// key stays untouched on failure, so its new row must go.
		if derr := s.keys.DeleteBlobKey(ctx, key); derr != nil {
			err = errors.Join(err, derr)
		}
		return err
	}
	if err := s.keys.DeleteBlobKey(ctx, uploadPrefix+uploadID); err != nil {
		return fmt.Errorf("encrypt: complete %s: drop upload key: %w", key, err)
	}
	return nil
}

// AbortParts deletes the parts, then the upload's data key.
func (s partsStore) AbortParts(ctx context.Context, uploadID string) error {
	if err := s.inner.(storage.Parts).AbortParts(ctx, uploadID); err != nil {
		return err
	}
	if err := s.keys.DeleteBlobKey(ctx, uploadPrefix+uploadID); err != nil {
		return fmt.Errorf("encrypt: abort %s: %w", uploadID, err)
	}
	return nil
}
