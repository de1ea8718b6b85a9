package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// Net is a private network for one cluster: a bridge in the root namespace
// and one network namespace per node, joined to the bridge by a veth pair.
// Links between nodes are cut with blackhole routes inside the namespaces,
// so the test process (reaching every node through the bridge address)
// can still read a node that is cut off from its peers. Nothing is routed
// off this machine: the namespaces have no default route.
type Net struct {
	tb     testing.TB
	prefix string // "rn<pid>x<seq>": unique per run and cluster
	subnet string // "10.A.B."
	bridge string

	mu    sync.Mutex
	nodes map[string]string // proc name -> namespace
	ips   map[string]string // proc name -> IP
	cuts  map[[2]string]bool
}

var netSeq atomic.Int32

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CleanStale removes namespaces and links left by harness runs whose process
// is gone (a previous run killed hard). Those of live processes are kept.
func CleanStale() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if pid, ok := stalePID(f[0]); ok && !alive(pid) {
			_ = run("ip", "netns", "del", f[0])
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if i := strings.Index(name, "@"); i >= 0 {
			name = name[:i]
		}
		if pid, ok := stalePID(name); ok && !alive(pid) {
			_ = run("ip", "link", "del", name)
		}
	}
}

// stalePID parses names of the form rn<pid>x<seq>...
func stalePID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "rn")
	if !ok {
		return 0, false
	}
	i := strings.IndexByte(rest, 'x')
	if i <= 0 {
		return 0, false
	}
	pid, err := strconv.Atoi(rest[:i])
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// NewNet creates the bridge. It returns an error (and creates nothing) when
// namespaces are not available: not root, or no iproute2.
func NewNet(tb testing.TB) (*Net, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("network namespaces need root (euid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("iproute2 'ip' not found: %v", err)
	}
	CleanStale()
	seq := int(netSeq.Add(1))
	pid := os.Getpid()
	n := &Net{tb: tb, prefix: fmt.Sprintf("rn%dx%d", pid, seq%100),
		subnet: fmt.Sprintf("10.%d.%d.", 100+pid%100, seq%250),
		nodes:  map[string]string{}, ips: map[string]string{}, cuts: map[[2]string]bool{}}
	n.bridge = n.prefix + "b"
	tb.Cleanup(n.Close)
	if err := run("ip", "link", "add", n.bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	for _, c := range [][]string{
		{"ip", "addr", "add", n.subnet + "1/24", "dev", n.bridge},
		{"ip", "link", "set", n.bridge, "up"},
	} {
		if err := run(c...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// Close removes the namespaces and the bridge.
func (n *Net) Close() {
	n.mu.Lock()
	nss := make([]string, 0, len(n.nodes))
	for _, ns := range n.nodes {
		nss = append(nss, ns)
	}
	n.nodes = map[string]string{}
	n.mu.Unlock()
	for _, ns := range nss {
		_ = run("ip", "netns", "del", ns) // takes the veth pair with it
	}
	_ = run("ip", "link", "del", n.bridge)
}

// Attach gives p its own namespace and IP (10.A.B.(10+idx)) and makes it
// start inside that namespace.
func (n *Net) Attach(p *Proc, idx int) error {
	ns := fmt.Sprintf("%sn%d", n.prefix, idx)
	veth := fmt.Sprintf("%sv%d", n.prefix, idx)
	ip := fmt.Sprintf("%s%d", n.subnet, 10+idx)
	cmds := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "link", "set", veth, "master", n.bridge},
		{"ip", "link", "set", veth, "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
	}
	for i, c := range cmds {
		if err := run(c...); err != nil {
			return err
		}
		if i == 0 {
			n.mu.Lock()
			n.nodes[p.Name] = ns
			n.mu.Unlock()
		}
	}
	n.mu.Lock()
	n.ips[p.Name] = ip
	n.mu.Unlock()
	p.IP = ip
	p.Wrap = []string{"ip", "netns", "exec", ns}
	return nil
}

func (n *Net) route(op, from, to string) error {
	n.mu.Lock()
	ns, ip := n.nodes[from], n.ips[to]
	n.mu.Unlock()
	if ns == "" || ip == "" {
		return fmt.Errorf("unknown node %q or %q", from, to)
	}
	err := run("ip", "-n", ns, "route", op, "blackhole", ip+"/32")
	if err != nil && op == "del" && strings.Contains(err.Error(), "No such process") {
		return nil
	}
	return err
}

// Cut drops all traffic between a and b, both ways.
func (n *Net) Cut(a, b string) error {
	n.mu.Lock()
	done := n.cuts[[2]string{a, b}]
	n.mu.Unlock()
	if done {
		return nil
	}
	if err := n.route("add", a, b); err != nil {
		return err
	}
	if err := n.route("add", b, a); err != nil {
		return err
	}
	n.mu.Lock()
	n.cuts[[2]string{a, b}], n.cuts[[2]string{b, a}] = true, true
	n.mu.Unlock()
	return nil
}

// Partition cuts every link between a node of side and a node not in it
// (among the attached nodes).
func (n *Net) Partition(side ...string) error {
	in := map[string]bool{}
	for _, s := range side {
		in[s] = true
	}
	n.mu.Lock()
	var others []string
	for name := range n.nodes {
		if !in[name] {
			others = append(others, name)
		}
	}
	n.mu.Unlock()
	for _, a := range side {
		for _, b := range others {
			if err := n.Cut(a, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// Heal restores every cut link.
func (n *Net) Heal() error {
	n.mu.Lock()
	var cuts [][2]string
	for k := range n.cuts {
		cuts = append(cuts, k)
	}
	n.cuts = map[[2]string]bool{}
	n.mu.Unlock()
	var first error
	for _, k := range cuts {
		if err := n.route("del", k[0], k[1]); err != nil && first == nil {
			first = err
		}
	}
	return first
}
