package cli

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// TestStartOnDamagedRaftLog: issue 21's report, 8 KiB of noise written into
// raft.db, used to end `ragnode start` in a bbolt panic and a stack trace.
// It is one line naming the file and what to do, and exit 1.
func TestStartOnDamagedRaftLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "raft", "raft.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	st, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	logs := make([]*raft.Log, 3000)
	for i := range logs {
		logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: []byte(strings.Repeat("d", 400))}
	}
	if err := st.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 8<<10)
	r := rand.New(rand.NewPCG(21, 1))
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(noise, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, errOut, code := run(t, "start", "--data-dir", dir, "--http-port", "0", "--raft-port", "0", "--serf-port", "0",
		"--timing", "fast", "--gpus", "0", "--log-level", "error")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 1 || strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
		t.Fatalf("stderr is not one line: %q", errOut)
	}
	for _, want := range []string{"ragnode: raft log " + path + " is damaged", "restore this node from a peer", "--join"} {
		if !strings.Contains(lines[0], want) {
			t.Fatalf("stderr %q does not say %q", lines[0], want)
		}
	}
}
