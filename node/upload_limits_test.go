package node

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStalledUploadLeavesNoTempFile: the attack of issue 21, one client of
// it. A large upload (spooled to blobs/tmp, past the small-blob size) that
// stops sending is cut after --upload-idle-timeout, its temporary file is
// removed and no task is recorded.
func TestStalledUploadLeavesNoTempFile(t *testing.T) {
	c := newCluster(t)
	cfg := baseConfig(t, "n1")
	// Long enough for the spool to be seen before the cut.
	cfg.UploadIdleTimeout = time.Second
	n := c.start(cfg)
	c.mustLeader(t)
	if n.httpSrv.IdleTimeout <= 0 {
		t.Fatal("the HTTP server keeps idle keep-alive connections forever")
	}

	conn, err := net.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := 2*smallBlob + 1000
	head := fmt.Sprintf("POST /v1/files?partition=p&file_id=stalled&filename=a.txt HTTP/1.1\r\nHost: n1\r\nContent-Length: %d\r\n\r\n", 4*smallBlob)
	if _, err := io.WriteString(conn, head+strings.Repeat("x", sent)); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(n.cfg.DataDir, "blobs", "tmp")
	spooled := func() int {
		es, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	waitFor(t, 5*time.Second, "the upload to be spooled", func() bool { return spooled() > 0 })

	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the stalled upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "upload stalled") {
		t.Fatalf("stalled upload: %d %s", resp.StatusCode, body)
	}
	waitFor(t, 5*time.Second, "the spooled upload to be removed", func() bool { return spooled() == 0 })
	if tasks := taskStates(n); len(tasks) != 0 {
		t.Fatalf("tasks recorded for a cut upload: %v", tasks)
	}
}
