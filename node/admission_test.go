package node

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// TestSubmissionsPastTheQueueCapGet429: with --max-queued 3, a fourth
// queued task is refused with 429 and Retry-After, and nothing of it is
// stored: no task, no file, no blob.
func TestSubmissionsPastTheQueueCapGet429(t *testing.T) {
	br := &blockRunner{started: make(chan string, 8), ended: make(chan error, 8)}
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.Runner = func() (Runner, error) { return br, nil }
		cfg.CPUSlots = 1
		cfg.MaxQueued = 3
	})
	n := ns[0]
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	cl := clientOf(n)
	ctx := ctxT(t, 20*time.Second)
	submit := func(id string) error {
		_, err := cl.Submit(ctx, transport.SubmitRequest{Partition: "p", FileID: id, FileName: id}, strings.NewReader("text of "+id))
		return err
	}
	if err := submit("run.txt"); err != nil {
		t.Fatal(err)
	}
	<-br.started // one running, the next three queue
	for _, id := range []string{"q1.txt", "q2.txt", "q3.txt"} {
		if err := submit(id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	var blobsBefore int
	n.fsm.View(func(s *fsm.State) { blobsBefore = len(s.Blobs) })
	err := submit("over.txt")
	var se *transport.StatusError
	if !transport.IsStatus(err, http.StatusTooManyRequests) || !errorsAs(err, &se) || se.RetryAfter != transport.RetryAfterSeconds*time.Second ||
		!strings.Contains(se.Msg, "--max-queued 3") {
		t.Fatalf("over the cap: %v (%+v)", err, se)
	}
	// The RAGondin route answers the same way.
	_, err = cl.SubmitBatch(ctx, "p", nil, nil)
	if !transport.IsStatus(err, http.StatusTooManyRequests) {
		t.Fatalf("bulk over the cap: %v", err)
	}
	n.fsm.View(func(s *fsm.State) {
		// Waiting: queued or prefetched (the node prefetches up to 2).
		waiting, _, _ := s.Waiting("p")
		if _, ok := s.Files[fsm.FileKey("p", "over.txt")]; ok || len(s.Blobs) != blobsBefore || waiting != 3 {
			t.Fatalf("a refused upload left something: file=%v blobs %d->%d waiting %d", ok, blobsBefore, len(s.Blobs), waiting)
		}
	})
	if n.blobs.Has(sha256hex("text of over.txt")) {
		t.Fatal("a refused upload's bytes were stored")
	}
}

func errorsAs(err error, se **transport.StatusError) bool { return errors.As(err, se) }

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
