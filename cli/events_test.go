package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragnode/ragnode/transport"
)

// syncBuffer lets the test read what a running command has written so far.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEventsCommand reads a real node's replicated history as JSON and as
// a table, then follows it and sees a drain made meanwhile arrive.
func TestEventsCommand(t *testing.T) {
	n := startNode(t, "tok")
	addr := n.HTTPAddr()
	var evs []jsonEvent
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, errOut, code := run(t, "events", "--addr", addr, "--token", "tok", "-o", "json")
		if code != 0 {
			t.Fatalf("events: %d %s", code, errOut)
		}
		evs = nil
		if err := json.Unmarshal([]byte(out), &evs); err != nil {
			t.Fatalf("events -o json is not a JSON array: %v\n%s", err, out)
		}
		kinds := map[string]bool{}
		for _, e := range evs {
			kinds[e.Kind] = true
			if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil || !strings.HasSuffix(e.Time, "Z") {
				t.Fatalf("event time %q is not RFC 3339 in UTC: %v", e.Time, err)
			}
		}
		if kinds["leader"] && kinds["node_registered"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader and node_registered events: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _, code := run(t, "events", "--addr", addr, "--token", "tok")
	if code != 0 || !strings.HasPrefix(out, "SEQ") || !strings.Contains(out, "solo is leader") || !strings.Contains(out, "solo registered") {
		t.Fatalf("table output (%d):\n%s", code, out)
	}
	last := evs[len(evs)-1].Seq
	out, _, code = run(t, "events", "--addr", addr, "--token", "tok", "-o", "json", "--since", "1000000")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("events past the end: %d %q", code, out)
	}

	// --follow prints one JSON object per line and picks up new events.
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- NewApp(&stdout, &stderr).RunContext(ctx, []string{"ragnode", "events", "--addr", addr, "--token", "tok",
			"-o", "json", "--follow", "--interval", "100ms", "--since", itoa(last)})
	}()
	// Through the client, not a second App: urfave/cli's help and version
	// flags are package globals that two concurrent Apps race on.
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	if err := transport.NewClient(addr, "tok").Drain(dctx, transport.DrainRequest{Node: "solo"}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		var got []jsonEvent
		for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var e jsonEvent
			if line != "" && json.Unmarshal([]byte(line), &e) == nil {
				got = append(got, e)
			}
		}
		found := false
		for _, e := range got {
			if e.Seq <= last {
				t.Fatalf("--since %d printed event %d", last, e.Seq)
			}
			found = found || (e.Kind == "drain" && strings.Contains(e.Msg, "solo draining"))
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follow never showed the drain: %q %q", stdout.String(), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not stop when cancelled")
	}
}

// TestEventsCommandBadFlags: wrong flags are one line and exit 1.
func TestEventsCommandBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"events", "--addr", "http://nohost/v1"},
		{"events", "--addr", "127.0.0.1:1", "--interval", "0s"},
		{"events", "--addr", "127.0.0.1:1", "-o", "yaml"},
		{"events", "--since", "minus-one"},
	} {
		_, errOut, code := run(t, args...)
		if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.HasPrefix(errOut, "ragnode: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	// A node that is not there is a one-line error too.
	_, errOut, code := run(t, "events", "--addr", "127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "cannot reach ragnode") {
		t.Errorf("unreachable node: exit %d, stderr %q", code, errOut)
	}
}

// jsonEvent is an event as -o json prints it: its time in RFC 3339.
type jsonEvent struct {
	Seq    uint64 `json:"seq"`
	Time   string `json:"time"`
	Kind   string `json:"kind"`
	NodeID string `json:"node_id"`
	TaskID string `json:"task_id"`
	Msg    string `json:"msg"`
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
