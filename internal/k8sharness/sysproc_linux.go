package k8sharness

import "syscall"

// sysProcAttr kills a component if the test process dies without running
// its cleanups (e.g. a test timeout panic), so no control plane is leaked.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
