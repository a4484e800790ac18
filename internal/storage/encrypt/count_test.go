package encrypt_test

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/veloxhq/velox/internal/storage"
)

// countingStore counts the bytes read from the objects of a store.
type countingStore struct {
	storage.Store
	read atomic.Int64
}

func (c *countingStore) Open(ctx context.Context, key string) (storage.Object, error) {
	o, err := c.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return &countingObject{Object: o, n: &c.read}, nil
}

func (c *countingStore) PutPart(ctx context.Context, id string, i int, r io.Reader, size int64) error {
	return c.Store.(storage.Parts).PutPart(ctx, id, i, r, size)
}

func (c *countingStore) CompleteParts(ctx context.Context, key, id string, sizes []int64) error {
	return c.Store.(storage.Parts).CompleteParts(ctx, key, id, sizes)
}

func (c *countingStore) AbortParts(ctx context.Context, id string) error {
	return c.Store.(storage.Parts).AbortParts(ctx, id)
}

type countingObject struct {
	storage.Object
	n *atomic.Int64
}

func (o *countingObject) Read(p []byte) (int, error) {
	n, err := o.Object.Read(p)
	o.n.Add(int64(n))
	return n, err
}

func (c *countingStore) List(ctx context.Context, fn func(storage.Info) error) error {
	return c.Store.(storage.Lister).List(ctx, fn)
}
