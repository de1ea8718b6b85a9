package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"time"

	"github.com/hashicorp/serf/serf"
)

// replicate copies a local blob to up to want other alive nodes and returns
// the holders (have plus the new copies). Targets are ranked by rendezvous
// hashing on the blob, so copies spread evenly and the choice is stable.
func (n *Node) replicate(ctx context.Context, hash string, want int, have []string) []string {
	holders := append([]string(nil), have...)
	if want <= 0 {
		return holders
	}
	skip := map[string]bool{}
	for _, h := range have {
		skip[h] = true
	}
	type cand struct {
		id, addr string
		score    uint64
	}
	var cands []cand
	for _, m := range n.serf.Members() {
		id := m.Tags[tagID]
		if id == "" || skip[id] || m.Status != serf.StatusAlive || m.Tags[tagHTTP] == "" {
			continue
		}
		sum := sha256.Sum256([]byte(hash + "/" + id))
		cands = append(cands, cand{id: id, addr: m.Tags[tagHTTP], score: binary.BigEndian.Uint64(sum[:8])})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	for _, c := range cands {
		if want == 0 {
			break
		}
		rc, _, err := n.blobs.Open(hash)
		if err != nil {
			n.log.Warn("replicate: open local blob", "hash", hash, "error", err)
			return holders
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = n.client(c.addr).PutBlob(cctx, hash, rc)
		cancel()
		rc.Close()
		if err != nil {
			n.log.Warn("replicate blob", "to", c.id, "error", err)
			continue
		}
		holders = append(holders, c.id)
		want--
	}
	return holders
}
