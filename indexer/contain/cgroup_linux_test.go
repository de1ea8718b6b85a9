package contain

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeCgroupTree lays out what a delegated cgroup v2 subtree shows, in a
// temporary directory: the code under test writes only there.
func fakeCgroupTree(t *testing.T, self string) string {
	t.Helper()
	root := t.TempDir()
	svc := filepath.Join(root, "svc")
	if err := os.MkdirAll(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		".self":                      self,
		"svc/cgroup.controllers":     "cpu io memory pids\n",
		"svc/cgroup.subtree_control": "",
		"svc/cgroup.procs":           "",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCgroupV2Delegated(t *testing.T) {
	root := fakeCgroupTree(t, "0::/svc\n")
	if _, err := findCgroupV2(root); err == nil || !strings.Contains(err.Error(), "not delegated") {
		t.Fatalf("an unmarked subtree was used: %v", err)
	}
	t.Setenv(envDelegated, "1")
	cg, err := findCgroupV2(root)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, _ := os.ReadFile(filepath.Join(root, p))
		return strings.TrimSpace(string(b))
	}
	if got := read("svc/ragnode-node/cgroup.procs"); got != strconv.Itoa(os.Getpid()) {
		t.Fatalf("node not moved into its leaf: %q", got)
	}
	if got := read("svc/cgroup.subtree_control"); got != "+memory" {
		t.Fatalf("memory controller not enabled for children: %q", got)
	}
	dir, err := cg.place(4242, 2<<30)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(root, dir)
	if got := read(filepath.Join(rel, "memory.max")); got != "2147483648" {
		t.Fatalf("memory.max %q", got)
	}
	if got := read(filepath.Join(rel, "cgroup.procs")); got != "4242" {
		t.Fatalf("child not placed: %q", got)
	}
	if cg.oomKilled(dir) {
		t.Fatal("oom reported without an event")
	}
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644)
	if !cg.oomKilled(dir) {
		t.Fatal("oom_kill not seen")
	}
}

func TestCgroupV2Refused(t *testing.T) {
	t.Setenv(envDelegated, "1")
	for name, self := range map[string]string{
		"hybrid": "12:memory:/svc\n0::/svc\n",
		"empty":  "",
		"escape": "0::/../etc\n",
	} {
		root := fakeCgroupTree(t, self)
		if _, err := findCgroupV2(root); err == nil {
			t.Errorf("%s: cgroup used", name)
		}
	}
	root := fakeCgroupTree(t, "0::/svc\n")
	os.WriteFile(filepath.Join(root, "svc/cgroup.controllers"), []byte("cpu io\n"), 0o644)
	if _, err := findCgroupV2(root); err == nil || !strings.Contains(err.Error(), "memory controller") {
		t.Errorf("no memory controller: %v", err)
	}
}
