// Package local provides a storage.Store that keeps blobs as files in a
// directory on local disk. Writes are atomic: a blob is written to a
// temporary file, fsynced, and renamed into place, so a crash never leaves a
// partial blob under its key.
//
// Layout: <dir>/<k[0:2]>/<k[2:4]>/<key>, plus <dir>/tmp for writes in flight
// and <dir>/parts/<uploadID>/<index> for parts of resumable uploads.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/veloxhq/velox/internal/storage"
)

var _ storage.Store = (*Store)(nil)
var _ storage.Lister = (*Store)(nil)
var _ storage.Checker = (*Store)(nil)
var _ storage.Parts = (*Store)(nil)

// Store is a directory of blobs.
type Store struct {
	dir string
}

// New returns a Store rooted at dir, creating it if needed.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("local storage: %w", err)
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(key string) (string, error) {
	if !storage.ValidKey(key) || len(key) < 4 {
		return "", fmt.Errorf("%w: %q", storage.ErrInvalidKey, key)
	}
	return filepath.Join(s.dir, key[0:2], key[2:4], key), nil
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), key+".*")
	if err != nil {
		return fmt.Errorf("local storage: put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// A large buffer: uploads arrive in small reads from the network, and
	// 1 MiB writes cost far fewer syscalls than io.Copy's 32 KiB. (The
	// writer is wrapped so that os.File.ReadFrom does not substitute its
	// own small buffer.)
	buf := make([]byte, 1<<20)
	n, err := io.CopyBuffer(&writeBehind{f: tmp}, ctxReader{ctx, r}, buf)
	if err != nil {
		return fmt.Errorf("local storage: put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put %s: got %d bytes, want %d: %w", key, n, size, storage.ErrSizeMismatch)
	}
	if err = ctx.Err(); err != nil {
		return fmt.Errorf("local storage: put %s: %w", key, err)
	}
	// fsync before rename: otherwise a crash can leave the new name pointing
	// at a file whose data never reached the disk.
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("local storage: put %s: %w", key, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("local storage: put %s: %w", key, err)
	}
	if err = os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("local storage: put %s: %w", key, err)
	}
	if err = os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("local storage: put %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// writeBehind writes to f and asks the kernel to start writing each
// completed writeBehindWindow to disk at once (sync_file_range(2), without
// waiting), rather than when the dirty pages age or pile up. The disk then
// works while the rest of the upload arrives, and the fsync before the
// rename finds little left to flush: that fsync used to take as long as
// receiving the whole file.
type writeBehind struct {
	f       *os.File
	off     int64 // bytes written
	flushed int64 // bytes handed to writeback
}

const writeBehindWindow = 8 << 20

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.flushed >= writeBehindWindow {
		// Only a hint: where the call is not supported, fsync does it all.
		startWriteback(w.f, w.flushed, w.off-w.flushed)
		w.flushed = w.off
	}
	return n, err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("local storage: sync %s: %w", dir, err)
	}
	return nil
}

// Open implements storage.Store.
func (s *Store) Open(ctx context.Context, key string) (storage.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, translate(key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, translate(key, err)
	}
	return &object{File: f, size: fi.Size()}, nil
}

type object struct {
	*os.File
	size int64
}

func (o *object) Size() int64 { return o.size }

// OSFile exposes the file so that the HTTP server can send it with
// sendfile(2) instead of copying it through user space.
func (o *object) OSFile() *os.File { return o.File }

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return storage.Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return storage.Info{}, translate(key, err)
	}
	return storage.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return translate(key, err)
	}
	return nil
}

// List implements storage.Lister. Temporary files of writes in flight are
// not listed.
func (s *Store) List(ctx context.Context, fn func(storage.Info) error) error {
	return filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			if p == filepath.Join(s.dir, "tmp") || p == filepath.Join(s.dir, "parts") {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if !storage.ValidKey(name) || strings.Contains(name, "/") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while walking
			}
			return err
		}
		return fn(storage.Info{Key: name, Size: fi.Size(), ModTime: fi.ModTime()})
	})
}

// Check implements storage.Checker: the directory must exist and be writable.
func (s *Store) Check(ctx context.Context) error {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "check.*")
	if err != nil {
		return fmt.Errorf("%w: %v", storage.ErrUnavailable, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func translate(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", key, storage.ErrNotFound)
	}
	return fmt.Errorf("local storage: %s: %w", key, err)
}

// ctxReader stops a copy when the context is cancelled, so an abandoned
// upload does not keep writing to disk.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
