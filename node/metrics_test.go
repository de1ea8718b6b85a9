package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ragnode/ragnode/fsm"
)

func TestPromName(t *testing.T) {
	for _, c := range []struct {
		key  []string
		kind gmKind
		want string
	}{
		{[]string{"raft", "leader", "lastContact"}, gmSample, "ragnode_raft_leader_last_contact_seconds"},
		{[]string{"raft", "apply"}, gmCounter, "ragnode_raft_apply_total"},
		{[]string{"serf", "coordinate", "adjustment-ms"}, gmSample, "ragnode_serf_coordinate_adjustment_seconds"},
		{[]string{"raft", "peers"}, gmGauge, "ragnode_raft_peers"},
		{[]string{"memberlist", "udp", "sent"}, gmCounter, "ragnode_memberlist_udp_sent_total"},
		{[]string{"serf", "msgs", "sent"}, gmSample, "ragnode_serf_msgs_sent_bytes"},
		{[]string{"serf", "queue", "Intent"}, gmSample, "ragnode_serf_queue_intent"},
		{[]string{"raft", "thread", "fsm", "saturation"}, gmSample, "ragnode_raft_thread_fsm_saturation_ratio"},
	} {
		if got := promName(c.key, c.kind); got != c.want {
			t.Errorf("promName(%v) = %s, want %s", c.key, got, c.want)
		}
	}
}

// TestGoMetricsSink feeds the sink as go-metrics would and reads it back
// through a registry: units, accumulation, label handling.
func TestGoMetricsSink(t *testing.T) {
	g := newGoMetricsSink()
	peer := []gometrics.Label{{Name: "peer_id", Value: "p1"}}
	g.AddSampleWithLabels([]string{"raft", "replication", "appendEntries", "rpc"}, 250, peer)
	g.AddSampleWithLabels([]string{"raft", "replication", "appendEntries", "rpc"}, 750, peer)
	g.IncrCounter([]string{"raft", "apply"}, 2)
	g.IncrCounter([]string{"raft", "apply"}, 3)
	g.IncrCounter([]string{"raft", "apply"}, -1) // never down
	g.SetGauge([]string{"raft", "peers"}, 3)
	g.SetGauge([]string{"raft", "peers"}, 2)
	// Same name, other label names: dropped, not a broken family.
	g.SetGaugeWithLabels([]string{"raft", "peers"}, 9, []gometrics.Label{{Name: "x", Value: "y"}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(g)
	want := `
# HELP ragnode_raft_apply_total go-metrics raft.apply
# TYPE ragnode_raft_apply_total counter
ragnode_raft_apply_total 5
# HELP ragnode_raft_peers go-metrics raft.peers
# TYPE ragnode_raft_peers gauge
ragnode_raft_peers 2
# HELP ragnode_raft_replication_append_entries_rpc_seconds go-metrics raft.replication.appendEntries.rpc
# TYPE ragnode_raft_replication_append_entries_rpc_seconds summary
ragnode_raft_replication_append_entries_rpc_seconds_sum{peer_id="p1"} 1
ragnode_raft_replication_append_entries_rpc_seconds_count{peer_id="p1"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func scrape(t *testing.T, n *Node) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.HTTPAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+n.cfg.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics on %s: %d %s", n.name, resp.StatusCode, b)
	}
	return string(b)
}

// TestMetricsOnThreeNodes scrapes every node of a real cluster after tasks
// ran in two partitions: the bridged Raft, Serf and memberlist series, the
// partition, backlog and per-peer contact series, no peer ID in a metric
// name, and promtool check metrics on each scrape.
func TestMetricsOnThreeNodes(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(3, func(i int, cfg *Config) { cfg.Token = "tok" })
	waitFor(t, 20*time.Second, "three registered nodes", func() bool {
		k := 0
		ns[0].fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return k == 3
	})
	var ids []string
	for i, p := range []string{"alpha", "alpha", "beta"} {
		tv, err := clientOf(ns[i]).Submit(ctxT(t, 10*time.Second), submitReq(p, "f"+string(rune('a'+i))+".txt"), strings.NewReader("metrics text"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tv.ID)
	}
	waitFor(t, 30*time.Second, "tasks completed", func() bool {
		st := taskStates(ns[0])
		for _, id := range ids {
			if st[id] != fsm.Completed {
				return false
			}
		}
		return true
	})
	leader := c.leader()
	var follower *Node
	for _, n := range ns {
		if n != leader {
			follower = n
		}
	}
	// Autopilot publishes peer stats on its own period: wait for them.
	waitFor(t, 20*time.Second, "per-peer contact on the leader", func() bool {
		return strings.Contains(scrape(t, leader), `ragnode_raft_peer_last_contact_seconds{peer="`+follower.name+`"}`)
	})
	peerInName := regexp.MustCompile(`(?m)^ragnode_[a-z0-9_]*` + regexp.QuoteMeta(strings.ToLower(ns[1].ID())))
	for _, n := range ns {
		var text string
		want := []string{
			`ragnode_partition_tasks{partition="alpha",state="completed"} 2`,
			`ragnode_partition_tasks{partition="beta",state="completed"} 1`,
			// Every state has its partition series, as in ragnode_tasks,
			// so the partition series sum to the ledger's count.
			`ragnode_partition_tasks{partition="alpha",state="prefetched"} 0`,
			`ragnode_tasks{state="prefetched"} 0`,
			`ragnode_replication_backlog{kind="blob"} 0`,
			`ragnode_raft_apply_total `, `ragnode_raft_commit_time_seconds_count `,
			`ragnode_raft_fsm_apply_seconds_count `, `ragnode_memberlist_`, `ragnode_serf_`,
		}
		// Ledger totals may be up to totalsMaxAge behind: wait, not sleep.
		deadline := time.Now().Add(10 * time.Second)
		for {
			text = scrape(t, n)
			missing := ""
			for _, w := range want {
				if !strings.Contains(text, w) {
					missing = w
				}
			}
			if missing == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: metrics lack %q\n%s", n.name, missing, text)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if m := peerInName.FindString(text); m != "" {
			t.Errorf("%s: a peer ID in a metric name: %s", n.name, m)
		}
		if n == leader && !strings.Contains(text, `ragnode_raft_replication_append_entries_rpc_seconds_count{peer_id="`) {
			t.Errorf("leader lacks per-peer replication timings")
		}
		if n != leader && !strings.Contains(text, `ragnode_raft_peer_last_contact_seconds{peer="`+leader.name+`"}`) {
			t.Errorf("%s lacks its contact with the leader", n.name)
		}
		if t.Failed() {
			t.Log(text)
			t.FailNow()
		}
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			t.Skip("promtool not installed (Debian package prometheus); content checked, format not")
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader([]byte(text))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics on %s: %v\n%s", n.name, err, out)
		}
	}
}

