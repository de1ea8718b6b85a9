package scenarios

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/scenarios/harness"
)

// freeBase finds a port base whose 23 ports (the demo's BASE to BASE+22)
// are all free right now.
func freeBase(t *testing.T) int {
	for try := 0; try < 50; try++ {
		base := 20000 + 100*rand.IntN(300)
		ok := true
		var held []net.Listener
		for p := base; p <= base+22 && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range for the demo")
	return 0
}

// TestDemoScript runs make demo's script on ports from
// RAGNODE_DEMO_PORT_BASE: three nodes there, the examples indexed, the
// searches answered; a base that is no port is refused in one line.
func TestDemoScript(t *testing.T) {
	gate(t, true)
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script, err := filepath.Abs("../scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "RAGNODE_DEMO_PORT_BASE=80")
	if out, err := cmd.CombinedOutput(); err == nil || strings.TrimSpace(string(out)) != "demo: RAGNODE_DEMO_PORT_BASE=80: want a port from 1024 to 65500" {
		t.Fatalf("base 80: %v %q", err, out)
	}
	base := freeBase(t)
	cmd = exec.Command("bash", script)
	cmd.Env = append(os.Environ(), fmt.Sprintf("RAGNODE_DEMO_PORT_BASE=%d", base), "BIN="+harness.Binary(t), "DATA="+t.TempDir())
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo on base %d: %v\n%s", base, err, got)
	}
	s := string(got)
	for _, want := range []string{
		fmt.Sprintf("127.0.0.1:%d", base), fmt.Sprintf("127.0.0.1:%d", base+10), fmt.Sprintf("127.0.0.1:%d", base+20),
		"voters / non-voters     3 / 0", "5/5 100%", "raft-consensus.md", "completed 5",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
}
