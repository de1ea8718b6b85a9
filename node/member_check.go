package node

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/serf/serf"
)

// memberCheckRetry is how long a member that failed the check waits before
// the leader dials it again (and logs it again).
const memberCheckRetry = 30 * time.Second

// memberChecks remembers recent refusals, so a refused member costs one
// dial and one log line per memberCheckRetry, not one per reconcile tick.
type memberChecks struct {
	mu      sync.Mutex
	refused map[string]time.Time // id|raft address -> when
}

// memberCredentialOK (leader) says whether a Serf member may enter Raft.
// With a gossip keyring, Serf itself admitted only key holders. With TLS
// on and no keyring, Serf admits anyone who reaches its port, so the
// leader first dials the member's Raft address and requires the handshake
// to show a node certificate of the cluster CA (PeerClientConfig checks
// the CA and the node role): a process without one stays a gossip member
// that never enters Raft, never receives the log and is never scheduled.
// In a move to TLS (--transition tls) plaintext members are expected.
func (n *Node) memberCredentialOK(m serf.Member, raftAddr string) bool {
	if n.tls == nil || n.keyring != nil || n.cfg.transition().tls {
		return true
	}
	key := m.Tags[tagID] + "|" + raftAddr
	n.memberChecks.mu.Lock()
	at, seen := n.memberChecks.refused[key]
	n.memberChecks.mu.Unlock()
	if seen && time.Since(at) < memberCheckRetry {
		return false
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", raftAddr, n.tls.PeerClientConfig())
	if err == nil {
		_ = conn.Close()
		n.memberChecks.mu.Lock()
		delete(n.memberChecks.refused, key)
		n.memberChecks.mu.Unlock()
		return true
	}
	n.log.Warn("member refused: its Raft port shows no node certificate of the cluster CA", "member", m.Name, "raft", raftAddr, "error", err)
	n.memberChecks.mu.Lock()
	if n.memberChecks.refused == nil {
		n.memberChecks.refused = map[string]time.Time{}
	}
	n.memberChecks.refused[key] = time.Now()
	n.memberChecks.mu.Unlock()
	return false
}
