package encrypt

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrNoKey is returned by a KeyStore for a blob without a key row: a blob
// written before encryption was enabled, read as plaintext.
var ErrNoKey = errors.New("encrypt: no data key for blob")

// ErrKeyExists is returned by KeyStore.CreateBlobKey when a row exists.
var ErrKeyExists = errors.New("encrypt: data key exists")

// BlobKey is what the metadata database keeps about one blob's data key.
// It holds no secret in the clear: the data key is wrapped by a master key.
type BlobKey struct {
	// KeyID names the master key that wrapped Wrapped.
	KeyID string
	// Wrapped is nonce || AES-256-GCM(master, dataKey), with the blob ID
	// as additional data so a row cannot be moved to another blob.
	Wrapped []byte
	// Size is the plaintext size, or -1 while not yet known.
	Size int64
	// Parts lists the plaintext sizes of the parts of a blob assembled
	// by CompleteParts; nil for a blob written by Put (one DARE stream).
	Parts []int64
	// Created is when the row was written; set by the KeyStore.
	Created time.Time
}

// KeyStore keeps wrapped data keys. The metadata database implements it;
// the interface lives here so that storage does not import metadata.
type KeyStore interface {
	// GetBlobKey returns the key of id, or an error wrapping ErrNoKey.
	GetBlobKey(ctx context.Context, id string) (BlobKey, error)
	// PutBlobKey stores the key of id, replacing any.
	PutBlobKey(ctx context.Context, id string, k BlobKey) error
	// CreateBlobKey stores the key of id unless one exists (ErrKeyExists).
	CreateBlobKey(ctx context.Context, id string, k BlobKey) error
	// SetBlobKeySize records the plaintext size of id.
	SetBlobKeySize(ctx context.Context, id string, size int64) error
	// DeleteBlobKey removes the key of id; a missing row is not an error.
	DeleteBlobKey(ctx context.Context, id string) error
	// ListBlobKeys returns up to limit rows with IDs above after, in ID
	// order, for rotation and sweeping.
	ListBlobKeys(ctx context.Context, after string, limit int) ([]string, []BlobKey, error)
	// RewrapBlobKey replaces the wrapping of id if it is still oldWrapped,
	// and reports whether it did; a concurrent change wins.
	RewrapBlobKey(ctx context.Context, id string, oldWrapped []byte, keyID string, wrapped []byte) (bool, error)
	// MasterKeySamples returns one row for each distinct master key ID
	// that rows are wrapped with.
	MasterKeySamples(ctx context.Context) ([]Sample, error)
}

// Sample is one blob key row and its blob ID.
type Sample struct {
	BlobID string
	BlobKey
}

// MasterKey is a 256-bit key-encryption key with an ID.
type MasterKey struct {
	ID  string
	Key []byte
}

// Keyring holds the loaded master keys; Active wraps new data keys.
type Keyring struct {
	keys   map[string][]byte
	active string
}

// NewKeyring builds a keyring. activeID names the key that wraps new data
// keys; empty means the last of keys.
func NewKeyring(keys []MasterKey, activeID string) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("encrypt: no master key loaded")
	}
	kr := &Keyring{keys: map[string][]byte{}}
	for _, k := range keys {
		if k.ID == "" || strings.ContainsAny(k.ID, ":, \t\n") {
			return nil, fmt.Errorf("encrypt: invalid master key ID %q", k.ID)
		}
		if len(k.Key) != 32 {
			return nil, fmt.Errorf("encrypt: master key %s: want 32 bytes, have %d", k.ID, len(k.Key))
		}
		if _, dup := kr.keys[k.ID]; dup {
			return nil, fmt.Errorf("encrypt: master key %s loaded twice", k.ID)
		}
		kr.keys[k.ID] = k.Key
		kr.active = k.ID
	}
	if activeID != "" {
		if _, ok := kr.keys[activeID]; !ok {
			return nil, fmt.Errorf("encrypt: active master key %s is not loaded", activeID)
		}
		kr.active = activeID
	}
	return kr, nil
}

// ActiveID returns the ID of the key that wraps new data keys.
func (kr *Keyring) ActiveID() string { return kr.active }

// Has reports whether the key id is loaded.
func (kr *Keyring) Has(id string) bool { _, ok := kr.keys[id]; return ok }

