package local_test

import (
	"testing"

	"github.com/veloxhq/velox/internal/storage"
	"github.com/veloxhq/velox/internal/storage/local"
	"github.com/veloxhq/velox/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
