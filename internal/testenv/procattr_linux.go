package testenv

import "syscall"

// serverProcAttr puts a server in its own process group, so it can be
// killed with its children, and has the kernel terminate it if the test
// binary dies without running its cleanup.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
