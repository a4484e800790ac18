//go:build !linux

package testenv

import "syscall"

// serverProcAttr puts a server in its own process group, so it can be
// killed with its children.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