// Wrap encrypts dataKey under the active master key, bound to blobID.
func (kr *Keyring) Wrap(blobID string, dataKey []byte) (keyID string, wrapped []byte, err error) {
	aead, err := newGCM(kr.keys[kr.active])
	if err != nil {
		return "", nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, err
	}
	return kr.active, aead.Seal(nonce, nonce, dataKey, []byte(blobID)), nil
}

// Unwrap decrypts a data key wrapped by Wrap.
func (kr *Keyring) Unwrap(blobID, keyID string, wrapped []byte) ([]byte, error) {
	mk, ok := kr.keys[keyID]
	if !ok {
		return nil, fmt.Errorf("encrypt: blob %s: master key %s is not loaded", blobID, keyID)
	}
	aead, err := newGCM(mk)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < aead.NonceSize() {
		return nil, fmt.Errorf("encrypt: blob %s: wrapped key too short", blobID)
	}
	dk, err := aead.Open(nil, wrapped[:aead.NonceSize()], wrapped[aead.NonceSize():], []byte(blobID))
	if err != nil {
		return nil, fmt.Errorf("encrypt: blob %s: data key does not unwrap with master key %s (wrong key?)", blobID, keyID)
	}
	return dk, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// ParseMasterKeys parses "id:base64key" entries separated by commas or
// new lines, the format of VELOX_MASTER_KEYS and of master key files.
// Blank lines and lines starting with '#' are skipped.
func ParseMasterKeys(s string) ([]MasterKey, error) {
	var keys []MasterKey
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		f = strings.TrimSpace(f)
		if f == "" || strings.HasPrefix(f, "#") {
			continue
		}
		id, b64, ok := strings.Cut(f, ":")
		if !ok {
			return nil, errors.New("encrypt: master key entry is not id:base64key")
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			// The error would quote key material; say only where.
			return nil, fmt.Errorf("encrypt: master key %s: not valid base64", id)
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("encrypt: master key %s: want 32 bytes, have %d", id, len(key))
		}
		keys = append(keys, MasterKey{ID: strings.TrimSpace(id), Key: key})
	}
	return keys, nil
}

// LoadMasterKeyFile reads the keys of one file.
func LoadMasterKeyFile(path string) ([]MasterKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	keys, err := ParseMasterKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("master key file %s: no key in it", path)
	}
	return keys, nil
}

// GenerateMasterKeyFile writes a new random master key to path (mode 0600),
// failing if the file exists, and returns it.
func GenerateMasterKeyFile(path string, now time.Time) (MasterKey, error) {
	k := MasterKey{Key: make([]byte, 32)}
	var suffix [3]byte
	if _, err := rand.Read(k.Key); err != nil {
		return k, err
	}
	if _, err := rand.Read(suffix[:]); err != nil {
		return k, err
	}
	k.ID = fmt.Sprintf("%s-%x", now.UTC().Format("20060102"), suffix)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return k, fmt.Errorf("master key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "# Velox master key: losing it loses every encrypted file.\n%s:%s\n", k.ID, base64.StdEncoding.EncodeToString(k.Key))
	if cerr := f.Sync(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return k, fmt.Errorf("master key file: %w", err)
	}
	return k, nil
}

// CheckKeys returns an error naming every master key ID that rows in ks
// use but kr lacks, or a loaded key that fails to unwrap its rows, so a missing or wrong key fails at start-up rather
// than on the first download.
func CheckKeys(ctx context.Context, ks KeyStore, kr *Keyring) error {
	samples, err := ks.MasterKeySamples(ctx)
	if err != nil {
		return fmt.Errorf("encrypt: list master key IDs in use: %w", err)
	}
	var missing []string
	for _, s := range samples {
		if !kr.Has(s.KeyID) {
			missing = append(missing, s.KeyID)
			continue
		}
		// Same ID, different bytes: a wrong key file.
		if _, err := kr.Unwrap(s.BlobID, s.KeyID, s.Wrapped); err != nil {
			return fmt.Errorf("encrypt: master key %s is wrong: %w", s.KeyID, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("encrypt: data keys are wrapped with master key(s) %s, which are not loaded (check encryption.master_key_files / VELOX_MASTER_KEYS)", strings.Join(missing, ", "))
	}
	return nil
}
