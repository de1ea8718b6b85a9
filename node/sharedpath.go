package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ragnode/ragnode/node/errs"
)

// confined resolves a shared path and accepts it only inside one of
// --shared-root, after following every symlink: a link inside a root that
// points out of it is refused, and so is every path when no root is set
// (the default), so an API caller can never make the node index a file it
// happens to be able to read (/etc/passwd, a key file). The worker checks
// again when it reads the file, so a link swapped in later does not escape
// either.
func (n *Node) confined(p string) (string, error) {
	if len(n.cfg.SharedRoots) == 0 {
		return "", errs.New(errs.Forbidden, "shared paths are off on this node (start it with --shared-root DIR)")
	}
	if !filepath.IsAbs(p) {
		return "", errs.Errorf(errs.Invalid, "shared path %s is not absolute", p)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(p))
	if err != nil {
		return "", errs.Errorf(errs.Invalid, "shared path: %w", err)
	}
	for _, root := range n.cfg.SharedRoots {
		r, err := filepath.EvalSymlinks(root)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(r, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != "." {
			return real, nil
		}
	}
	return "", errs.Errorf(errs.Forbidden, "shared path %s is outside --shared-root", p)
}

// readShared reads a shared path, confined again at read time.
func (n *Node) readShared(p string) ([]byte, error) {
	real, err := n.confined(p)
	if err != nil {
		return nil, Permanent(err)
	}
	b, err := os.ReadFile(real)
	if err != nil {
		return nil, fmt.Errorf("read shared path: %w", err)
	}
	return b, nil
}
