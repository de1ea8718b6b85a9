//go:build !unix

package contain

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Outside unix a child has no rlimits: its heap limit, its self-watch and
// the context bound it.
const rlimitSupported = false

func childAttrs(*exec.Cmd) {}

func dieWithParent(*syscall.SysProcAttr) {}

func spawn(cmd *exec.Cmd) error { return cmd.Start() }

func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

func privateStdout() *os.File { return os.Stdout }

func setAddressSpace(uint64) error { return nil }

func catchCPULimit() error { return nil }

func startDocument(time.Duration) {}

func residentBytes(int) uint64 { return 0 }

func cpuTime(int) time.Duration { return 0 }

func liftAddressSpace(int) {}
