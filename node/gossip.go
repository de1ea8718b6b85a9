package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hashicorp/serf/serf"
)

func (n *Node) serfLoop() {
	defer n.wg.Done()
	for {
		select {
		case e := <-n.serfEvents:
			n.obs.serfEvent(e)
			if _, ok := e.(serf.MemberEvent); ok {
				n.maybeBootstrapExpect()
				n.triggerReconcile()
			}
		case <-n.stopCh:
			return
		}
	}
}

func (n *Node) startSerf(hasState bool) error {
	sc := serf.DefaultConfig()
	sc.NodeName = n.name
	sc.Logger = n.log.Named("serf").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	sc.EventCh = n.serfEvents
	sc.SnapshotPath = filepath.Join(n.cfg.DataDir, "serf", "local.snapshot")
	if err := os.MkdirAll(filepath.Dir(sc.SnapshotPath), 0o750); err != nil {
		return err
	}
	sc.RejoinAfterLeave = true
	sc.Tags = map[string]string{
		tagID:      n.id,
		tagHTTP:    n.httpAddr,
		tagRaft:    n.raftAddr,
		tagVersion: Version,
		tagCluster: n.clusterID.Load().(string),
	}
	if n.cfg.BootstrapExpect > 0 {
		sc.Tags[tagExpect] = strconv.Itoa(n.cfg.BootstrapExpect)
	}
	if hasState {
		sc.Tags[tagState] = "1"
	}
	if t := n.indexTag(); t != "" {
		sc.Tags[tagIndex] = t // indexload.go: not in search fan-outs until loaded
	}
	mc := sc.MemberlistConfig
	if n.cfg.Timing == TimingFast {
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.GossipInterval = 50 * time.Millisecond
		mc.SuspicionMult = 2
		mc.PushPullInterval = 5 * time.Second
		mc.TCPTimeout = time.Second
		sc.ReapInterval = time.Second
	}
	n.detectLag = time.Duration(mc.SuspicionMult+1) * mc.ProbeInterval
	mc.Name = n.name
	mc.BindAddr = n.cfg.Bind
	mc.BindPort = n.cfg.SerfPort
	mc.AdvertiseAddr = n.cfg.advertiseIP()
	mc.AdvertisePort = n.cfg.SerfPort
	mc.Logger = sc.Logger
	if n.keyring != nil {
		// The keyring Raft's handshake reads too (security.go); Serf writes
		// it back to KeyringFile on every keyring change.
		mc.Keyring = n.keyring
		sc.KeyringFile = n.keyringPath()
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = n.cfg.transition().gossipVerify()
	}
	s, err := serf.Create(sc)
	if err != nil {
		return fmt.Errorf("start serf on %s:%d: %w", n.cfg.Bind, n.cfg.SerfPort, err)
	}
	n.serf = s
	lm := s.LocalMember()
	n.serfAddr = net.JoinHostPort(lm.Addr.String(), strconv.Itoa(int(lm.Port)))
	return nil
}

func (n *Node) setStateTag() { n.setTag(tagState, "1") }

// setTag gossips one changed tag of this node.
// setTagMu makes setTag's read-modify-write of the tags atomic: loops of
// one node set different tags at once (state, cluster, leaving, index).
var setTagMu sync.Mutex

func (n *Node) setTag(key, value string) {
	setTagMu.Lock()
	defer setTagMu.Unlock()
	tags := map[string]string{}
	for k, v := range n.serf.LocalMember().Tags {
		tags[k] = v
	}
	if tags[key] == value {
		return
	}
	tags[key] = value
	if err := n.serf.SetTags(tags); err != nil {
		n.log.Warn("set serf tags", "error", err)
	}
}

func (n *Node) joinWithRetry(addrs []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	backoff := 200 * time.Millisecond
	for {
		_, err := n.serf.Join(addrs, true)
		if err == nil {
			n.log.Info("joined cluster", "via", strings.Join(addrs, ","))
			return nil
		}
		if time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("join %s: %w", strings.Join(addrs, ","), err)
		}
		n.log.Warn("join failed, retrying", "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-n.stopCh:
			return errors.New("join: node stopping")
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}
