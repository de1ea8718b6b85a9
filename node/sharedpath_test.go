package node

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/transport"
)

const sharedTestMax = 1 << 20

// sharedNode is just enough of a node for the shared-path checks: roots,
// the size limit, and the pipeline's type check (its zero value has no
// converters, so only the built-in loaders decide).
func sharedNode(t *testing.T) (*Node, string) {
	t.Helper()
	root := t.TempDir()
	return &Node{cfg: Config{SharedRoots: []string{root}, MaxFileSize: sharedTestMax}, pipe: &indexer.Pipeline{}}, root
}

func writeShared(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sparse makes a file of the given size without using the disk for it.
func sparse(t *testing.T, p string, head []byte, size int64) {
	t.Helper()
	writeShared(t, p, head)
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
}

// within runs f and fails the test if it has not returned in d: a FIFO
// that is opened or read blocking would hang the test otherwise.
func within(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
		return nil
	}
}

func readSharedWithin(t *testing.T, n *Node, p, name string) ([]byte, error) {
	t.Helper()
	var b []byte
	err := within(t, 5*time.Second, "readShared "+p, func() error {
		var err error
		b, err = n.readShared(ctxT(t, 10*time.Second), p, name)
		return err
	})
	return b, err
}

func checkSharedWithin(t *testing.T, n *Node, p, name string) error {
	t.Helper()
	return within(t, 5*time.Second, "checkShared "+p, func() error {
		_, _, err := n.checkShared(ctxT(t, 10*time.Second), p, name)
		return err
	})
}

func wantRefused(t *testing.T, what string, err error, kind *errs.Kind, permanent bool) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: %v, want %s", what, err, kind)
	}
	if permanent && !IsPermanent(err) {
		t.Fatalf("%s: %v is not permanent: the task would retry the same file", what, err)
	}
}

func TestSharedNormalFileRead(t *testing.T) {
	n, root := sharedNode(t)
	p := filepath.Join(root, "doc.md")
	data := []byte("# Shared\n\nEvery node mounts the same export.\n")
	writeShared(t, p, data)
	real, size, err := n.checkShared(ctxT(t, 5*time.Second), p, "doc.md")
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(data)) {
		t.Fatalf("size %d, want %d", size, len(data))
	}
	b, err := readSharedWithin(t, n, real, "doc.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, data) {
		t.Fatalf("read %q, want %q", b, data)
	}
}

func TestSharedFIFORefused(t *testing.T) {
	n, root := sharedNode(t)
	p := filepath.Join(root, "pipe.txt")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "submit of a FIFO", checkSharedWithin(t, n, p, "pipe.txt"), errs.Invalid, false)
	_, err := readSharedWithin(t, n, p, "pipe.txt")
	wantRefused(t, "read of a FIFO", err, errs.Invalid, true)
}

