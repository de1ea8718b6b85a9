package node

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// TestUploadsRefusedWithTheirOwnKind: every upload route applies the same
// name rule and answers each kind of refusal with its own status, once.
func TestUploadsRefusedWithTheirOwnKind(t *testing.T) {
	c := newCluster(t)
	n := c.start(baseConfig(t, "n1"))
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	cl := clientOf(n)
	ctx := ctxT(t, 30*time.Second)

	file := func(id, name, body string) transport.BatchFile {
		return transport.BatchFile{FileID: id, FileName: name, Size: int64(len(body)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
	}
	res, err := cl.SubmitBatch(ctx, "p", nil, []transport.BatchFile{
		file("ok.txt", "ok.txt", "hello"),
		file("bad\x07id", "bad.txt", "a control character in the id"),
		file("pic.exe", "pic.exe", "MZ\x90\x00binary"),
		file("ok.txt", "ok.txt", "the same file id again"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("results %+v", res)
	}
	if res[0].Task == nil || res[0].Code != 0 {
		t.Fatalf("good file refused: %+v", res[0])
	}
	if res[1].Code != http.StatusBadRequest || !strings.Contains(res[1].Error, "control characters") {
		t.Fatalf("control character in file_id: %+v", res[1])
	}
	// A NUL cannot even be framed in the bulk stream: the client refuses it
	// with an error instead of crashing.
	if _, err := cl.SubmitBatch(ctx, "p", nil, []transport.BatchFile{file("a\x00b", "a.txt", "x")}); err == nil {
		t.Fatal("a NUL in a bulk file ID was sent")
	}
	if res[2].Code != http.StatusUnsupportedMediaType || strings.Count(res[2].Error, "(supported:") != 1 {
		t.Fatalf("unsupported type: %+v", res[2])
	}
	// The same call through the single-file route answers the same way.
	_, err = cl.Submit(ctx, transport.SubmitRequest{Partition: "p", FileID: "x\x00y", FileName: "x.txt"}, bytes.NewReader([]byte("x")))
	if !transport.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("single route, NUL id: %v", err)
	}
	_, err = cl.Submit(ctx, transport.SubmitRequest{Partition: "p", FileID: "pic.exe", FileName: "pic.exe"}, bytes.NewReader([]byte("MZ\x90\x00binary")))
	if !transport.IsStatus(err, http.StatusUnsupportedMediaType) || strings.Count(err.Error(), "(supported:") != 1 {
		t.Fatalf("single route, unsupported: %v", err)
	}
	// Create mode on an existing file is a conflict, replace of a missing one not found.
	_, err = cl.Submit(ctx, transport.SubmitRequest{Partition: "p", FileID: "ok.txt", FileName: "ok.txt", Mode: fsm.ModeCreate}, strings.NewReader("again"))
	if !transport.IsStatus(err, http.StatusConflict) {
		t.Fatalf("create over existing: %v", err)
	}
	_, err = cl.Submit(ctx, transport.SubmitRequest{Partition: "p", FileID: "nope.txt", FileName: "nope.txt", Mode: fsm.ModeReplace}, strings.NewReader("x"))
	if !transport.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("replace of missing: %v", err)
	}
}

// TestEmptyFileCompletesWithNoChunks: an empty upload is a file with no
// text, indexed once as zero chunks, never retried.
func TestEmptyFileCompletesWithNoChunks(t *testing.T) {
	c := newCluster(t)
	n := c.start(baseConfig(t, "n1"))
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	tv, err := clientOf(n).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: "empty.txt", FileName: "empty.txt"}, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	final := waitTerminal(t, c, []string{tv.ID}, 20*time.Second)
	if tk := final[tv.ID]; tk.State != fsm.Completed || tk.Chunks != 0 || tk.Failures != 0 || tk.Attempt != 1 {
		t.Fatalf("empty file ended %s with %d chunks after %d failures (attempt %d): %s", tk.State, tk.Chunks, tk.Failures, tk.Attempt, tk.Error)
	}
}

// TestInputCaps: metadata above the cap is refused with 413 naming it, on
// every route that takes metadata; top_k above the cap is refused.
func TestInputCaps(t *testing.T) {
	c := newCluster(t)
	n := c.start(baseConfig(t, "n1"))
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	cl := clientOf(n)
	ctx := ctxT(t, 20*time.Second)
	big := map[string]any{"blob": strings.Repeat("m", maxMetadataBytes)}
	_, err := cl.Submit(ctx, transport.SubmitRequest{Partition: "p", FileID: "a.txt", FileName: "a.txt", Metadata: big}, strings.NewReader("hello"))
	if !transport.IsStatus(err, http.StatusRequestEntityTooLarge) || !strings.Contains(err.Error(), "65536") {
		t.Fatalf("large metadata, single route: %v", err)
	}
	_, err = cl.SubmitBatch(ctx, "p", big, []transport.BatchFile{{FileID: "b.txt", FileName: "b.txt", Size: 1,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("b")), nil }}})
	if !transport.IsStatus(err, http.StatusRequestEntityTooLarge) {
		t.Fatalf("large metadata, bulk route: %v", err)
	}
	if err := n.UpdateFileMetadata(ctx, "p", "a.txt", big); transport.StatusOf(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("large metadata, patch: %v", err)
	}
	if _, err := cl.Search(ctx, transport.SearchRequest{Text: "hello", TopK: maxTopK + 1}); !transport.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("top_k above the cap: %v", err)
	}
	var files int
	n.FSM().View(func(s *fsm.State) { files = len(s.Files) })
	if files != 0 {
		t.Fatalf("refused uploads left %d files in the ledger", files)
	}
}

// TestSharedPathsOffByDefault: with no --shared-root, a shared path is
// refused whatever it names, so an API caller cannot have the node index
// a file it can read (/etc/passwd).
func TestSharedPathsOffByDefault(t *testing.T) {
	c := newCluster(t)
	n := c.start(baseConfig(t, "n1"))
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	_, err := clientOf(n).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: "passwd", FileName: "passwd.txt", SharedPath: "/etc/passwd"}, nil)
	if !transport.IsStatus(err, http.StatusForbidden) || !strings.Contains(err.Error(), "--shared-root") {
		t.Fatalf("shared path with no root: %v", err)
	}
}