func TestPartitionCountsBounded(t *testing.T) {
	s := fsm.New()
	for p := 0; p < partitionSeriesMax+5; p++ {
		for i := 0; i <= p; i++ {
			id := string(rune('A'+p)) + string(rune('a'+i))
			s.Tasks[id] = &fsm.Task{ID: id, Partition: string(rune('A' + p)), State: fsm.Queued}
		}
	}
	got := partitionCounts(s)
	if len(got) != partitionSeriesMax+1 {
		t.Fatalf("%d partitions exported, want %d and _other", len(got), partitionSeriesMax)
	}
	// The five smallest (1..5 tasks) are merged.
	if got["_other"][fsm.Queued] != 1+2+3+4+5 || got["A"] != nil || got[string(rune('A'+partitionSeriesMax+4))][fsm.Queued] != partitionSeriesMax+5 {
		t.Fatalf("merge: %v", got)
	}
}

type failingEmbedder struct{ err error }

func (f failingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	return nil, f.err
}
func (f failingEmbedder) Dim() int     { return 3 }
func (f failingEmbedder) Name() string { return "failing" }

// TestEmbedderMetrics: a failing embedder call is counted, one the caller
// cancelled is timed but is not the embedder's error.
func TestEmbedderMetrics(t *testing.T) {
	m := newMetrics()
	e := m.instrumentEmbedder(failingEmbedder{err: errors.New("503 from embedder")})
	if _, err := e.Embed(context.Background(), []string{"a", "b"}); err == nil {
		t.Fatal("error swallowed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ce := m.instrumentEmbedder(failingEmbedder{err: ctx.Err()})
	if _, err := ce.Embed(ctx, []string{"c"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	if v := testutil.ToFloat64(m.deps.embedErrors); v != 1 {
		t.Fatalf("embedder errors %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.deps.embedTexts); v != 3 {
		t.Fatalf("texts %v", v)
	}
	if e.Dim() != 3 || e.Name() != "failing" {
		t.Fatal("wrapper hides the embedder's identity")
	}
}