// TestSharedSwappedForFIFO: the file passed at submit and became a FIFO
// before the worker read it (the attack left the task loading forever).
func TestSharedSwappedForFIFO(t *testing.T) {
	n, root := sharedNode(t)
	p := filepath.Join(root, "doc.txt")
	writeShared(t, p, []byte("plain text"))
	real, _, err := n.checkShared(ctxT(t, 5*time.Second), p, "doc.txt")
	if err != nil {
		t.Fatal(err)
	}
	swap := func() {
		if err := os.Remove(real); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(real, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	swap()
	_, err = readSharedWithin(t, n, real, "doc.txt")
	wantRefused(t, "read of a file swapped for a FIFO", err, errs.Invalid, true)

	// Swapped between confinement and open, past the Lstat: the
	// descriptor's own fstat refuses it, and the open did not wait.
	if err := os.Remove(real); err != nil {
		t.Fatal(err)
	}
	writeShared(t, real, []byte("plain text"))
	real, err = n.confined(p)
	if err != nil {
		t.Fatal(err)
	}
	swap()
	err = within(t, 5*time.Second, "openRegular on a FIFO", func() error {
		f, _, err := openRegular(real)
		if f != nil {
			f.Close()
		}
		return err
	})
	wantRefused(t, "open of a FIFO after confinement", err, errs.Invalid, false)
}

func TestSharedOversized(t *testing.T) {
	n, root := sharedNode(t)
	big := filepath.Join(root, "big.txt")
	sparse(t, big, []byte("text\n"), sharedTestMax+1)
	wantRefused(t, "submit of an oversized file", checkSharedWithin(t, n, big, "big.txt"), errs.TooLarge, false)
	_, err := readSharedWithin(t, n, big, "big.txt")
	wantRefused(t, "read of an oversized file", err, errs.TooLarge, true)

	// At the limit it passes; grown past it after submit, the read refuses.
	p := filepath.Join(root, "grows.txt")
	sparse(t, p, bytes.Repeat([]byte("text\n"), 1000), sharedTestMax) // text past the type check's peek
	if err := checkSharedWithin(t, n, p, "grows.txt"); err != nil {
		t.Fatalf("a file at the limit: %v", err)
	}
	if err := os.Truncate(p, 1<<30); err != nil {
		t.Fatal(err)
	}
	_, err = readSharedWithin(t, n, p, "grows.txt")
	wantRefused(t, "read of a file grown past the limit", err, errs.TooLarge, true)
}

func TestSharedSymlinkEscape(t *testing.T) {
	n, root := sharedNode(t)
	secret := filepath.Join(t.TempDir(), "key.txt")
	writeShared(t, secret, []byte("private"))
	link := filepath.Join(root, "link.txt")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "submit of a link out of the root", checkSharedWithin(t, n, link, "link.txt"), errs.Forbidden, false)
	_, err := readSharedWithin(t, n, link, "link.txt")
	wantRefused(t, "read of a link out of the root", err, errs.Forbidden, true)

	// A link put where the confined name was: O_NOFOLLOW refuses it.
	p := filepath.Join(root, "doc.txt")
	writeShared(t, p, []byte("plain text"))
	real, err := n.confined(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(real); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, real); err != nil {
		t.Fatal(err)
	}
	f, _, err := openRegular(real)
	if f != nil {
		f.Close()
	}
	wantRefused(t, "open of a link swapped in after confinement", err, errs.Forbidden, false)
}

func TestSharedUnsupportedType(t *testing.T) {
	n, root := sharedNode(t)
	p := filepath.Join(root, "tool.txt")
	writeShared(t, p, append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...))
	wantRefused(t, "submit of an executable", checkSharedWithin(t, n, p, "tool.txt"), errs.Unsupported, false)
	_, err := readSharedWithin(t, n, p, "tool.txt")
	wantRefused(t, "read of an executable", err, errs.Unsupported, true)
}

func TestSharedDirectoryRefused(t *testing.T) {
	n, root := sharedNode(t)
	d := filepath.Join(root, "sub")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "submit of a directory", checkSharedWithin(t, n, d, "sub"), errs.Invalid, false)
	_, err := readSharedWithin(t, n, d, "sub")
	wantRefused(t, "read of a directory", err, errs.Invalid, true)
}

// TestSharedReadEndsWithContext: a read that never gets data (here a FIFO
// with no writer but ourselves, standing for a stalled mount) returns when
// its context ends, and the descriptor is closed.
func TestSharedReadEndsWithContext(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stall")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	// O_RDWR opens a FIFO on Linux without waiting for a peer.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = within(t, 5*time.Second, "a stalled read", func() error {
		_, err := readBounded(ctx, f, -1, -1)
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled read: %v, want the deadline", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("the descriptor is still open after the deadline: write gave %v", err)
	}
}

// TestSharedPathSubmitLimits: through the API a shared path gets the
// statuses an upload gets: 413 past --max-file-size, 415 for a type the
// pipeline cannot read.
func TestSharedPathSubmitLimits(t *testing.T) {
	root := t.TempDir()
	c := newCluster(t)
	cfg := baseConfig(t, "n1")
	cfg.SharedRoots, cfg.MaxFileSize = []string{root}, sharedTestMax
	n := c.start(cfg)
	c.mustLeader(t)
	big := filepath.Join(root, "big.txt")
	sparse(t, big, []byte("text\n"), 3<<30) // the attack's 1.5 GB, and more
	exe := filepath.Join(root, "tool.txt")
	writeShared(t, exe, append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...))
	fifo := filepath.Join(root, "pipe.txt")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		code int
	}{{big, http.StatusRequestEntityTooLarge}, {exe, http.StatusUnsupportedMediaType}, {fifo, http.StatusBadRequest}} {
		_, err := clientOf(n).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: filepath.Base(tc.path), SharedPath: tc.path}, nil)
		if !transport.IsStatus(err, tc.code) {
			t.Fatalf("submit %s: %v, want %d", tc.path, err, tc.code)
		}
	}
}
