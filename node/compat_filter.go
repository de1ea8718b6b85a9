package node

import (
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer/store/filter"
	"github.com/ragnode/ragnode/node/errs"
)

// Search filters (openrag's filter parameter): a Milvus boolean expression
// over a file's metadata, parsed by package filter. The fields are the
// file's ledger metadata plus file_id, partition and filename, the values
// every chunk of the file carries; chunk-level values (page, chunk index)
// are not filterable with the local store. The ledger's metadata is the
// truth (a PATCH is seen at once), so the expression is evaluated against
// it: per file before ranking (the local store's Where), and on every hit
// after.

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

// fileMatcher evaluates e once per live file of the ledger and returns the
// store's Where: whether a (partition, file ID)'s chunks may match.
func (n *Node) fileMatcher(e *filter.Expr) func(partition, fileID string) bool {
	ok := map[string]bool{}
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
			if e.Eval(fileFields(meta)) {
				ok[k] = true
			}
		}
	})
	return func(partition, fileID string) bool { return ok[fsm.FileKey(partition, fileID)] }
}
