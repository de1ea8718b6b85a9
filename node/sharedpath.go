package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ragnode/ragnode/errs"
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
	if !n.insideRoot(real) {
		return "", errs.Errorf(errs.Forbidden, "shared path %s is outside --shared-root", p)
	}
	return real, nil
}

// insideRoot reports whether a fully resolved path lies strictly below one
// of --shared-root (the root itself is a directory, never a file to index).
func (n *Node) insideRoot(real string) bool {
	for _, root := range n.cfg.SharedRoots {
		r, err := filepath.EvalSymlinks(root)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(r, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != "." {
			return true
		}
	}
	return false
}

// sharedHead is how much of a shared file submit reads to tell its type:
// the same peek uploads get (checkType).
const sharedHead = 4096

// checkShared vets a shared path at submit under the limits an upload
// meets: confined, a regular file, at most --max-file-size (413 like an
// upload), of a type the pipeline reads (415). It returns the resolved
// path and the size to record.
func (n *Node) checkShared(ctx context.Context, p, name string) (string, int64, error) {
	f, real, size, err := n.openShared(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	if max := n.cfg.MaxFileSize; max > 0 && size > max {
		return "", 0, tooLarge(max)
	}
	head, err := readBounded(ctx, f, sharedHead, min(size, sharedHead))
	if err != nil {
		return "", 0, errs.Errorf(errs.Invalid, "shared path %s: %w", real, err)
	}
	if err := n.checkSharedType(name, head); err != nil {
		return "", 0, err
	}
	return real, size, nil
}

// readShared reads a shared path for a task, vetted again as at submit:
// what the path names may have changed since (swapped for a FIFO, a link,
// a bigger file), and this node's own limit is what protects its memory.
// The read ends when ctx does, so a stalled mount cannot hold a worker slot
// past the task's time budget. Refusals are permanent: retrying reads the
// same file.
func (n *Node) readShared(ctx context.Context, p, name string) ([]byte, error) {
	f, real, size, err := n.openShared(p)
	if err != nil {
		if errs.KindOf(err) != nil {
			return nil, Permanent(err)
		}
		return nil, err // an I/O error on the mount may pass
	}
	defer f.Close()
	max := n.cfg.MaxFileSize
	if max > 0 && size > max {
		return nil, Permanent(tooLarge(max))
	}
	limit := int64(-1)
	if max > 0 {
		// One byte past the limit tells a file that grew since fstat.
		limit = max + 1
	}
	b, err := readBounded(ctx, f, limit, size)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read shared path %s: %w", real, ctx.Err())
		}
		return nil, fmt.Errorf("read shared path %s: %w", real, err)
	}
	if max > 0 && int64(len(b)) > max {
		return nil, Permanent(tooLarge(max))
	}
	if err := n.checkSharedType(name, b[:min(len(b), sharedHead)]); err != nil {
		return nil, Permanent(err)
	}
	return b, nil
}

// checkSharedType applies the uploads' type check to a shared file's head.
func (n *Node) checkSharedType(name string, head []byte) error {
	if n.pipe == nil {
		return nil // a node without the pipeline indexes nothing by type
	}
	if err := n.pipe.CheckSupported(name, head); err != nil {
		return errs.Errorf(errs.Unsupported, "%s: %w", name, err)
	}
	return nil
}

// openShared confines p and opens it as a regular file. It returns the
// open file, its resolved path and its size from the descriptor. Errors
// with an errs kind are refusals; others are I/O errors on the mount.
func (n *Node) openShared(p string) (*os.File, string, int64, error) {
	real, err := n.confined(p)
	if err != nil {
		return nil, "", 0, err
	}
	// Refuse what is visibly not a regular file before opening it: opening
	// a device can act on it (a tape rewinds), and a socket cannot be
	// opened at all. openRegular still decides, on the descriptor.
	if st, err := os.Lstat(real); err == nil && !st.Mode().IsRegular() {
		return nil, "", 0, notRegular(real, st.Mode())
	}
	f, st, err := openRegular(real)
	if err != nil {
		return nil, "", 0, err
	}
	// EvalSymlinks and open are two path walks: a directory above the file
	// swapped for a link in between would open a file outside every root,
	// which O_NOFOLLOW (last component only) does not catch. The kernel's
	// name for the descriptor says where it really is.
	if at, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd()))); err == nil {
		if !n.insideRoot(at) {
			f.Close()
			return nil, "", 0, errs.Errorf(errs.Forbidden, "shared path %s moved outside --shared-root while being opened", p)
		}
	} else if again, err := os.Stat(real); err != nil || !os.SameFile(again, st) {
		// No /proc: at least the confined name must still be this file.
		f.Close()
		return nil, "", 0, errs.Errorf(errs.Forbidden, "shared path %s changed while being opened", p)
	}
	return f, real, st.Size(), nil
}

// openRegular opens a path that confined resolved, and accepts only a
// regular file, judged on the open descriptor so that no swap after the
// check can slip past it. O_NOFOLLOW: the name is already resolved, so a
// link there now was put in since. O_NONBLOCK: opening a FIFO would
// otherwise wait for a writer, holding the worker, uncancellable.
func openRegular(real string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(real, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, nil, errs.Errorf(errs.Forbidden, "shared path %s became a symbolic link after it was confined", real)
	case errors.Is(err, unix.ENXIO):
		// What open(2) says for a socket, or a device with no driver.
		return nil, nil, errs.Errorf(errs.Invalid, "shared path %s is not a regular file", real)
	case err != nil:
		return nil, nil, fmt.Errorf("open shared path: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat shared path: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(real, st.Mode())
	}
	return f, st, nil
}

func notRegular(real string, m os.FileMode) error {
	what := "not a regular file"
	switch {
	case m&os.ModeNamedPipe != 0:
		what = "a named pipe (FIFO), not a regular file"
	case m&os.ModeSocket != 0:
		what = "a socket, not a regular file"
	case m&os.ModeDevice != 0:
		what = "a device, not a regular file"
	case m.IsDir():
		what = "a directory, not a regular file"
	case m&os.ModeSymlink != 0:
		what = "a symbolic link, not a regular file"
	}
	return errs.Errorf(errs.Invalid, "shared path %s is %s", real, what)
}

// readBounded reads at most limit bytes of f (all of it when limit < 0);
// hint is the size fstat gave.
// When ctx ends first it closes f and returns at once: close is what ends
// a read parked on the poller, and a read stuck in the kernel (a hard NFS
// mount) may outlive it, but then only its goroutine waits, not the worker
// slot. f is left unusable in that case.
func readBounded(ctx context.Context, f *os.File, limit, hint int64) ([]byte, error) {
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit)
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Sized from fstat so a file near the limit is not copied through
		// doubling buffers (twice the limit in memory at the worst).
		var buf bytes.Buffer
		if hint >= 0 && (limit < 0 || hint < limit) {
			buf.Grow(int(hint) + bytes.MinRead)
		} else if limit >= 0 {
			buf.Grow(int(limit) + bytes.MinRead)
		}
		_, err := buf.ReadFrom(r)
		done <- result{buf.Bytes(), err}
	}()
	select {
	case res := <-done:
		return res.b, res.err
	case <-ctx.Done():
		f.Close()
		return nil, ctx.Err()
	}
}
