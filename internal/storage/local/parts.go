package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/veloxhq/velox/internal/storage"
)

// Parts are files under <dir>/parts/<uploadID>/. A local disk has no
// manifest to point at them, so CompleteParts copies them into the blob;
// that costs one local copy, which is cheap next to the network.

func (s *Store) partsDir(uploadID string) (string, error) {
	if !storage.ValidKey(uploadID) {
		return "", fmt.Errorf("%w: upload %q", storage.ErrInvalidKey, uploadID)
	}
	return filepath.Join(s.dir, "parts", uploadID), nil
}

func partFile(dir string, index int) string {
	return filepath.Join(dir, fmt.Sprintf("%08d", index))
}

// PutPart implements storage.Parts. A part is written like a blob: to a
// temporary file, then renamed, so a retried part replaces the old one
// atomically.
func (s *Store) PutPart(ctx context.Context, uploadID string, index int, r io.Reader, size int64) (err error) {
	dir, err := s.partsDir(uploadID)
	if err != nil {
		return err
	}
	if index < 0 || index >= storage.MaxParts {
		return fmt.Errorf("local storage: part index %d outside [0, %d)", index, storage.MaxParts)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "part.*")
	if err != nil {
		return fmt.Errorf("local storage: put part: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("local storage: put part %d of %s: %w", index, uploadID, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put part %d of %s: got %d bytes, want %d: %w", index, uploadID, n, size, storage.ErrSizeMismatch)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("local storage: put part: %w", err)
	}
	if err = os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("local storage: put part: %w", err)
	}
	// No fsync: CompleteParts fsyncs the blob it builds, and a part lost
	// in a crash is simply uploaded again by the client.
	if err = os.Rename(tmp.Name(), partFile(dir, index)); err != nil {
		return fmt.Errorf("local storage: put part: %w", err)
	}
	return nil
}

// CompleteParts implements storage.Parts: it concatenates the parts into a
// temporary file, fsyncs and renames it to key, then removes the parts.
func (s *Store) CompleteParts(ctx context.Context, key, uploadID string, sizes []int64) (err error) {
	dir, err := s.partsDir(uploadID)
	if err != nil {
		return err
	}
	if _, err := s.path(key); err != nil {
		return err
	}
	if len(sizes) > storage.MaxParts {
		return fmt.Errorf("local storage: complete %s: %d parts, at most %d allowed", key, len(sizes), storage.MaxParts)
	}
	for i, n := range sizes {
		if i < len(sizes)-1 && n < storage.MinPartSize {
			return fmt.Errorf("complete %s: part %d has %d bytes: %w", key, i, n, storage.ErrPartTooSmall)
		}
	}
	// Check every part before copying any.
	for i, n := range sizes {
		fi, err := os.Stat(partFile(dir, i))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("complete %s: part %d of %s: %w", key, i, uploadID, storage.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("local storage: complete %s: %w", key, err)
		}
		if fi.Size() != n {
			return fmt.Errorf("complete %s: part %d has %d bytes, want %d: %w", key, i, fi.Size(), n, storage.ErrSizeMismatch)
		}
	}
	var total int64
	for _, n := range sizes {
		total += n
	}
	pr := &partsReader{dir: dir, sizes: sizes}
	defer pr.close()
	if err := s.Put(ctx, key, pr, total); err != nil {
		if pr.err != nil {
			return translate(key, pr.err)
		}
		return err
	}
	return os.RemoveAll(dir)
}

// partsReader reads the parts in order, with one file open at a time: an
// upload may have storage.MaxParts parts, more than a process may hold
// open.
type partsReader struct {
	dir   string
	sizes []int64
	i     int
	f     *os.File
	r     io.Reader
	err   error // opening a part failed
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.r == nil {
			if p.i >= len(p.sizes) {
				return 0, io.EOF
			}
			f, err := os.Open(partFile(p.dir, p.i))
			if err != nil {
				p.err = err
				return 0, err
			}
			p.f, p.r = f, io.LimitReader(f, p.sizes[p.i])
		}
		n, err := p.r.Read(b)
		if err == io.EOF {
			p.close()
			p.i++
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (p *partsReader) close() {
	if p.f != nil {
		p.f.Close()
		p.f, p.r = nil, nil
	}
}

// AbortParts implements storage.Parts.
func (s *Store) AbortParts(ctx context.Context, uploadID string) error {
	dir, err := s.partsDir(uploadID)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("local storage: abort %s: %w", uploadID, err)
	}
	return nil
}
