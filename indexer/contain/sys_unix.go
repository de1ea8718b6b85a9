//go:build unix

package contain

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const rlimitSupported = true

// childAttrs puts the child in a process group of its own, so a kill takes
// the helpers it started (tesseract) with it.
func childAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
}

func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// privateStdout moves the frame stream off file descriptor 1, which then
// points at stderr: a library that prints cannot corrupt a frame.
func privateStdout() *os.File {
	fd, err := unix.Dup(1)
	if err != nil {
		return os.Stdout
	}
	if err := unix.Dup2(2, 1); err != nil {
		_ = unix.Close(fd)
		return os.Stdout
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "parser-frames")
}

// setAddressSpace lowers the soft limit only: the hard limit stays, so a
// converter started from the child can be given its address space back
// (liftAddressSpace).
func setAddressSpace(limit uint64) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &cur); err != nil {
		return err
	}
	if cur.Max != unix.RLIM_INFINITY && cur.Max < limit {
		limit = cur.Max
	}
	return unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: limit, Max: cur.Max})
}

// catchCPULimit turns SIGXCPU (which a Go program otherwise ignores) into
// the child's CPU-limit exit.
func catchCPULimit() error {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGXCPU)
	go func() {
		<-ch
		fmt.Fprintln(os.Stderr, "parser child: CPU time limit reached")
		os.Exit(exitCPU)
	}()
	return nil
}

// startDocument gives the next document its own CPU budget: RLIMIT_CPU
// counts the process's whole life, so the soft limit moves to what the
// child has used so far plus the budget.
func startDocument(budget time.Duration) {
	if budget <= 0 {
		return
	}
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return
	}
	used := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	secs := uint64((used + budget + time.Second - 1) / time.Second)
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CPU, &cur); err != nil {
		return
	}
	if cur.Max != unix.RLIM_INFINITY && cur.Max < secs {
		secs = cur.Max
	}
	_ = unix.Setrlimit(unix.RLIMIT_CPU, &unix.Rlimit{Cur: secs, Max: cur.Max})
}
