package encrypt

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// MemKeys is a KeyStore in memory, for tests and tools.
type MemKeys struct {
	mu   sync.Mutex
	rows map[string]BlobKey
}

var _ KeyStore = (*MemKeys)(nil)

// NewMemKeys returns an empty MemKeys.
func NewMemKeys() *MemKeys { return &MemKeys{rows: map[string]BlobKey{}} }

func (m *MemKeys) GetBlobKey(_ context.Context, id string) (BlobKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.rows[id]
	if !ok {
		return k, fmt.Errorf("%s: %w", id, ErrNoKey)
	}
	return k, nil
}

func (m *MemKeys) PutBlobKey(_ context.Context, id string, k BlobKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k.Created = time.Now()
	m.rows[id] = k
	return nil
}

func (m *MemKeys) CreateBlobKey(_ context.Context, id string, k BlobKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[id]; ok {
		return ErrKeyExists
	}
	k.Created = time.Now()
	m.rows[id] = k
	return nil
}

func (m *MemKeys) SetBlobKeySize(_ context.Context, id string, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.rows[id]; ok {
		k.Size = size
		m.rows[id] = k
	}
	return nil
}

func (m *MemKeys) DeleteBlobKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rows, id)
	return nil
}

func (m *MemKeys) ListBlobKeys(_ context.Context, after string, limit int) ([]string, []BlobKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.rows {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	ks := make([]BlobKey, len(ids))
	for i, id := range ids {
		ks[i] = m.rows[id]
	}
	return ids, ks, nil
}

func (m *MemKeys) RewrapBlobKey(_ context.Context, id string, oldWrapped []byte, keyID string, wrapped []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.rows[id]
	if !ok || !bytes.Equal(k.Wrapped, oldWrapped) {
		return false, nil
	}
	k.KeyID, k.Wrapped = keyID, wrapped
	m.rows[id] = k
	return true, nil
}

func (m *MemKeys) MasterKeySamples(context.Context) ([]Sample, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []Sample
	for id, k := range m.rows {
		if !seen[k.KeyID] {
			seen[k.KeyID] = true
			out = append(out, Sample{BlobID: id, BlobKey: k})
		}
	}
	return out, nil
}
