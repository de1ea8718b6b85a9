package node

import (
	"context"
	"time"

	"github.com/ragnode/ragnode/transport"
)

// storeFanOut applies a store change on every alive node (local stores) or
// once (shared store). It is best effort: search filters by the ledger, and
// the janitor repairs nodes that were down.
func (n *Node) storeFanOut(ctx context.Context, remote func(context.Context, *transport.Client) error, local func(context.Context) error) {
	if n.cfg.Indexer.VDB != "local" {
		if err := local(ctx); err != nil {
			n.log.Warn("store update", "error", err)
		}
		return
	}
	done := make(chan struct{})
	peers := n.alivePeers()
	for _, addr := range peers {
		go func(addr string) {
			defer func() { done <- struct{}{} }()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := remote(cctx, n.client(addr)); err != nil {
				n.log.Warn("store update on peer", "peer", addr, "error", err)
			}
		}(addr)
	}
	if err := local(ctx); err != nil {
		n.log.Warn("store update", "error", err)
	}
	for range peers {
		<-done
	}
}
