package node

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// TestQueueInfoOnThreeNodes: 3 nodes of two virtual GPUs with quarter-GPU
// tasks offer 24 slots; /queue/info says so and max_per_actor is a node's
// 8, not 0 because no --pool-size was given. A negative top_k is refused.
func TestQueueInfoOnThreeNodes(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(3, func(i int, cfg *Config) {
		cfg.GPU.Declared = 2
		cfg.TaskMilli = 250
	})
	waitFor(t, 20*time.Second, "three registered nodes", func() bool {
		k := 0
		ns[0].fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return k == 3
	})
	var got struct {
		Workers map[string]int `json:"workers"`
	}
	waitFor(t, 20*time.Second, "24 slots in /queue/info", func() bool {
		resp, err := http.Get("http://" + ns[1].HTTPAddr() + "/queue/info")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&got) == nil && got.Workers["total_slots"] == 24
	})
	if got.Workers["max_per_actor"] != 8 || got.Workers["pool_size"] != 0 {
		t.Errorf("/queue/info workers: %v", got.Workers)
	}
	resp, err := http.Post("http://"+ns[0].HTTPAddr()+"/v1/search", "application/json", strings.NewReader(`{"query": "x", "top_k": -3}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "top_k is -3; want 1 to 1000") {
		t.Errorf("top_k -3: %d %s", resp.StatusCode, body)
	}
}
