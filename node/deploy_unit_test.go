package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeploySystemdUnit checks deploy/ragnode.service with systemd-analyze
// verify where it is installed. The unit names the installed paths
// (/usr/local/bin/ragnode, /etc/ragnode/ragnode.env); verify wants the
// executable to exist, so a copy points at this test binary and at the
// repository's env file. verify reports unknown keys and bad values as
// warnings with exit 0, so any output fails the test.
func TestDeploySystemdUnit(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): deploy/ragnode.service not checked")
	}
	unit, err := os.ReadFile(deployPath("ragnode.service"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := filepath.Abs(deployPath("ragnode.env"))
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/ragnode start", "EnvironmentFile=/etc/ragnode/ragnode.env", "KillSignal=SIGTERM", "Delegate=yes"} {
		if !strings.Contains(string(unit), want+"\n") {
			t.Errorf("unit lacks %q", want)
		}
	}
	s := strings.ReplaceAll(string(unit), "/usr/local/bin/ragnode", self)
	s = strings.ReplaceAll(s, "/etc/ragnode/ragnode.env", env)
	dir := t.TempDir()
	path := filepath.Join(dir, "ragnode.service")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Every variable the env file sets is one ragnode reads.
	b, err := os.ReadFile(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		k, _, ok := strings.Cut(l, "=")
		if !ok || strings.ContainsAny(k, " ") {
			continue
		}
		if !strings.HasPrefix(k, "RAGNODE_") && !strings.HasPrefix(k, "EMBEDDER_") && !strings.HasPrefix(k, "VDB_") {
			t.Errorf("env file sets %s, which ragnode does not read", k)
		}
	}
}
