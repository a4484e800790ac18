package encrypt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/storagetest"
)

func TestPartCipher(t *testing.T) {
	dk := storagetest.Random(32)
	// The first 1024 parts keep the layout blobs were written with.
	for _, i := range []int{0, 1, 1023} {
		if k, seq := partCipher(dk, i); !bytes.Equal(k, dk) || seq != uint32(i)<<22 {
			t.Errorf("part %d: key changed or seq %#x", i, seq)
		}
	}
	// Later groups of 1024 each get their own key; (key, seq) never repeats.
	seen := map[string]int{}
	for _, i := range []int{0, 5, 1024, 1029, 2048, 2053, storage.MaxParts - 1} {
		k, seq := partCipher(dk, i)
		id := fmt.Sprintf("%x/%d", k, seq)
		if j, dup := seen[id]; dup {
			t.Errorf("parts %d and %d share key and sequence numbers", j, i)
		}
		seen[id] = i
		if i >= 1024 && bytes.Equal(k, dk) {
			t.Errorf("part %d uses the data key itself", i)
		}
	}
	if a, _ := partCipher(dk, 1024); !bytes.Equal(a, func() []byte { k, _ := partCipher(dk, 2047); return k }()) {
		t.Error("parts of one group have different keys")
	}
}

// memParts is an in-memory inner store with Parts that, unlike the real
// backends, accepts tiny parts, so that a test can cross part 1024
// without writing a gigabyte.
type memParts struct {
	mu    sync.Mutex
	blobs map[string][]byte
	parts map[string]map[int][]byte
}

func (m *memParts) Put(_ context.Context, key string, r io.Reader, _ int64) error {
	b, err := io.ReadAll(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[key] = b
	return err
}

func (m *memParts) Open(_ context.Context, key string) (storage.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[key]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return memObject{bytes.NewReader(b)}, nil
}

type memObject struct{ *bytes.Reader }

func (memObject) Close() error { return nil }

func (m *memParts) Stat(_ context.Context, key string) (storage.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[key]
	if !ok {
		return storage.Info{}, storage.ErrNotFound
	}
	return storage.Info{Key: key, Size: int64(len(b))}, nil
}

func (m *memParts) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, key)
	return nil
}

func (m *memParts) List(context.Context, func(storage.Info) error) error { return nil }

func (m *memParts) PutPart(_ context.Context, id string, index int, r io.Reader, _ int64) error {
	b, err := io.ReadAll(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.parts[id] == nil {
		m.parts[id] = map[int][]byte{}
	}
	m.parts[id][index] = b
	return err
}

// CompleteParts concatenates the parts; sizes are not checked.
func (m *memParts) CompleteParts(_ context.Context, key, id string, sizes []int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b []byte
	for i := range sizes {
		b = append(b, m.parts[id][i]...)
	}
	m.blobs[key] = b
	return nil
}

func (m *memParts) AbortParts(_ context.Context, id string) error { return nil }

// TestManyParts stores an upload of 1,100 parts (over a store that takes
// tiny parts), reads it back whole and in ranges around part 1024, where
// keys change, and checks that parts moved to another index, within a
// group or across groups, fail as corrupt.
func TestManyParts(t *testing.T) {
	ctx := context.Background()
	inner := &memParts{blobs: map[string][]byte{}, parts: map[string]map[int][]byte{}}
	keys := NewMemKeys()
	kr, err := NewKeyring([]MasterKey{{ID: "k1", Key: storagetest.Random(32)}}, "")
	if err != nil {
		t.Fatal(err)
	}
	s := New(inner, keys, kr, nil).(partsStore)

	const n, size = 1100, 100
	data := storagetest.Random(n * size)
	id, key := storagetest.Key(), storagetest.Key()
	sizes := make([]int64, n)
	for i := range n {
		sizes[i] = size
		if err := s.PutPart(ctx, id, i, bytes.NewReader(data[i*size:(i+1)*size]), size); err != nil {
			t.Fatal(err)
		}
	}
	// CompleteParts refuses parts this small (storage.MinPartSize), so
	// write what it would: the layout under key's own key row.
	dk, err := s.uploadKey(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	kid, wrapped, err := kr.Wrap(key, dk)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.PutBlobKey(ctx, key, BlobKey{KeyID: kid, Wrapped: wrapped, Size: int64(len(data)), Parts: sizes}); err != nil {
		t.Fatal(err)
	}
	if err := inner.CompleteParts(ctx, key, id, sizes); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.ReadAll(t, s, key); !bytes.Equal(got, data) {
		t.Fatal("1,100 parts read back differently")
	}
	for _, off := range []int64{1023*size - 3, 1024 * size, 1024*size + 50, int64(len(data)) - 1} {
		o, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		o.Seek(off, io.SeekStart)
		got := make([]byte, min(10, int64(len(data))-off))
		_, err = io.ReadFull(o, got)
		o.Close()
		if err != nil || !bytes.Equal(got, data[off:off+int64(len(got))]) {
			t.Errorf("range at %d: %v", off, err)
		}
	}

	// Swap two parts' ciphertext in the stored blob (all parts have the
	// same size, so the layout still fits).
	ct := encSize(size)
	for _, pair := range [][2]int{{1030, 1031}, {5, 1029}} {
		inner.mu.Lock()
		b := bytes.Clone(inner.blobs[key])
		a, c := b[int64(pair[0])*ct:int64(pair[0]+1)*ct], b[int64(pair[1])*ct:int64(pair[1]+1)*ct]
		tmp := bytes.Clone(a)
		copy(a, c)
		copy(c, tmp)
		moved := storagetest.Key()
		inner.blobs[moved] = b
		inner.mu.Unlock()
		if err := keys.PutBlobKey(ctx, moved, BlobKey{KeyID: kid, Wrapped: func() []byte { _, w, _ := kr.Wrap(moved, dk); return w }(),
			Size: int64(len(data)), Parts: sizes}); err != nil {
			t.Fatal(err)
		}
		o, err := s.Open(ctx, moved)
		if err != nil {
			t.Fatal(err)
		}
		o.Seek(int64(pair[0])*size, io.SeekStart)
		_, err = io.ReadAll(io.LimitReader(o, size))
		o.Close()
		if !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("parts %d and %d swapped: read gave %v, want ErrCorrupt", pair[0], pair[1], err)
		}
	}
}
