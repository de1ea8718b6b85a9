package scenarios

import (
	"strings"
	"testing"

	"github.com/ragnode/ragnode/transport"
)

func TestCheckHoldsPrefetchRules(t *testing.T) {
	ok := []transport.TaskView{
		{ID: "a", State: "running", NodeID: "n1", GPU: 0, GPUs: "0.5"},
		{ID: "b", State: "assigned", NodeID: "n1", GPU: 0, GPUs: "0.5"},
		{ID: "c", State: "prefetched", NodeID: "n1", GPU: -1},
		{ID: "d", State: "running", NodeID: "n2", GPU: -1},
		{ID: "e", State: "completed", NodeID: "n2", GPU: -1},
	}
	if err := checkHolds(ok); err != nil {
		t.Fatalf("a valid snapshot: %v", err)
	}
	for want, bad := range map[string]transport.TaskView{
		"prefetched task c holds":   {ID: "c", State: "prefetched", NodeID: "n1", GPU: 0, GPUs: "0.25"},
		"prefetched task c names":   {ID: "c", State: "prefetched", GPU: -1},
		"running task x holds no":   {ID: "x", State: "running", GPU: -1},
		"allocated 1250 milli-GPUs": {ID: "x", State: "running", NodeID: "n1", GPU: 0, GPUs: "0.25"},
		"completed task x still":    {ID: "x", State: "completed", GPU: -1, GPUs: "0.25"},
	} {
		ts := append([]transport.TaskView(nil), ok...)
		if bad.ID == "c" {
			ts[2] = bad
		} else {
			ts = append(ts, bad)
		}
		err := checkHolds(ts)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error containing %q, got %v", want, err)
		}
	}
	if !unsettled("prefetched") || unsettled("completed") {
		t.Fatal("prefetched work must keep a scenario from settling")
	}
}
