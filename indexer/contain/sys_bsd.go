//go:build unix && !linux

package contain

import (
	"os/exec"
	"syscall"
	"time"
)

func dieWithParent(*syscall.SysProcAttr) {}

func spawn(cmd *exec.Cmd) error { return cmd.Start() }

// Without /proc the parent cannot watch a child: its own limits and the
// context hold it.
func residentBytes(int) uint64 { return 0 }

func cpuTime(int) time.Duration { return 0 }

func liftAddressSpace(int) {}
