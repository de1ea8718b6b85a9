package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// TestSnapshotSaveAndRestore: `snapshot save` writes a file that
// `snapshot inspect` accepts, `snapshot restore` rebuilds another
// cluster's ledger from it, and a damaged copy is refused in one line
// before anything is sent.
func TestSnapshotSaveAndRestore(t *testing.T) {
	a := startNode(t, "tok")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tv, err := transport.NewClient(a.HTTPAddr(), "tok").Submit(ctx,
		transport.SubmitRequest{Partition: "p", FileID: "notes.md", FileName: "notes.md", Metadata: map[string]any{"owner": "ops"}},
		strings.NewReader("# Notes\n\nBack up the ledger before an upgrade.\n"))
	if err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		a.FSM().View(func(s *fsm.State) { done = s.Tasks[tv.ID] != nil && s.Tasks[tv.ID].State.Terminal() })
		if ctx.Err() != nil {
			t.Fatal("the task never finished")
		}
		time.Sleep(50 * time.Millisecond)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "ledger.snap")
	if _, errOut, code := run(t, "snapshot", "save", file, "--addr", a.HTTPAddr()); code != 1 || !strings.HasPrefix(errOut, "ragnode: ") {
		t.Fatalf("save without a token: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a refused save left %s: %v", file, err)
	}
	out, errOut, code := run(t, "snapshot", "save", file, "--addr", a.HTTPAddr(), "--token", "tok")
	if code != 0 || !strings.Contains(out, "saved the ledger of cluster") {
		t.Fatalf("save: exit %d, %q %q", code, out, errOut)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*part*")); len(left) > 0 {
		t.Fatalf("save left %v", left)
	}
	out, _, code = run(t, "snapshot", "inspect", file, "-o", "json")
	var hdr transport.SnapshotHeader
	if code != 0 || json.Unmarshal([]byte(out), &hdr) != nil || hdr.Format != transport.SnapshotFormat || hdr.NodeName != "solo" || hdr.Size == 0 {
		t.Fatalf("inspect: exit %d, %q", code, out)
	}

	b := startNode(t, "tok")
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.snap")
	flipped := []byte(string(good))
	flipped[len(flipped)-100] ^= 1
	if err := os.WriteFile(bad, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(t, "snapshot", "restore", bad, "--addr", b.HTTPAddr(), "--token", "tok")
	if code != 1 || errOut != "ragnode: "+bad+": damaged snapshot: its SHA-256 does not match its content (the file changed after it was saved)\n" {
		t.Fatalf("restore of a damaged file: exit %d, %q", code, errOut)
	}

	out, errOut, code = run(t, "snapshot", "restore", file, "--addr", b.HTTPAddr(), "--token", "tok", "-o", "json")
	var ans transport.RestoreAnswer
	if code != 0 || json.Unmarshal([]byte(out), &ans) != nil {
		t.Fatalf("restore: exit %d, %q %q", code, out, errOut)
	}
	if ans.Files != 1 || ans.SnapshotCluster != hdr.ClusterID || len(ans.GoneNodes) != 1 || ans.FilesWithoutBlob != 1 {
		t.Fatalf("restore answer %+v", ans)
	}
	var f *fsm.File
	b.FSM().View(func(s *fsm.State) {
		for _, x := range s.Files {
			c := *x
			f = &c
		}
	})
	if f == nil || f.FileID != "notes.md" || f.Metadata["owner"] != "ops" {
		t.Fatalf("b's ledger after the restore: %+v", f)
	}
	// Again, over what is now a ledger with files: another cluster's
	// snapshot needs --force. The table output names what to do next.
	if _, errOut, code := run(t, "snapshot", "restore", file, "--addr", b.HTTPAddr(), "--token", "tok"); code != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("restore over a non-empty ledger: exit %d, %q", code, errOut)
	}
	out, _, code = run(t, "snapshot", "restore", file, "--addr", b.HTTPAddr(), "--token", "tok", "--force")
	if code != 0 || !strings.Contains(out, "restored cluster "+hdr.ClusterID+"'s ledger") || !strings.Contains(out, "submit them again") {
		t.Fatalf("restore table output: exit %d, %q", code, out)
	}
}
