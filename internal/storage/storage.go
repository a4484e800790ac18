// Package storage defines how file contents are kept: immutable blobs
// addressed by opaque keys. The file tree and everything else about a file
// lives in package metadata; a Store never sees a path or a file name.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

var (
	// ErrNotFound is returned when a key does not exist.
	ErrNotFound = errors.New("storage: object not found")
	// ErrSizeMismatch is returned by Put when the reader yields a different
	// number of bytes than the declared size. Nothing is stored in that case.
	ErrSizeMismatch = errors.New("storage: size does not match declared size")
	// ErrUnavailable wraps failures to reach the backend at all, so the API
	// can answer 503 instead of 500.
	ErrUnavailable = errors.New("storage: backend unavailable")
	// ErrInvalidKey is returned for keys outside the allowed alphabet.
	ErrInvalidKey = errors.New("storage: invalid key")
	// ErrPartTooSmall is returned by Parts.CompleteParts when a part other
	// than the last is smaller than MinPartSize.
	ErrPartTooSmall = errors.New("storage: upload part too small")
	// ErrCorrupt is returned when stored bytes fail an integrity check,
	// such as an encrypted blob that was altered or truncated. Readers
	// get this error instead of altered data.
	ErrCorrupt = errors.New("storage: blob is corrupt")
)

// Store keeps immutable blobs addressed by key. Implementations must be safe
// for concurrent use, and a blob must never be visible under its key before
// all of its bytes are durably stored.
type Store interface {
	// Put stores the bytes of r under key. size is the exact length, or -1
	// when unknown. If r returns an error, or yields a different number of
	// bytes than size, Put returns an error and stores nothing.
	// Keys are never overwritten by callers; writing an existing key
	// replaces it atomically.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Open returns the blob for reading, or ErrNotFound. The caller must
	// Close it. The Object is seekable so that ranges can be served without
	// reading the bytes before them.
	Open(ctx context.Context, key string) (Object, error)
	// Stat returns the blob's size, or ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes key. Deleting a missing key returns ErrNotFound.
	Delete(ctx context.Context, key string) error
}

// Object is a readable blob. Seek lets http.ServeContent serve ranges; a
// Seek must not read the skipped bytes.
type Object interface {
	io.ReadSeekCloser
	Size() int64
}

// Nexter is a reader that hands out its own buffers instead of copying
// into the caller's. An encrypted Object is one: it decrypts ahead into
// buffers of its own, which a download writes to the client as they are;
// a second read-ahead in front of it would only copy its bytes once more.
type Nexter interface {
	// Next returns up to max of the next bytes, valid until the next call
	// of any of the reader's methods.
	Next(max int) ([]byte, error)
}

// Info describes a stored blob.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Lister is implemented by stores that can enumerate their keys, which the
// garbage collector needs to find blobs no metadata references.
type Lister interface {
	// List calls fn for every stored key, in no particular order, until fn
	// returns an error (which List returns) or every key was visited.
	List(ctx context.Context, fn func(Info) error) error
}

// Sweeper is implemented by stores that keep objects of their own beside
// blobs, such as temporary files or the segments of large objects, which a
// crash in the middle of a write leaves behind. The garbage collector calls
// Sweep now and then.
type Sweeper interface {
	// Sweep deletes such leftovers last modified before olderThan. Writes
	// in progress must not be older than that, so callers pass a time well
	// in the past, such as a day ago. Parts of resumable uploads are not
	// leftovers: their sessions end with CompleteParts or AbortParts.
	Sweep(ctx context.Context, olderThan time.Time) error
}

// Checker is implemented by stores that can tell whether their backend is
// reachable; /readyz uses it.
type Checker interface {
	Check(ctx context.Context) error
}

// MinPartSize is the smallest size of every part of a Parts upload except
// the last. Swift serves large objects made of smaller segments slowly (SLO
// rate-limits segments under 1 MiB), so upload clients must send chunks of
// at least this size; 1 MiB also keeps the number of parts of a big file
// manageable.
const MinPartSize = 1 << 20

// MaxParts bounds the number of parts of a Parts upload. It is 10,000 so
// that clients choosing small chunks (the Nextcloud desktop client sends
// 10 MB chunks) can still upload files of 100 GB; Swift, which takes at
// most 1000 segments per manifest by default, then writes a manifest of
// manifests.
const MaxParts = 10000

// Parts is implemented by stores that can assemble a blob from parts
// uploaded separately, in any order and with retries, as resumable upload
// sessions need. uploadID names a session; it follows the rules of
// ValidKey and is chosen by the caller, who must not reuse it.
//
// Parts of an upload that is never completed stay stored until AbortParts
// is called, so callers keep track of open sessions and abort stale ones.
type Parts interface {
	// PutPart stores part number index (0-based, below MaxParts) of
	// uploadID. size is the exact length, or -1 when unknown; as with
	// Store.Put, a reader error or size mismatch stores nothing. Putting a
	// part again replaces it.
	PutPart(ctx context.Context, uploadID string, index int, r io.Reader, size int64) error
	// CompleteParts makes key from parts 0..len(sizes)-1 in order,
	// sizes[i] being the size of part i, without copying the bytes again
	// where the backend allows it (Swift writes only a manifest over the
	// parts). The blob becomes visible under key only when complete.
	// Parts with a higher index may be left behind, so callers should not
	// store more parts than they complete.
	//
	// It returns an error wrapping ErrNotFound if a part is missing,
	// ErrSizeMismatch if a stored part's size differs from sizes[i], and
	// ErrPartTooSmall if a part but the last is below MinPartSize; key is
	// left untouched then. After success the parts belong to key (deleting
	// key removes them) and AbortParts must not be called for uploadID.
	CompleteParts(ctx context.Context, key, uploadID string, sizes []int64) error
	// AbortParts deletes every stored part of uploadID. Aborting an
	// unknown or already aborted upload is not an error.
	AbortParts(ctx context.Context, uploadID string) error
}

// ValidKey reports whether key uses only the characters stores accept:
// lower-case ASCII letters, digits, '-', '_' and '.', 1 to 128 bytes, not
// starting with '.'. Keys are generated by Velox, never by users, so a strict
// alphabet keeps them safe as file names and object names everywhere.
func ValidKey(key string) bool {
	if len(key) == 0 || len(key) > 128 || key[0] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
