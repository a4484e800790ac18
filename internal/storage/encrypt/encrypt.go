// Package encrypt wraps a storage.Store so that every blob is encrypted
// before it reaches the backend, with DARE 2.0 from github.com/minio/sio
// (AES-256-GCM, or ChaCha20-Poly1305 on CPUs without AES instructions).
//
// Each blob has its own random 256-bit data key. The data key is stored,
// wrapped by a master key (AES-256-GCM, with the blob ID as additional
// data), in a KeyStore (the metadata database). Master keys never reach
// the KeyStore, so rotating one re-wraps data keys without touching blob
// contents.
//
// Ordering: Put writes the key row before the object and Delete removes
// the object before the key row, so a crash leaves at worst a key row
// without an object (removed by Sweep), never a visible blob without its
// key. A blob without a key row was written before encryption was enabled
// and is read as plaintext, until EncryptExisting migrates it.
//
// Layout: a blob written by Put is one DARE stream whose packages carry
// 64 KiB of plaintext and 32 bytes of header and tag, sequence numbers
// from 0. A blob made by CompleteParts is the concatenation of one DARE
// stream per part, all under the blob's data key; part i's sequence
// numbers start at i<<22, so parts cannot be swapped or reordered without
// failing authentication. Every stream starts from a fresh random 96-bit
// nonce (sio draws one per stream), so a retried part never reuses a
// (key, nonce) pair for different plaintext.
package encrypt

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/minio/sio"

	"github.com/veloxhq/velox/internal/storage"
)

const (
	payloadSize = 64 << 10
	overhead    = 32 // DARE 2.0 header (16) + tag (16) per package
	packageSize = payloadSize + overhead
	// partSeqShift spaces the sequence numbers of parts: 1<<22 packages
	// (256 GiB) per part, and 1<<10 parts fit in sio's 32-bit counter
	// (see partCipher for the parts beyond).
	partSeqShift = 22
	partsPerKey  = 1 << (32 - partSeqShift)
	maxPartSize  = int64(1<<partSeqShift) * payloadSize
	// uploadPrefix names the key rows of unfinished uploads; ':' is not
	// allowed in blob keys, so these cannot collide with blob IDs.
	uploadPrefix = "upload:"
)

// Store encrypts the blobs of an inner store.
type Store struct {
	inner  storage.Store
	keys   KeyStore
	ring   *Keyring
	logger *slog.Logger
}

// partsStore is a Store over an inner store with storage.Parts.
type partsStore struct{ *Store }

var (
	_ storage.Store   = (*Store)(nil)
	_ storage.Lister  = (*Store)(nil)
	_ storage.Checker = (*Store)(nil)
	_ storage.Sweeper = (*Store)(nil)
	_ storage.Parts   = partsStore{}
)

// New wraps inner. Keys are kept in keys, wrapped by ring's active master
// key. The result implements storage.Parts when inner does. logger (may be
// nil) receives an entry naming each blob that fails authentication.
func New(inner storage.Store, keys KeyStore, ring *Keyring, logger *slog.Logger) storage.Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{inner: inner, keys: keys, ring: ring, logger: logger}
	if _, ok := inner.(storage.Parts); ok {
		return partsStore{s}
	}
	return s
}

// Unwrap returns the *Store behind a store returned by New, or nil.
func Unwrap(s storage.Store) *Store {
	switch s := s.(type) {
	case *Store:
		return s
	case partsStore:
		return s.Store
	}
	return nil
}

// Inner returns the wrapped store.
func (s *Store) Inner() storage.Store { return s.inner }

func config(dataKey []byte, seq uint32) sio.Config {
	return sio.Config{
		MinVersion:     sio.Version20,
		MaxVersion:     sio.Version20,
		Key:            dataKey,
		SequenceNumber: seq,
	}
}

