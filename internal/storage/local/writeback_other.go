//go:build !linux

package local

import "os"

// startWriteback is a no-op where sync_file_range(2) does not exist; the
// fsync before the rename writes everything.
func startWriteback(f *os.File, off, n int64) {}
