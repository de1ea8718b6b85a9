package cli

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/node"
	"github.com/ragnode/ragnode/transport"
)

// TestTLSCommands: ca create and cert create write what a node starts
// with, the certificate carries the node role, and client commands reach
// the node over HTTPS with --ca-file (RAGNODE_CACERT) and not without it.
func TestTLSCommands(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := run(t, "tls", "ca", "create", "--out", dir); code != 0 {
		t.Fatalf("ca create: %s", errOut)
	}
	if _, errOut, code := run(t, "tls", "ca", "create", "--out", dir); code != 1 || !strings.Contains(errOut, "already") {
		t.Fatalf("second ca create: %d %q", code, errOut)
	}
	if _, errOut, code := run(t, "tls", "cert", "create", "--ca", dir, "--node", "n1", "--ip", "127.0.0.1", "--dns", "n1.example", "--out", dir); code != 0 {
		t.Fatalf("cert create: %s", errOut)
	}
	if st, err := os.Stat(filepath.Join(dir, "n1-key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, st)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "n1.pem"))
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !transport.HasNodeRole(cert) || cert.VerifyHostname("n1.example") != nil || cert.VerifyHostname("127.0.0.1") != nil {
		t.Fatalf("node certificate names %v %v", cert.DNSNames, cert.IPAddresses)
	}
	for _, args := range [][]string{
		{"tls", "cert", "create", "--ca", dir, "--out", dir},
		{"tls", "cert", "create", "--ca", dir, "--node", "x", "--ip", "not-an-ip", "--out", dir},
		{"tls", "cert", "create", "--ca", t.TempDir(), "--node", "x", "--ip", "127.0.0.1", "--out", dir},
	} {
		if _, errOut, code := run(t, args...); code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("%v: %d %q", args, code, errOut)
		}
	}

	n, err := node.Start(node.Config{DataDir: t.TempDir(), Name: "solo", Bind: "127.0.0.1", Timing: node.TimingFast,
		GPU: gpu.Config{Declared: 1}, TaskMilli: 250, Token: "tok", CheckInvariants: true,
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "n1.pem"), KeyFile: filepath.Join(dir, "n1-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	deadline := time.Now().Add(10 * time.Second)
	for n.Raft().Leader() == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, errOut, code := run(t, "status", "--addr", n.HTTPAddr(), "--token", "tok"); code != 1 {
		t.Fatalf("plain HTTP status against a TLS node: %d %q", code, errOut)
	}
	t.Setenv("RAGNODE_CACERT", filepath.Join(dir, "ca.pem"))
	if out, errOut, code := run(t, "status", "--addr", n.HTTPAddr(), "--token", "tok"); code != 0 || !strings.Contains(out, "leader") {
		t.Fatalf("HTTPS status with RAGNODE_CACERT: %d %s %s", code, out, errOut)
	}
}

// TestStartRefusesExposedNodeWithoutCredential: one line, exit 1, before
// anything listens.
func TestStartRefusesExposedNodeWithoutCredential(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"start", "--data-dir", dir, "--bind", "10.1.2.3"},
		{"start", "--data-dir", dir, "--ca-file", "x.pem"},
		{"start", "--data-dir", dir, "--join-secret", "short"},
		{"start", "--data-dir", dir, "--transition", "tls"},
		{"start", "--data-dir", dir, "--transition", "gossip-accept"},
		{"start", "--data-dir", dir, "--join-secret", "0123456789abcdef", "--transition", "bogus"},
		{"start", "--data-dir", dir, "--join-secret", "0123456789abcdef", "--transition", "gossip-accept,gossip-prefer"},
	} {
		_, errOut, code := run(t, args...)
		if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || errOut == "" {
			t.Fatalf("%v: %d %q", args, code, errOut)
		}
	}
	if _, errOut, _ := run(t, "start", "--data-dir", dir, "--bind", "10.1.2.3"); !strings.Contains(errOut, "--insecure") {
		t.Fatalf("refusal does not name --insecure: %q", errOut)
	}
}