// partCipher returns the key and first sequence number of part index of a
// blob with data key dk. Parts 0 to 1023 use dk, with sequence numbers
// from index<<22. Later parts use a key derived from dk for each group of
// 1024 parts, with the same numbering within the group. Either way a
// part's position is bound into its ciphertext: moved to another index, it
// fails authentication instead of decrypting out of place. Parts below
// 1024 keep dk, so blobs stored before larger uploads were allowed read
// as they always did.
func partCipher(dk []byte, index int) ([]byte, uint32) {
	seq := uint32(index%partsPerKey) << partSeqShift
	group := index / partsPerKey
	if group == 0 {
		return dk, seq
	}
	info := binary.BigEndian.AppendUint64([]byte("velox part group "), uint64(group))
	k, err := hkdf.Key(sha256.New, dk, nil, string(info), len(dk))
	if err != nil {
		// Only for lengths HKDF cannot produce; data keys are 32 bytes.
		panic("encrypt: derive part key: " + err.Error())
	}
	return k, seq
}

func newDataKey() ([]byte, error) {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	return k, err
}

// encSize is the ciphertext size of size plaintext bytes, -1 for -1.
func encSize(size int64) int64 {
	if size < 0 {
		return -1
	}
	n, err := sio.EncryptedSize(uint64(size))
	if err != nil {
		return -1
	}
	return int64(n)
}

// newKey makes and wraps a data key for id.
func (s *Store) newKey(id string, size int64) ([]byte, BlobKey, error) {
	dk, err := newDataKey()
	if err != nil {
		return nil, BlobKey{}, err
	}
	kid, wrapped, err := s.ring.Wrap(id, dk)
	if err != nil {
		return nil, BlobKey{}, err
	}
	return dk, BlobKey{KeyID: kid, Wrapped: wrapped, Size: size}, nil
}

// Put encrypts r into key. The key row is written first.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if !storage.ValidKey(key) {
		return fmt.Errorf("encrypt: put %q: %w", key, storage.ErrInvalidKey)
	}
	dk, bk, err := s.newKey(key, size)
	if err != nil {
		return fmt.Errorf("encrypt: put %s: %w", key, err)
	}
	if err := s.keys.PutBlobKey(ctx, key, bk); err != nil {
		return fmt.Errorf("encrypt: put %s: store data key: %w", key, err)
	}
	cr := &countReader{r: r}
	er, err := sio.EncryptReader(cr, config(dk, 0))
	if err != nil {
		return fmt.Errorf("encrypt: put %s: %w", key, err)
	}
	pr := pipelined(er)
	err = s.inner.Put(ctx, key, pr, encSize(size))
	pr.Close()
	if err != nil {
		// The row may describe an older object under key (an overwrite);
		// leave it to Sweep rather than guess.
		return err
	}
	if size < 0 {
		if err := s.keys.SetBlobKeySize(ctx, key, cr.n); err != nil {
			return fmt.Errorf("encrypt: put %s: record size: %w", key, err)
		}
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// blobKey loads and unwraps the key of id; ErrNoKey means plaintext.
func (s *Store) blobKey(ctx context.Context, id string) ([]byte, BlobKey, error) {
	bk, err := s.keys.GetBlobKey(ctx, id)
	if err != nil {
		return nil, bk, err
	}
	dk, err := s.ring.Unwrap(id, bk.KeyID, bk.Wrapped)
	return dk, bk, err
}

// Open returns a decrypting reader of key.
func (s *Store) Open(ctx context.Context, key string) (storage.Object, error) {
	dk, bk, err := s.blobKey(ctx, key)
	if errors.Is(err, ErrNoKey) {
		return s.inner.Open(ctx, key)
	}
	if err != nil {
		return nil, fmt.Errorf("encrypt: open %s: %w", key, err)
	}
	inner, err := s.inner.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	l, err := s.layout(key, bk, inner.Size())
	if err != nil {
		inner.Close()
		return nil, err
	}
	return &object{s: s, key: key, inner: inner, dk: dk, l: l, innerPos: 0}, nil
}

// layout checks the ciphertext size against the key row and returns where
// each part's stream lies.
func (s *Store) layout(key string, bk BlobKey, cipherSize int64) (*layout, error) {
	parts := bk.Parts
	if parts == nil {
		n, err := sio.DecryptedSize(uint64(cipherSize))
		if err != nil || (bk.Size >= 0 && int64(n) != bk.Size) {
			return nil, s.corrupt(key, fmt.Errorf("stored size %d does not match the recorded plaintext size %d", cipherSize, bk.Size))
		}
		parts = []int64{int64(n)}
	}
	l := &layout{parts: parts}
	var p, c int64
	for _, n := range parts {
		l.pstart = append(l.pstart, p)
		l.cstart = append(l.cstart, c)
		p += n
		c += encSize(n)
	}
	l.size = p
	if c != cipherSize {
		return nil, s.corrupt(key, fmt.Errorf("stored size %d, want %d", cipherSize, c))
	}
	return l, nil
}

// corrupt wraps ErrCorrupt and logs the blob, once per detection.
func (s *Store) corrupt(key string, err error) error {
	s.logger.Error("encrypted blob failed its integrity check", "blob", key, "err", err)
	return fmt.Errorf("encrypt: blob %s: %w: %v", key, storage.ErrCorrupt, err)
}

// Stat returns the plaintext size of key.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	info, err := s.inner.Stat(ctx, key)
	if err != nil {
		return info, err
	}
	bk, err := s.keys.GetBlobKey(ctx, key)
	if errors.Is(err, ErrNoKey) {
		return info, nil
	}
	if err != nil {
		return info, fmt.Errorf("encrypt: stat %s: %w", key, err)
	}
	l, err := s.layout(key, bk, info.Size)
	if err != nil {
		return info, err
	}
	info.Size = l.size
	return info, nil
}

