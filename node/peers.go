package node

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// peer is another node as gossip sees it.
type peer struct {
	ID   string
	HTTP string
}

// peers owns how this node finds and calls the others: their API addresses
// (Serf tags first, the ledger for members gossip no longer lists), one
// pooled client per address, and the leader's client.
type peers struct {
	selfID   string
	selfHTTP string
	// dial makes the client for a peer address, carrying the node
	// credential (tls.go).
	dial func(addr string) *transport.Client
	serf *serf.Serf
	raft *raft.Raft
	fsm  *fsm.FSM
	// foreign tells members of another cluster, which are never peers.
	foreign func(serf.Member) bool

	mu      sync.Mutex
	clients map[string]*transport.Client
}

func newPeers(selfID, selfHTTP string, dial func(addr string) *transport.Client, s *serf.Serf, r *raft.Raft, f *fsm.FSM, foreign func(serf.Member) bool) *peers {
	return &peers{selfID: selfID, selfHTTP: selfHTTP, dial: dial, serf: s, raft: r, fsm: f, foreign: foreign,
		clients: map[string]*transport.Client{}}
}

// alive returns the other alive members that serve an API, sorted by ID.
func (p *peers) alive() []peer {
	var out []peer
	for _, m := range p.serf.Members() {
		id := m.Tags[tagID]
		if id == "" || id == p.selfID || m.Status != serf.StatusAlive || m.Tags[tagHTTP] == "" || p.foreign(m) {
			continue
		}
		out = append(out, peer{ID: id, HTTP: m.Tags[tagHTTP]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// searchable returns the alive peers whose chunk index is loaded: a peer
// still loading (or whose load failed) answers 503 and is left out of a
// search fan-out (indexload.go).
func (p *peers) searchable() []peer {
	var out []peer
	for _, m := range p.serf.Members() {
		id := m.Tags[tagID]
		if id == "" || id == p.selfID || m.Status != serf.StatusAlive || m.Tags[tagHTTP] == "" || p.foreign(m) || m.Tags[tagIndex] != "" {
			continue
		}
		out = append(out, peer{ID: id, HTTP: m.Tags[tagHTTP]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ranked returns the alive peers ordered by rendezvous hash on key, so the
// copies of one blob or one file land on the same nodes from any caller.
func (p *peers) ranked(key string) []peer { return rendezvous(key, p.alive()) }

// rendezvous orders candidates by highest-random-weight hashing on key: each
// (key, node) pair gets a score and the highest scores win, so adding or
// losing one node moves only the keys that node wins or held.
func rendezvous(key string, cands []peer) []peer {
	type scored struct {
		p     peer
		score uint64
	}
	ss := make([]scored, len(cands))
	for i, c := range cands {
		sum := sha256.Sum256([]byte(key + "/" + c.ID))
		ss[i] = scored{c, binary.BigEndian.Uint64(sum[:8])}
	}
	sort.Slice(ss, func(i, j int) bool {
		if ss[i].score != ss[j].score {
			return ss[i].score > ss[j].score
		}
		return ss[i].p.ID < ss[j].p.ID
	})
	out := make([]peer, len(ss))
	for i, s := range ss {
		out[i] = s.p
	}
	return out
}

// addrOf finds a node's API address from Serf tags, then the ledger.
func (p *peers) addrOf(id string) string {
	if id == p.selfID {
		return p.selfHTTP
	}
	for _, m := range p.serf.Members() {
		if m.Tags[tagID] == id && m.Status == serf.StatusAlive {
			return m.Tags[tagHTTP]
		}
	}
	var h string
	p.fsm.View(func(s *fsm.State) {
		if nd := s.Nodes[id]; nd != nil {
			h = nd.HTTPAddr
		}
	})
	return h
}

// client returns the pooled client for an API address.
func (p *peers) client(addr string) *transport.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.clients[addr]
	if c == nil {
		c = p.dial(addr)
		p.clients[addr] = c
	}
	return c
}

// of returns the client of a node by ID, or nil when its address is unknown.
func (p *peers) of(id string) *transport.Client {
	addr := p.addrOf(id)
	if addr == "" {
		return nil
	}
	return p.client(addr)
}

// leader returns the current leader's client.
func (p *peers) leader() (*transport.Client, error) {
	addr, id := p.raft.LeaderWithID()
	if addr == "" {
		return nil, errs.New(errs.Unavailable, "no leader elected yet")
	}
	h := p.addrOf(string(id))
	if h == "" {
		return nil, errs.Errorf(errs.Unavailable, "leader %s has no known API address yet", id)
	}
	return p.client(h), nil
}

// closeIdle drops the pooled connections once the node has stopped: each
// keeps two goroutines here and one in the peer's server until its idle
// timeout, which would outlive a stopped or refused node by minutes.
func (p *peers) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.HTTP.CloseIdleConnections()
	}
}
