package contain

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// cgroup v2, where it is ours to use. A node may only create cgroups below
// its own when that subtree was delegated to it (systemd's Delegate=yes
// marks it with the trusted.delegate or user.delegate attribute; an
// operator can say so with RAGNODE_CGROUP_DELEGATED=1 where nothing marks
// it, in a container). Anything else (cgroup v1, a hybrid mount, a
// read-only or undelegated tree) leaves the cgroups alone, and the child's
// rlimits and the parent's watch hold the limit instead. Every check runs
// before the first write.
//
// Layout under the node's own cgroup D: cgroup v2 lets a cgroup either
// hold processes or hand controllers to children, so the node moves itself
// into D/ragnode-node, turns the memory controller on for D's children,
// and gives each parser child D/ragnode-parser-N with memory.max (and no
// swap, so a limit is a limit). The kernel's OOM killer then ends the
// child at the limit, and memory.events says it did.

const cgroupMount = "/sys/fs/cgroup"

// envDelegated lets an operator declare a delegated subtree that carries
// no marker.
const envDelegated = "RAGNODE_CGROUP_DELEGATED"

type cgroupV2 struct {
	base string // the node's own cgroup, which it delegates from
	n    atomic.Int64
}

// findCgroupV2 returns the node's delegated cgroup, set up for children,
// or why there is none. root "" is the real mount; tests pass a fake tree
// (with its self file at root/.self).
func findCgroupV2(root string) (*cgroupV2, error) {
	self := "/proc/self/cgroup"
	if root == "" {
		root = cgroupMount
		var st unix.Statfs_t
		if err := unix.Statfs(root, &st); err != nil {
			return nil, fmt.Errorf("no cgroup mount: %w", err)
		}
		if st.Type != unix.CGROUP2_SUPER_MAGIC {
			return nil, errors.New("cgroup v1 or hybrid mount at " + root)
		}
	} else {
		self = filepath.Join(root, ".self")
	}
	rel, err := ownCgroup(self)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(root, rel)
	if !delegated(base) {
		return nil, fmt.Errorf("cgroup %s is not delegated to this process", base)
	}
	if unix.Access(base, unix.W_OK) != nil || unix.Access(filepath.Join(base, "cgroup.subtree_control"), unix.W_OK) != nil {
		return nil, fmt.Errorf("cgroup %s is not writable", base)
	}
	if !hasWord(filepath.Join(base, "cgroup.controllers"), "memory") {
		return nil, fmt.Errorf("cgroup %s lacks the memory controller", base)
	}
	cg := &cgroupV2{base: base}
	if err := cg.enable(); err != nil {
		return nil, err
	}
	return cg, nil
}

// ownCgroup reads the unified hierarchy's line ("0::/path") of a
// /proc/PID/cgroup file; a v1 line means a hybrid setup.
func ownCgroup(self string) (string, error) {
	b, err := os.ReadFile(self)
	if err != nil {
		return "", err
	}
	rel := ""
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] != "0" || parts[1] != "" {
			return "", errors.New("cgroup v1 hierarchies in use")
		}
		rel = parts[2]
	}
	if rel == "" || !strings.HasPrefix(rel, "/") || strings.Contains(rel, "..") {
		return "", fmt.Errorf("no cgroup v2 path in %s", self)
	}
	return rel, nil
}

func delegated(dir string) bool {
	if os.Getenv(envDelegated) == "1" {
		return true
	}
	buf := make([]byte, 8)
	for _, attr := range []string{"trusted.delegate", "user.delegate"} {
		if n, err := unix.Getxattr(dir, attr, buf); err == nil && strings.TrimSpace(string(buf[:n])) == "1" {
			return true
		}
	}
	return false
}

// enable moves the node into a leaf of its own and turns the memory
// controller on for its cgroup's children; on failure it moves back.
func (cg *cgroupV2) enable() error {
	if hasWord(filepath.Join(cg.base, "cgroup.subtree_control"), "memory") {
		return nil // set up by an earlier start, or by the operator
	}
	leaf := filepath.Join(cg.base, "ragnode-node")
	if err := os.Mkdir(leaf, 0o755); err != nil && !os.IsExist(err) {
		return fmt.Errorf("cgroup leaf: %w", err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), pid, 0o644); err != nil {
		return fmt.Errorf("move into %s: %w", leaf, err)
	}
	if err := os.WriteFile(filepath.Join(cg.base, "cgroup.subtree_control"), []byte("+memory"), 0o644); err != nil {
		// Another process still sits in the cgroup: give it back as it was.
		_ = os.WriteFile(filepath.Join(cg.base, "cgroup.procs"), pid, 0o644)
		return fmt.Errorf("enable memory controller in %s: %w", cg.base, err)
	}
	return nil
}

// place creates the cgroup of a new child and moves it there.
func (cg *cgroupV2) place(pid int, limit uint64) (string, error) {
	dir := filepath.Join(cg.base, fmt.Sprintf("ragnode-parser-%d-%d", os.Getpid(), cg.n.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(strconv.FormatUint(limit, 10)), 0o644); err != nil {
		cg.remove(dir)
		return "", err
	}
	// Absent where swap accounting is off; nothing to cap then.
	_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0o644)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		cg.remove(dir)
		return "", err
	}
	return dir, nil
}

// oomKilled reports whether the kernel killed a process of the cgroup for
// its memory.max.
func (cg *cgroupV2) oomKilled(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "memory.events"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "oom_kill" {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n > 0
		}
	}
	return false
}

func (cg *cgroupV2) remove(dir string) { _ = os.Remove(dir) }

func hasWord(file, word string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, w := range strings.Fields(string(b)) {
		if w == word {
			return true
		}
	}
	return false
}