// Delete removes the object, then its key row.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.inner.Delete(ctx, key); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			// An orphan row from a crashed Put goes too.
			if derr := s.keys.DeleteBlobKey(ctx, key); derr != nil {
				return fmt.Errorf("encrypt: delete %s: %w", key, derr)
			}
		}
		return err
	}
	if err := s.keys.DeleteBlobKey(ctx, key); err != nil {
		return fmt.Errorf("encrypt: delete key of %s: %w", key, err)
	}
	return nil
}

// List lists the inner store's keys. Sizes are those of the stored
// (encrypted) objects; the garbage collector needs only the keys.
func (s *Store) List(ctx context.Context, fn func(storage.Info) error) error {
	l, ok := s.inner.(storage.Lister)
	if !ok {
		return errors.New("encrypt: inner store cannot list")
	}
	return l.List(ctx, fn)
}

// Check checks the inner store.
func (s *Store) Check(ctx context.Context) error {
	if c, ok := s.inner.(storage.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// Sweep sweeps the inner store, then deletes key rows older than
// olderThan whose object does not exist (left by a crash between writing
// the row and the object). Rows of unfinished uploads are kept: their
// sessions end with CompleteParts or AbortParts.
func (s *Store) Sweep(ctx context.Context, olderThan time.Time) error {
	if sw, ok := s.inner.(storage.Sweeper); ok {
		if err := sw.Sweep(ctx, olderThan); err != nil {
			return err
		}
	}
	after := ""
	for {
		ids, bks, err := s.keys.ListBlobKeys(ctx, after, 500)
		if err != nil {
			return fmt.Errorf("encrypt: sweep keys: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		for i, id := range ids {
			after = id
			if strings.HasPrefix(id, uploadPrefix) || !bks[i].Created.Before(olderThan) {
				continue
			}
			if _, err := s.inner.Stat(ctx, id); errors.Is(err, storage.ErrNotFound) {
				if err := s.keys.DeleteBlobKey(ctx, id); err != nil {
					return fmt.Errorf("encrypt: sweep key of %s: %w", id, err)
				}
			} else if err != nil {
				return fmt.Errorf("encrypt: sweep keys: %w", err)
			}
		}
	}
}
