package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/fsm"
)

// `ragnode leave` is final. Its node was removed from Raft, its work handed
// back and its copies handed off; brought back on the same data dir it
// would carry a Raft log and a ledger the cluster has moved past, and
// Serf's rejoin would let the leader add it again under the same ID,
// first as a non-voter and then as a voter. Two guards stop that:
//   - the node writes a marker in its data dir once it is out of Raft, and
//     refuses to start on a data dir that holds one, saying how to come
//     back as a new member;
//   - the leader refuses to add to Raft a member whose ID the ledger
//     records as left (fsm.NodeLeft, written by RemoveServer), for a data
//     dir whose marker was lost or removed by hand.
// A new member is a new ID: an empty data dir makes one.

const leftFile = "left"

// ErrLeft is returned by Start on the data dir of a node that left.
var ErrLeft = errors.New("this node left its cluster")

// markLeft records the departure in the data dir.
func markLeft(dir, id, clusterID string) error {
	p := filepath.Join(dir, leftFile)
	line := fmt.Sprintf("node %s left cluster %s at %s\n", id, clusterID, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(p+".tmp", []byte(line), 0o640); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// checkNotLeft refuses a data dir whose node left, in one line that says
// how to rejoin.
func checkNotLeft(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, leftFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Join(dir, leftFile), err)
	}
	when := ""
	if f := strings.Fields(string(b)); len(f) > 0 {
		when = " at " + f[len(f)-1]
	}
	return fmt.Errorf("%w%s (ragnode leave is final): to rejoin as a new member, remove the data dir %s (or start on an empty --data-dir) and start with --join",
		ErrLeft, when, dir)
}

// departedMember (leader) says whether a Serf member is a node the ledger
// records as left; it is never added back to Raft. A refusal is logged
// once per memberCheckRetry per member.
func (n *Node) departedMember(m serf.Member, status string) bool {
	if status != fsm.NodeLeft {
		return false
	}
	key := "left|" + m.Tags[tagID]
	n.memberChecks.mu.Lock()
	defer n.memberChecks.mu.Unlock()
	if at, seen := n.memberChecks.refused[key]; !seen || time.Since(at) >= memberCheckRetry {
		n.log.Warn("refusing a node that left the cluster; it must rejoin as a new member on an empty data dir", "member", m.Name, "id", m.Tags[tagID])
		if n.memberChecks.refused == nil {
			n.memberChecks.refused = map[string]time.Time{}
		}
		n.memberChecks.refused[key] = time.Now()
	}
	return true
}
