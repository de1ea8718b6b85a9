package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTokenCommands: create prints the secret once (-o json: id and
// secret), the token works for its role, list never shows a secret, revoke
// makes it fail, and bad flags end in one line and exit 1.
func TestTokenCommands(t *testing.T) {
	n := startNode(t, "boot")
	addr := n.HTTPAddr()
	out, errOut, code := run(t, "token", "create", "--role", "read", "--addr", addr, "--token", "boot", "-o", "json")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	var tok map[string]string
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok["id"] == "" || tok["secret"] == "" || len(tok) != 2 {
		t.Fatalf("token create -o json: %v %q", err, out)
	}
	if _, errOut, code := run(t, "status", "--addr", addr, "--token", tok["secret"]); code != 0 {
		t.Fatalf("status with a read token: %s", errOut)
	}
	if _, errOut, code := run(t, "drain", "solo", "--addr", addr, "--token", tok["secret"]); code != 1 || !strings.Contains(errOut, "403") {
		t.Fatalf("drain with a read token: %d %q", code, errOut)
	}
	out, errOut, code = run(t, "token", "list", "--addr", addr, "--token", "boot")
	if code != 0 || !strings.Contains(out, tok["id"]) || !strings.Contains(out, "read") || strings.Contains(out, tok["secret"]) {
		t.Fatalf("token list: %d %q %s", code, out, errOut)
	}
	if _, errOut, code := run(t, "token", "list", "--addr", addr, "--token", tok["secret"]); code != 1 || !strings.Contains(errOut, "403") {
		t.Fatalf("token list with a read token: %d %q", code, errOut)
	}
	if out, errOut, code := run(t, "token", "revoke", tok["id"], "--addr", addr, "--token", "boot"); code != 0 || !strings.Contains(out, tok["id"]) {
		t.Fatalf("token revoke: %d %s", code, errOut)
	}
	if _, errOut, code := run(t, "status", "--addr", addr, "--token", tok["secret"]); code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("status with a revoked token: %d %q", code, errOut)
	}
	for _, args := range [][]string{
		{"token", "create", "--role", "root", "--addr", addr},
		{"token", "create", "--addr", addr},
		{"token", "revoke", "--addr", addr},
		{"token", "revoke", "nosuch", "--addr", addr, "--token", "boot"},
	} {
		_, errOut, code := run(t, args...)
		if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || errOut == "" {
			t.Fatalf("%v: code %d, stderr %q", args, code, errOut)
		}
	}
}
