package encrypt

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/veloxhq/velox/internal/storage"
)

// RotateStats counts what Rotate did.
type RotateStats struct {
	Rewrapped, Current, Skipped int
}

// Rotate re-wraps every data key not wrapped by ring's active master key,
// batch rows at a time, without touching blob contents. Each row is
// replaced only if unchanged since it was read, so a concurrent upload or
// delete wins; rows are visited in ID order, so an interrupted run can
// simply be started again. progress (may be nil) is called after each
// batch.
func Rotate(ctx context.Context, keys KeyStore, ring *Keyring, batch int, progress func(RotateStats)) (RotateStats, error) {
	var st RotateStats
	if batch <= 0 {
		batch = 500
	}
	after := ""
	for {
		ids, bks, err := keys.ListBlobKeys(ctx, after, batch)
		if err != nil {
			return st, fmt.Errorf("encrypt: rotate: %w", err)
		}
		if len(ids) == 0 {
			return st, nil
		}
		for i, id := range ids {
			after = id
			bk := bks[i]
			if bk.KeyID == ring.ActiveID() {
				st.Current++
				continue
			}
			dk, err := ring.Unwrap(id, bk.KeyID, bk.Wrapped)
			if err != nil {
				return st, fmt.Errorf("encrypt: rotate: %w", err)
			}
			kid, wrapped, err := ring.Wrap(id, dk)
			if err != nil {
				return st, err
			}
			ok, err := keys.RewrapBlobKey(ctx, id, bk.Wrapped, kid, wrapped)
			if err != nil {
				return st, fmt.Errorf("encrypt: rotate %s: %w", id, err)
			}
			if ok {
				st.Rewrapped++
			} else {
				// Deleted or replaced meanwhile, under the active key.
				st.Skipped++
			}
		}
		if progress != nil {
			progress(st)
		}
	}
}

// MigrateStats counts what EncryptExisting did.
type MigrateStats struct {
	Encrypted, AlreadyEncrypted int
	Bytes                       int64
}

// EncryptExisting encrypts every blob of s's inner store that has no key
// row (written before encryption was enabled). For each such blob it
// reads the plaintext, writes the key row, and puts the ciphertext under
// the same key, which replaces the object atomically (a rename on local
// storage, an object overwrite on Swift).
//
// Between the key row and the overwrite the row says "encrypted" while
// the object is still plaintext; readers opening the blob in that window
// get ErrCorrupt (never plaintext taken for ciphertext or the reverse)
// and succeed on retry. On Swift, an overwrite becomes visible to all
// proxies within the cluster's consistency window, which widens it. A
// blob deleted meanwhile is skipped. Interrupted runs resume: blobs with
// a row are skipped, and a crash inside the window leaves a row over a
// plaintext object, which a second run detects and repairs.
func EncryptExisting(ctx context.Context, st storage.Store, progress func(MigrateStats)) (MigrateStats, error) {
	var ms MigrateStats
	s := Unwrap(st)
	if s == nil {
		return ms, errors.New("encrypt: not an encrypting store")
	}
	lister, ok := s.inner.(storage.Lister)
	if !ok {
		return ms, errors.New("encrypt: inner store cannot list its blobs")
	}
	var todo []string
	err := lister.List(ctx, func(info storage.Info) error {
		todo = append(todo, info.Key)
		return nil
	})
	if err != nil {
		return ms, fmt.Errorf("encrypt: list blobs: %w", err)
	}
	for i, key := range todo {
		done, err := s.encryptOne(ctx, key)
		if err != nil {
			return ms, err
		}
		if done >= 0 {
			ms.Encrypted++
			ms.Bytes += done
		} else {
			ms.AlreadyEncrypted++
		}
		if progress != nil && (i%100 == 99 || i == len(todo)-1) {
			progress(ms)
		}
	}
	return ms, nil
}

// encryptOne encrypts key if needed and returns its size, or -1 if it
// was already encrypted (or is gone).
func (s *Store) encryptOne(ctx context.Context, key string) (int64, error) {
	bk, err := s.keys.GetBlobKey(ctx, key)
	if err == nil {
		// A row: encrypted, unless an earlier run died before the
		// overwrite, which leaves the plaintext, whose size is the
		// row's plaintext size (a ciphertext is always longer).
		info, err := s.inner.Stat(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return -1, nil
		}
		if err != nil {
			return 0, err
		}
		if bk.Parts != nil || bk.Size <= 0 || info.Size != bk.Size {
			return -1, nil
		}
	} else if !errors.Is(err, ErrNoKey) {
		return 0, fmt.Errorf("encrypt: %s: %w", key, err)
	}
	obj, err := s.inner.Open(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	size := obj.Size()
	if err := s.Put(ctx, key, io.LimitReader(obj, size), size); err != nil {
		return 0, fmt.Errorf("encrypt: migrate %s: %w", key, err)
	}
	return size, nil
}
