package node

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// The deploy/ example is checked with the real tools where installed:
// docker-compose parses the compose file (no daemon needed), promtool
// checks the Prometheus configuration, and the Grafana dashboard's queries
// use only series a live cluster exports.

func deployPath(parts ...string) string {
	return filepath.Join(append([]string{"..", "deploy"}, parts...)...)
}

func TestDeployComposeParses(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed (Debian package docker-compose): compose file not checked")
	}
	out, err := exec.Command(bin, "-f", deployPath("docker-compose.yml"), "config").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	for _, want := range []string{"ragnode1:", "ragnode2:", "ragnode3:", "prometheus:", "grafana:", "ragnode.json", "prometheus.yml"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("resolved compose file lacks %q", want)
		}
	}
}

func TestDeployPrometheusConfig(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus): prometheus.yml not checked")
	}
	if out, err := exec.Command(bin, "check", "config", deployPath("prometheus.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricRef = regexp.MustCompile(`\bragnode_[a-z0-9_]+`)

// TestDashboardMetricsExist scrapes a real 3-node cluster (GPU and
// GPU-less nodes, tasks run) and checks that every series a dashboard
// query names is exported by some node.
func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile(deployPath("grafana", "ragnode.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard without uid or panels")
	}
	refs := map[string][]string{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || len(p.Targets) == 0 {
			t.Errorf("panel %q: duplicate id or no query", p.Title)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			for _, m := range metricRef.FindAllString(tg.Expr, -1) {
				refs[m] = append(refs[m], p.Title)
			}
		}
	}

	c := newCluster(t)
	ns := c.startN(3, func(i int, cfg *Config) {
		cfg.Token = "tok"
		if i == 2 {
			cfg.GPU.Declared = 1
			cfg.TaskMilli = 250
		}
	})
	waitFor(t, 20*time.Second, "three registered nodes", func() bool {
		k := 0
		ns[0].fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return k == 3
	})
	var ids2 []string
	for i := 0; i < 6; i++ {
		tv, err := clientOf(ns[i%3]).Submit(ctxT(t, 10*time.Second), submitReq("dash", "d"+string(rune('a'+i))+".md"), strings.NewReader("# Dashboard\n\ntext"))
		if err != nil {
			t.Fatal(err)
		}
		ids2 = append(ids2, tv.ID)
	}
	waitFor(t, 30*time.Second, "tasks completed", func() bool {
		st := taskStates(ns[0])
		for _, id := range ids2 {
			if st[id] != fsm.Completed {
				return false
			}
		}
		return true
	})
	typeLine := regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`)
	var missing []string
	defer func() {
		if t.Failed() {
			sort.Strings(missing)
			t.Logf("dashboard queries series no node exports: %v", missing)
		}
	}()
	waitFor(t, 20*time.Second, "every dashboard series exported", func() bool {
		have := map[string]bool{}
		for _, n := range ns {
			for _, m := range typeLine.FindAllStringSubmatch(scrape(t, n), -1) {
				have[m[1]] = true
				if m[2] == "histogram" || m[2] == "summary" {
					for _, suf := range []string{"_bucket", "_sum", "_count"} {
						have[m[1]+suf] = true
					}
				}
			}
		}
		missing = missing[:0]
		for name := range refs {
			if !have[name] {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0
	})
	if len(refs) < 20 {
		t.Fatalf("only %d series referenced: %v", len(refs), refs)
	}
}
