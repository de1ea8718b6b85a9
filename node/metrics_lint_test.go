package node

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/ragnode/ragnode/fsm"
)

// TestMetricsLintWithGPUs scrapes a node with virtual GPUs and one whose
// GPUs come from a mocked NVML (a DGX H100: 8 cards with memory) and lints
// each scrape as promtool check metrics does (its linter is promlint):
// no gauge ends in _total, no counter lacks it, units are base units. The
// capacity gauge is ragnode_gpu_milli_capacity. promtool itself runs too
// where it is installed.
func TestMetricsLintWithGPUs(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(2, func(i int, cfg *Config) {
		cfg.TaskMilli = 250
		if i == 0 {
			cfg.GPU.Declared = 2
			return
		}
		cfg.GPU.Declared = -1
		cfg.GPU.NVML = dgxh100.New()
	})
	waitFor(t, 20*time.Second, "both nodes registered with their GPUs", func() bool {
		ok := false
		ns[0].fsm.View(func(s *fsm.State) {
			a, b := s.Nodes[ns[0].ID()], s.Nodes[ns[1].ID()]
			ok = a != nil && b != nil && len(a.GPUs) == 2 && len(b.GPUs) == 8
		})
		return ok
	})
	promtool, _ := exec.LookPath("promtool")
	for i, n := range ns {
		resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`ragnode_gpu_milli_capacity{gpu="0",node="n1"} 1000`, `ragnode_gpu_milli_capacity{gpu="7",node="n2"} 1000`,
			`ragnode_gpu_memory_total_bytes{gpu="7",node="n2"} 8.589934592e+10`} {
			if i == 0 && !strings.Contains(string(body), want) {
				t.Errorf("the leader's scrape lacks %s:\n%s", want, grepLines(string(body), "ragnode_gpu"))
			}
		}
		if strings.Contains(string(body), "ragnode_gpu_milli_total") {
			t.Error("the gauge is still named ragnode_gpu_milli_total")
		}
		problems, err := promlint.New(bytes.NewReader(body)).Lint()
		if err != nil {
			t.Fatalf("%s: lint: %v", n.Name(), err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", n.Name(), p.Metric, p.Text)
		}
		if promtool != "" {
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = bytes.NewReader(body)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool check metrics on %s: %v\n%s", n.Name(), err, out)
			}
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
