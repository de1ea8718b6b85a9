package node

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestRaftConnsClosedAtShutdown: an RPC blocked writing to a peer that
// stopped reading, and a connection from a peer that sends nothing, both
// end the moment the tracker closes the layer's connections; closing the
// transport alone (what shutdownRaft used to do) leaves the RPC blocked
// until its 10 s deadline.
func TestRaftConnsClosedAtShutdown(t *testing.T) {
	layer, err := newPlainStreamLayer("127.0.0.1:0", nil, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: 2, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger()})
	defer trans.Close()

	// A peer that accepts and never reads.
	stuck, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	held := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := stuck.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	// An inbound connection that sends nothing: NetworkTransport reads it
	// with no deadline.
	in, err := net.Dial("tcp", layer.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()

	big := &raft.AppendEntriesRequest{Entries: []*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte("x"), 64<<20)}}}
	done := make(chan error, 1)
	go func() {
		var resp raft.AppendEntriesResponse
		done <- trans.AppendEntries("stuck", raft.ServerAddress(stuck.Addr().String()), big, &resp)
	}()
	waitFor(t, 5*time.Second, "both connections tracked", func() bool { return layer.conns.live() == 2 })
	_ = trans.Close()
	select {
	case err := <-done:
		t.Fatalf("the RPC ended on transport close alone (%v): the test does not block where it should", err)
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	if n := layer.conns.closeAll(); n != 2 {
		t.Fatalf("closed %d connections, want 2", n)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the RPC to a peer that never read succeeded")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the RPC still blocked after its connection was closed")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the RPC took %s to end after the close", d)
	}
	_ = in.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := in.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the inbound connection was not closed: %v", err)
	}
	// Late connections are refused once closed.
	if _, err := layer.Dial(raft.ServerAddress(stuck.Addr().String()), time.Second); err == nil {
		t.Fatal("a dial after closeAll was allowed")
	}
}
