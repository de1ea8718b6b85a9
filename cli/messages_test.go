package cli

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/node"
)

// oneLineErr fails unless a command's stderr is exactly one "ragnode: "
// line without tabs, and returns it.
func oneLineErr(t *testing.T, what, errOut string, code int) string {
	t.Helper()
	if code != 1 || !strings.HasPrefix(errOut, "ragnode: ") || strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, "\t") {
		t.Fatalf("%s: want one line on stderr and exit 1, got exit %d:\n%q", what, code, errOut)
	}
	return strings.TrimSpace(errOut)
}

// TestSizeFlagMessages: a size flag with a wrong unit names the flag and
// the units, not the gpu package.
func TestSizeFlagMessages(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-file-size", "12XB"}, `--max-file-size "12XB": unknown unit "XB"; want a number and one of B, KiB, MiB, GiB, TiB, KB, MB, GB, TB (e.g. 100MiB)`},
		{[]string{"--gpu-mem", "lots"}, `--gpu-mem "lots": want a number with an optional unit; want a number and one of B, KiB`},
		{[]string{"--memory-high", "-1GiB"}, `--memory-high "-1GiB": must not be negative`},
		{[]string{"--scrub-rate", "8XiB"}, `--scrub-rate "8XiB": unknown unit "XiB"`},
	} {
		_, errOut, code := run(t, append([]string{"start", "--data-dir", dir, "--gpus", "0"}, tc.args...)...)
		line := oneLineErr(t, strings.Join(tc.args, " "), errOut, code)
		if !strings.Contains(line, tc.want) || strings.Contains(line, "gpu:") {
			t.Errorf("%v: %q, want it to contain %q", tc.args, line, tc.want)
		}
	}
}

func TestParseAddr(t *testing.T) {
	def := strconv.Itoa(node.DefaultHTTPPort)
	for in, want := range map[string]string{
		"localhost":                 "localhost:" + def,
		"10.0.0.1":                  "10.0.0.1:" + def,
		"10.0.0.1:41100":            "10.0.0.1:41100",
		"http://127.0.0.1:41100":    "127.0.0.1:41100",
		"http://127.0.0.1:41100/":   "127.0.0.1:41100",
		"http://node-1.lan":         "node-1.lan:" + def,
		"https://node-1.lan:8443/":  "node-1.lan:8443",
		"[::1]":                     "[::1]:" + def,
		"::1":                       "[::1]:" + def,
		"[::1]:41100":               "[::1]:41100",
		" node-2 ":                  "node-2:" + def,
		"http://[fe80::1]:41100":    "[fe80::1]:41100",
		"HTTP://127.0.0.1:41100":    "127.0.0.1:41100",
		"http://127.0.0.1:41100/ui": "",
		"ftp://127.0.0.1":           "",
		"http://user:pw@h:1":        "",
		"host:port":                 "",
		"host:0":                    "",
		"":                          "",
		"a b":                       "",
	} {
		got, https, err := parseAddr(in)
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "want HOST, HOST:PORT or http://HOST:PORT") {
				t.Errorf("parseAddr(%q) = %q, %v; want a refusal saying what is taken", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("parseAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
		if https != strings.HasPrefix(in, "https") {
			t.Errorf("parseAddr(%q): https %v", in, https)
		}
	}
}

func TestPortHint(t *testing.T) {
	if h := portHint("10.0.0.1:7071"); !strings.HasPrefix(h, "port 7071 is a node's Raft port by default; --addr takes") {
		t.Errorf("raft: %q", h)
	}
	if h := portHint("10.0.0.1:7072"); !strings.HasPrefix(h, "port 7072 is a node's Serf (gossip) port by default") {
		t.Errorf("serf: %q", h)
	}
}

func TestOneLineMsg(t *testing.T) {
	for in, want := range map[string]string{
		"join 127.0.0.1:7072: 1 error occurred:\n\t* Failed to join 127.0.0.1:7072: dial tcp 127.0.0.1:7072: connect: connection refused\n\n": "join 127.0.0.1:7072: Failed to join 127.0.0.1:7072: dial tcp 127.0.0.1:7072: connect: connection refused",
		"join a,b: 2 errors occurred:\n\t* Failed to join a: x\n\t* Failed to join b: y\n\n":                                                  "join a,b: Failed to join a: x; Failed to join b: y",
		"plain\tmessage\nover  lines": "plain message over lines",
	} {
		if got := oneLineMsg(in); got != want {
			t.Errorf("oneLineMsg(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClientAddrForms: --addr takes a bare host, a URL and HOST:PORT; at a
// node's Raft or Serf port the message says what it found there, not EOF;
// search refuses a top-k below 1.
func TestClientAddrForms(t *testing.T) {
	n := startNode(t, "tok")
	host, port, _ := net.SplitHostPort(n.HTTPAddr())
	for _, addr := range []string{n.HTTPAddr(), "http://" + n.HTTPAddr(), "http://" + n.HTTPAddr() + "/"} {
		out, errOut, code := run(t, "status", "--addr", addr, "--token", "tok")
		if code != 0 || !strings.Contains(out, "leader") {
			t.Errorf("--addr %s: %d %q %q", addr, code, out, errOut)
		}
	}
	// A bare host takes the default port: nothing listens there in the
	// test, so the error names HOST:DEFAULT.
	_, errOut, code := run(t, "status", "--addr", host, "--token", "tok", "--request-timeout", "5s")
	line := oneLineErr(t, "bare host", errOut, code)
	if !strings.Contains(line, net.JoinHostPort(host, strconv.Itoa(node.DefaultHTTPPort))) && port != strconv.Itoa(node.DefaultHTTPPort) {
		t.Errorf("bare host: %q does not name the default port", line)
	}
	for _, p := range []string{"raft", "serf"} {
		ra, _ := n.Raft().LeaderWithID() // a one-node cluster leads itself
		addr := string(ra)
		if p == "serf" {
			addr = n.SerfAddr()
		}
		_, errOut, code := run(t, "status", "--addr", addr, "--token", "tok", "--request-timeout", "5s")
		line := oneLineErr(t, "--addr at the "+p+" port", errOut, code)
		if strings.HasSuffix(line, "EOF") || !strings.Contains(line, "it answers, but not in HTTP") ||
			!strings.Contains(line, "most likely a node's Raft or Serf port") || !strings.Contains(line, "--addr takes a node's HTTP port (--http-port, 7070 by default)") {
			t.Errorf("--addr at the %s port: %q", p, line)
		}
	}
	for _, k := range []string{"-3", "0", "1001"} {
		_, errOut, code := run(t, "search", "hello", "--addr", n.HTTPAddr(), "--token", "tok", "--top-k", k)
		if line := oneLineErr(t, "--top-k "+k, errOut, code); !strings.Contains(line, "--top-k "+k+": want 1 to 1000") {
			t.Errorf("--top-k %s: %q", k, line)
		}
	}
}

// TestJoinFailureOneLine: a join that fails prints one line, the
// multi-error's tab and newlines gone.
func TestJoinFailureOneLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, errOut, code := run(t, "start", "--data-dir", t.TempDir(), "--bind", "127.0.0.1", "--http-port", "0", "--raft-port", "0",
		"--serf-port", "0", "--gpus", "0", "--timing", "fast", "--log-level", "error", "--join", dead, "--join-timeout", "1s")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.HasPrefix(last, "ragnode: ") || strings.Contains(last, "\t") || strings.Contains(last, "error occurred") ||
		!strings.Contains(last, dead) {
		t.Fatalf("failed join: exit %d, last line %q (stderr %q)", code, last, errOut)
	}
}
