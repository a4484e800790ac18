// Package encrypttest checks an encrypt.KeyStore: rotation under load,
// start-up key checks and migration of plaintext blobs, all through an
// encrypting store over local storage.
package encrypttest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/encrypt"
	"github.com/veloxhq/velox/internal/storage/local"
	"github.com/veloxhq/velox/internal/storage/storagetest"
)

// Run runs the suite; newKeys returns an empty KeyStore.
func Run(t *testing.T, newKeys func(t *testing.T) encrypt.KeyStore) {
	ctx := context.Background()
	old := encrypt.MasterKey{ID: "old", Key: storagetest.Random(32)}
	cur := encrypt.MasterKey{ID: "new", Key: storagetest.Random(32)}

	t.Run("RotateWithConcurrentUploads", func(t *testing.T) {
		keys := newKeys(t)
		inner, _ := newLocal(t)
		ring1, _ := encrypt.NewKeyring([]encrypt.MasterKey{old}, "")
		s1 := encrypt.New(inner, keys, ring1, nil)
		blobs := map[string][]byte{}
		for i := 0; i < 25; i++ {
			k, d := storagetest.Key(), storagetest.Random(int64(i*1000))
			if err := s1.Put(ctx, k, bytes.NewReader(d), int64(len(d))); err != nil {
				t.Fatal(err)
			}
			blobs[k] = d
		}
		// The server now runs with both keys, "new" active, while the
		// rotation runs alongside it.
		ring2, _ := encrypt.NewKeyring([]encrypt.MasterKey{old, cur}, "")
		s2 := encrypt.New(inner, keys, ring2, nil)
		var wg sync.WaitGroup
		var mu sync.Mutex
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				k, d := storagetest.Key(), storagetest.Random(70<<10)
				if err := s2.Put(ctx, k, bytes.NewReader(d), int64(len(d))); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				blobs[k] = d
				mu.Unlock()
			}
		}()
		var batches int
		st, err := encrypt.Rotate(ctx, keys, ring2, 7, func(encrypt.RotateStats) { batches++ })
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if st.Rewrapped != 25 || batches < 4 {
			t.Errorf("rotate: %+v in %d batches, want 25 rewrapped in at least 4", st, batches)
		}
		// Old key gone: everything must still read.
		ring3, _ := encrypt.NewKeyring([]encrypt.MasterKey{cur}, "")
		if err := encrypt.CheckKeys(ctx, keys, ring3); err != nil {
			t.Fatalf("after rotation, CheckKeys without the old key: %v", err)
		}
		s3 := encrypt.New(inner, keys, ring3, nil)
		for k, d := range blobs {
			if got := storagetest.ReadAll(t, s3, k); !bytes.Equal(got, d) {
				t.Fatalf("blob %s differs after rotation", k)
			}
		}
		// A second run has nothing to do.
		if st, err := encrypt.Rotate(ctx, keys, ring2, 7, nil); err != nil || st.Rewrapped != 0 {
			t.Errorf("second rotation: %+v, %v", st, err)
		}
	})

	t.Run("MissingOrWrongMasterKey", func(t *testing.T) {
		keys := newKeys(t)
		inner, _ := newLocal(t)
		ring1, _ := encrypt.NewKeyring([]encrypt.MasterKey{old}, "")
		s := encrypt.New(inner, keys, ring1, nil)
		if err := s.Put(ctx, storagetest.Key(), strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		missing, _ := encrypt.NewKeyring([]encrypt.MasterKey{cur}, "")
		if err := encrypt.CheckKeys(ctx, keys, missing); err == nil || !strings.Contains(err.Error(), "old") {
			t.Errorf("CheckKeys without the key in use: %v, want an error naming it", err)
		}
		wrong, _ := encrypt.NewKeyring([]encrypt.MasterKey{{ID: "old", Key: storagetest.Random(32)}}, "")
		if err := encrypt.CheckKeys(ctx, keys, wrong); err == nil || !strings.Contains(err.Error(), "wrong") {
			t.Errorf("CheckKeys with a wrong key: %v, want an error", err)
		}
	})

	t.Run("EncryptExisting", func(t *testing.T) {
		keys := newKeys(t)
		inner, _ := newLocal(t)
		b := struct{ inner storage.Store }{inner}
		ring, _ := encrypt.NewKeyring([]encrypt.MasterKey{cur}, "")
		s := encrypt.New(b.inner, keys, ring, nil)
		plain := map[string][]byte{}
		for _, n := range []int64{0, 1, 64 << 10, 200<<10 + 3} {
			k, d := storagetest.Key(), storagetest.Random(n)
			if err := b.inner.Put(ctx, k, bytes.NewReader(d), n); err != nil {
				t.Fatal(err)
			}
			plain[k] = d
		}
		encKey, encData := storagetest.Key(), storagetest.Random(1000)
		if err := s.Put(ctx, encKey, bytes.NewReader(encData), 1000); err != nil {
			t.Fatal(err)
		}
		plain[encKey] = encData
		// A run that died between the key row and the overwrite.
		crashed, crashedData := storagetest.Key(), storagetest.Random(5000)
		if err := b.inner.Put(ctx, crashed, bytes.NewReader(crashedData), 5000); err != nil {
			t.Fatal(err)
		}
		plain[crashed] = crashedData
		kid, wrapped, err := ring.Wrap(crashed, storagetest.Random(32))
		if err != nil {
			t.Fatal(err)
		}
		if err := keys.PutBlobKey(ctx, crashed, encrypt.BlobKey{KeyID: kid, Wrapped: wrapped, Size: 5000}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(ctx, crashed); !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("blob inside the migration window: %v, want ErrCorrupt", err)
		}

		ms, err := encrypt.EncryptExisting(ctx, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ms.Encrypted != 5 || ms.AlreadyEncrypted != 1 {
			t.Errorf("EncryptExisting = %+v, want 5 encrypted, 1 already", ms)
		}
		for k, d := range plain {
			if got := storagetest.ReadAll(t, s, k); !bytes.Equal(got, d) {
				t.Errorf("blob %s (%d bytes) differs after migration", k, len(d))
			}
			if _, err := keys.GetBlobKey(ctx, k); err != nil {
				t.Errorf("blob %s has no key row after migration: %v", k, err)
			}
			if raw := storagetest.ReadAll(t, b.inner, k); len(d) > 0 && bytes.Equal(raw, d) {
				t.Errorf("blob %s is still plaintext", k)
			}
		}
		if ms, err := encrypt.EncryptExisting(ctx, s, nil); err != nil || ms.Encrypted != 0 {
			t.Errorf("second run: %+v, %v", ms, err)
		}
	})
}

func newLocal(t *testing.T) (*local.Store, string) {
	dir := t.TempDir()
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}
