package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
)

// First-class partitions: created empty and configured through the ledger
// (fsm/partitions.go), so every node lists the same ones.

// CreatePartition implements transport.CompatBackend.
func (n *Node) CreatePartition(ctx context.Context, partition string) error {
	if err := validPartition(partition); err != nil {
		return err
	}
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdCreatePartition, Partition: partition})
	if err != nil {
		return err
	}
	if err := res.Error(); err != nil {
		return fmt.Errorf("create partition %s: %w", partition, err)
	}
	return nil
}

// UpdatePartition implements transport.CompatBackend.
func (n *Node) UpdatePartition(ctx context.Context, partition string, cfg map[string]any) error {
	if err := validMetadata(cfg); err != nil {
		return err
	}
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdPartitionConfig, Partition: partition, Metadata: cfg})
	if err != nil {
		return err
	}
	if err := res.Error(); err != nil {
		if errors.Is(err, fsm.ErrPartitionMissing) {
			// The ledger's own code, given the failure kind transport maps.
			return errs.Wrap(errs.NotFound, fmt.Errorf("configure partition %s: %w", partition, err))
		}
		return fmt.Errorf("configure partition %s: %w", partition, err)
	}
	return nil
}
