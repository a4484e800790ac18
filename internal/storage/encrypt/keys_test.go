package encrypt_test

import (
	"testing"

	"github.com/veloxhq/velox/internal/storage/encrypt"
	"github.com/veloxhq/velox/internal/storage/encrypt/encrypttest"
)

func TestKeysInMemory(t *testing.T) {
	encrypttest.Run(t, func(t *testing.T) encrypt.KeyStore { return encrypt.NewMemKeys() })
}
