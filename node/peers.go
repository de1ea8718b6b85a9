package node

import (
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"sort"

	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// leaderClient returns an API client for the current leader.
func (n *Node) leaderClient() (*transport.Client, error) {
	addr, id := n.raft.LeaderWithID()
	if addr == "" {
		return nil, transport.Errorf(http.StatusServiceUnavailable, "no leader elected yet")
	}
	h := n.httpAddrOf(string(id))
	if h == "" {
		return nil, transport.Errorf(http.StatusServiceUnavailable, "leader %s has no known API address yet", id)
	}
	return n.client(h), nil
}

// httpAddrOf finds a node's API address from Serf tags, then the ledger.
func (n *Node) httpAddrOf(id string) string {
	if id == n.id {
		return n.httpAddr
	}
	for _, m := range n.serf.Members() {
		if m.Tags[tagID] == id && m.Status == serf.StatusAlive {
			return m.Tags[tagHTTP]
		}
	}
	var h string
	n.fsm.View(func(s *fsm.State) {
		if nd := s.Nodes[id]; nd != nil {
			h = nd.HTTPAddr
		}
	})
	return h
}

func (n *Node) client(addr string) *transport.Client {
	n.clientsMu.Lock()
	defer n.clientsMu.Unlock()
	c := n.clients[addr]
	if c == nil {
		c = transport.NewClient(addr, n.cfg.Token)
		n.clients[addr] = c
	}
	return c
}

// rankPeers returns up to k alive peers' API addresses, ranked by rendezvous
// hash on key so the same file lands on the same peers.
func (n *Node) rankPeers(key string, k int) []string {
	if k <= 0 {
		return nil
	}
	type cand struct {
		addr  string
		score uint64
	}
	var cs []cand
	for _, m := range n.serf.Members() {
		id := m.Tags[tagID]
		if id == "" || id == n.id || m.Status != serf.StatusAlive || m.Tags[tagHTTP] == "" {
			continue
		}
		sum := sha256.Sum256([]byte(key + "/" + id))
		cs = append(cs, cand{m.Tags[tagHTTP], binary.BigEndian.Uint64(sum[:8])})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].score > cs[j].score })
	var out []string
	for i := 0; i < len(cs) && i < k; i++ {
		out = append(out, cs[i].addr)
	}
	return out
}

func (n *Node) idOfHTTP(addr string) string {
	for _, m := range n.serf.Members() {
		if m.Tags[tagHTTP] == addr {
			return m.Tags[tagID]
		}
	}
	return ""
}

// alivePeers returns other alive nodes' API addresses.
func (n *Node) alivePeers() []string {
	return n.rankPeers("", 1<<30)
}
