package contain

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dieWithParent: a child outlives a node that is killed outright only as
// long as its current document, and not even that.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// The death signal fires when the thread that started the child ends, not
// the process; Go may end threads. Children are started from one thread
// that is locked for good.
var (
	spawnOnce sync.Once
	spawnCh   = make(chan spawnReq)
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread()
			for r := range spawnCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawnCh <- r
	return <-r.done
}

var pageSize = uint64(os.Getpagesize())

// residentBytes is a process's resident set (0 when it cannot be read).
func residentBytes(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return pages * pageSize
}

// clockTick is USER_HZ, which /proc reports CPU times in; 100 on every
// Linux platform Go supports.
const clockTick = 100

// cpuTime is a process's user plus system time so far (0 when unknown).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: fields count from
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	// After ')': state(0) ... utime(11) stime(12).
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(string(f[11]), 10, 64)
	s, _ := strconv.ParseUint(string(f[12]), 10, 64)
	return time.Duration(u+s) * time.Second / clockTick
}

// liftAddressSpace gives a converter the address space its parent child
// lacks; it runs a moment after the converter's exec, long before a
// program mapping a GPU reaches that point.
func liftAddressSpace(pid int) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &cur); err != nil || cur.Cur == cur.Max {
		return
	}
	_ = unix.Prlimit(pid, unix.RLIMIT_AS, &unix.Rlimit{Cur: cur.Max, Max: cur.Max}, nil)
}
