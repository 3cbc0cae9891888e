//go:build unix && !linux

package harness

import "syscall"

// sysProcAttr puts a child in its own process group. Only Linux can tie the
// child's life to the benchmark's; elsewhere a killed benchmark leaves it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
