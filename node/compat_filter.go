package node

import (
	"context"
	"errors"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer/store/filter"
)

// Search filters (openrag's filter parameter): a Milvus boolean expression
// over a file's metadata, parsed by package filter. The fields are the
// file's ledger metadata plus file_id, partition and filename, the values
// every chunk of the file carries; chunk-level values (page, chunk index)
// are not filterable with the local store. The ledger's metadata is the
// truth (a PATCH is seen at once), so the expression is evaluated against
// it: per file before ranking (the local store's Where), and on every hit
// after, both spending from one filter.Budget per request.

// parseFilter parses a search filter; a malformed one is errs.Invalid.
func parseFilter(s string) (*filter.Expr, error) {
	e, err := filter.Parse(s)
	if err != nil {
		return nil, errs.Errorf(errs.Invalid, "Invalid filter expression: %w", err)
	}
	return e, nil
}

// fileFields reads a field of a file's metadata for filter.Eval.
func fileFields(meta map[string]any) func(string) (any, bool) {
	return func(k string) (any, bool) {
		v, ok := meta[k]
		return v, ok
	}
}

// fileMatcher evaluates e once per live file of the ledger, spending from
// b, and returns the store's Where: whether a (partition, file ID)'s chunks
// may match.
func (n *Node) fileMatcher(b *filter.Budget, e *filter.Expr) (func(partition, fileID string) bool, error) {
	ok := map[string]bool{}
	var err error
	n.fsm.View(func(s *fsm.State) {
		for k, f := range s.Files {
			if f.LiveTask == "" {
				continue
			}
			meta := make(map[string]any, len(f.Metadata)+3)
			for mk, v := range f.Metadata {
				meta[mk] = v
			}
			meta["filename"], meta["partition"], meta["file_id"] = f.Ref.Name, f.Partition, f.FileID
			var m bool
			if m, err = e.EvalBudget(b, fileFields(meta)); err != nil {
				return
			}
			if m {
				ok[k] = true
			}
		}
	})
	if err != nil {
		return nil, filterError(err)
	}
	return func(partition, fileID string) bool { return ok[fsm.FileKey(partition, fileID)] }, nil
}

// filterBudget is what one search may spend on its filter: it ends with
// the request, so a client that goes away stops the work, and is shared
// by the ledger pass and the hits pass.
func (n *Node) filterBudget(ctx context.Context) *filter.Budget {
	return filter.NewBudget(ctx, n.filterLimit.Load())
}

// filterError classifies an evaluation that stopped. Over budget, the
// expression is well-formed but too costly: the client's to simplify, so
// errs.Invalid (transport answers 422, with the message naming the limit).
// A request that ended keeps its context error: no answer reaches a
// client that went away, and a deadline stays a 504.
func filterError(err error) error {
	if errors.Is(err, filter.ErrBudget) {
		return errs.Wrap(errs.Invalid, err)
	}
	return err
}
