package cli

import (
	"strings"
	"testing"

	"github.com/ragnode/ragnode/transport"
)

// TestWaitHealthyOneNode: on a one-node cluster (failure tolerance 0 by
// arithmetic) --wait-healthy returns by default; an explicit
// --min-tolerance still wins, and the failure says which condition failed
// and what to pass.
func TestWaitHealthyOneNode(t *testing.T) {
	n := startNode(t, "tok")
	addr := n.HTTPAddr()
	out, errOut, code := run(t, "status", "--addr", addr, "--token", "tok", "--wait-healthy", "--timeout", "30s")
	if code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("one-node --wait-healthy: code %d, out %q, err %q", code, out, errOut)
	}
	if !strings.Contains(out, "leader changes (10m)") {
		t.Fatalf("status does not show leader changes: %q", out)
	}
	_, errOut, code = run(t, "status", "--addr", addr, "--token", "tok", "--wait-healthy", "--min-tolerance", "1", "--timeout", "1s")
	if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 ||
		!strings.Contains(errOut, "failure tolerance 0 with 1 voters, 1 wanted (--min-tolerance)") || !strings.Contains(errOut, "--min-tolerance 0") {
		t.Fatalf("explicit tolerance: code %d, err %q", code, errOut)
	}
}

func TestHealthGap(t *testing.T) {
	ok := transport.Status{LeaderID: "l", Healthy: true, CaughtUp: true, Voters: 3, FailureTolerance: 1}
	for _, c := range []struct {
		st       transport.Status
		flag     int
		explicit bool
		want     string // substring; "" means healthy
	}{
		{ok, 0, false, ""},
		{transport.Status{LeaderID: "l", Healthy: true, CaughtUp: true, Voters: 2}, 0, false, ""},
		{transport.Status{LeaderID: "l", Healthy: true, CaughtUp: true, Voters: 3}, 0, false, "failure tolerance 0 with 3 voters, 1 wanted (what its voters allow)"},
		{ok, 2, true, "pass --min-tolerance 1"},
		{transport.Status{}, 0, false, "no leader elected"},
		{transport.Status{LeaderID: "l", Voters: 3, ElectionChurn: true, Unhealthy: []string{"election churn: 5 leader changes"}}, 0, false, "election churn: 5 leader changes"},
		{transport.Status{LeaderID: "l", Healthy: true, Voters: 3, FailureTolerance: 1}, 0, false, "not caught up"},
	} {
		got := healthGap(c.st, minTolerance(c.st, c.flag, c.explicit), c.explicit)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%+v flag %d explicit %v: %q, want %q", c.st, c.flag, c.explicit, got, c.want)
		}
	}
}
