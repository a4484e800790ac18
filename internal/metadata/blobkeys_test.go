package metadata_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/veloxhq/velox/internal/metadata"
	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/encrypt"
	"github.com/veloxhq/velox/internal/storage/encrypt/encrypttest"
	"github.com/veloxhq/velox/internal/storage/local"
	"github.com/veloxhq/velox/internal/storage/storagetest"
	"github.com/veloxhq/velox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// eachDB runs fn against SQLite and a real PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, open func(t *testing.T) *metadata.DB)) {
	open := func(driver string, dsn func(t *testing.T) string) func(t *testing.T) *metadata.DB {
		return func(t *testing.T) *metadata.DB {
			db, err := metadata.Open(context.Background(), driver, dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		fn(t, open("sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "m.db") }))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, open("postgres", func(t *testing.T) string { return testenv.Postgres(t) }))
	})
}

// TestBlobKeys runs the encrypting store, rotation and migration with
// data keys kept in the database.
func TestBlobKeys(t *testing.T) {
	eachDB(t, func(t *testing.T, open func(t *testing.T) *metadata.DB) {
		encrypttest.Run(t, func(t *testing.T) encrypt.KeyStore { return open(t) })
		db := open(t)
		ring, err := encrypt.NewKeyring([]encrypt.MasterKey{{ID: "k1", Key: storagetest.Random(32)}}, "")
		if err != nil {
			t.Fatal(err)
		}
		storagetest.Run(t, func(t *testing.T) storage.Store {
			inner, err := local.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return encrypt.New(inner, db, ring, nil)
		})
	})
}
