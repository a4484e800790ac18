package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// hostLock takes an exclusive lock shared by every process on the host
// (flock on a file under os.TempDir), waiting up to limit. Samba AD binds
// fixed ports, so test binaries that need it (go test ./... runs packages
// in parallel) take turns: the second waits until the first has stopped
// its DC. The lock dies with the process, so a killed binary never
// blocks the others.
func hostLock(name string, limit time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(limit)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("waiting for the host lock %s (held by another test binary): %w", f.Name(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
