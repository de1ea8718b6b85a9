package cli

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/node"
)

// TestKeyringCommands on one node: list, install, use, remove, and the
// refusals (no key, a node without gossip encryption) as one line, exit 1.
func TestKeyringCommands(t *testing.T) {
	k1, _ := node.NewGossipKey()
	k2, _ := node.NewGossipKey()
	key, _ := base64.StdEncoding.DecodeString(k1)
	n, err := node.Start(node.Config{DataDir: t.TempDir(), Name: "keyed", Bind: "127.0.0.1", Timing: node.TimingFast,
		GPU: gpu.Config{Declared: 1}, TaskMilli: 250, Token: "tok", GossipKey: key, CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	addr := n.HTTPAddr()
	for _, args := range [][]string{
		{"keyring", "install", k2}, {"keyring", "use", k2}, {"keyring", "remove", k1},
	} {
		if out, errOut, code := run(t, append(args, "--addr", addr, "--token", "tok")...); code != 0 || !strings.Contains(out, "1 of 1") {
			t.Fatalf("%v: %d %q %q", args, code, out, errOut)
		}
	}
	out, errOut, code := run(t, "keyring", "list", "--addr", addr, "--token", "tok")
	if code != 0 || !strings.Contains(out, k2) || strings.Contains(out, k1) {
		t.Fatalf("keyring list: %d %q %s", code, out, errOut)
	}
	if _, errOut, code := run(t, "keyring", "install", "--addr", addr, "--token", "tok"); code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("install without a key: %d %q", code, errOut)
	}
	plain := startNode(t, "tok")
	if _, errOut, code := run(t, "keyring", "list", "--addr", plain.HTTPAddr(), "--token", "tok"); code != 1 || !strings.Contains(errOut, "encryption is off") {
		t.Fatalf("keyring on a node without a key: %d %q", code, errOut)
	}
}
