package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// A node's data dir on a small tmpfs of its own lets a scenario fill that
// node's disk, and only that node's, to the last byte: writes then fail
// with ENOSPC as on a real full disk (blobs, chunk store and Raft log
// alike), and the machine's real disks are never touched.

// MountTmpfs mounts a tmpfs of sizeMB at the data dir; call it before the
// first Start. It needs root (CAP_SYS_ADMIN): the error says why it could
// not, for the caller to skip with. The mount is lazily unmounted at
// cleanup, after the process is killed.
func (p *Proc) MountTmpfs(sizeMB int) error {
	if os.Geteuid() != 0 {
		return errors.New("mounting a tmpfs needs root")
	}
	if err := os.MkdirAll(p.DataDir, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(sizeMB)+"m,mode=0755", "tmpfs", p.DataDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount tmpfs at %s: %v: %s", p.DataDir, err, out)
	}
	p.c.TB.Cleanup(func() {
		p.Kill()
		_ = exec.Command("umount", "-l", p.DataDir).Run()
	})
	return nil
}

// fillName is the file that takes the data dir's free space.
const fillName = "zz-disk-filler"

// FillDisk writes a file into the data dir until the file system is full
// (ENOSPC) and returns how many bytes it took. FreeDisk removes it.
func (p *Proc) FillDisk() (int64, error) {
	f, err := os.OpenFile(filepath.Join(p.DataDir, fillName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	block := make([]byte, 1<<20)
	var n int64
	for {
		k, err := f.Write(block)
		n += int64(k)
		if errors.Is(err, syscall.ENOSPC) {
			// A last partial page may still fit.
			for _, size := range []int{64 << 10, 4 << 10, 512, 1} {
				for {
					k, err := f.Write(block[:size])
					n += int64(k)
					if err != nil {
						break
					}
				}
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// FreeDisk removes what FillDisk wrote.
func (p *Proc) FreeDisk() error {
	return os.Remove(filepath.Join(p.DataDir, fillName))
}
