package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
)

// A blob's name is its SHA-256, so every read can prove the bytes are the
// ones uploaded. A copy that fails the proof (bit rot, a truncated file, a
// disk that lies) is moved out of the store at once, so that nothing reads,
// serves or replicates it again; this node drops out of the blob's holders
// and the leader's repair (replication.go) copies an intact one back.

// errBlobCorrupt marks a copy whose bytes do not hash to its name.
// Corruption errors are also errs.NotFound: once detected the copy is
// quarantined, so to a caller this node holds no usable copy.
var errBlobCorrupt = errors.New("corrupt blob")

// evBlobCorrupt is the event recorded for each corrupt copy found.
const evBlobCorrupt = "blob_corrupt"

// quarantineDir (under the blob dir) keeps corrupt copies for an operator
// to inspect; nothing reads them again, and List skips the folder.
const quarantineDir = "quarantine"

// verifyHoldback is how many bytes of a stream wait for the digest: the
// last byte is released only once the whole copy proved intact, so a
// consumer never holds a complete copy of a corrupt blob, and a peer
// reading a body of known length sees it cut short.
const verifyHoldback = 1

func corruptError(hash string, n, size int64, got string) error {
	if size >= 0 && n != size {
		return errs.Errorf(errs.NotFound, "%w: %s on this node: read %d bytes where %d were expected, hashing to %s",
			errBlobCorrupt, hash, n, size, got)
	}
	return errs.Errorf(errs.NotFound, "%w: %s on this node: its %d bytes hash to %s", errBlobCorrupt, hash, n, got)
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// verifyReader hashes a blob as it is read. At EOF it fails with a
// corruption error, calling bad once, when the digest differs from want
// or the length from size (-1: not known).
type verifyReader struct {
	src    io.Reader
	closer io.Closer
	want   string
	size   int64
	h      hash.Hash
	n      int64
	buf    []byte
	lo, hi int // buf[lo:hi] is read and hashed but not yet handed out
	eof    bool
	err    error // sticky: the source's error or the verdict
	bad    func(error)
}

func newVerifyReader(src io.Reader, closer io.Closer, want string, size int64, bad func(error)) *verifyReader {
	return &verifyReader{src: src, closer: closer, want: want, size: size, h: sha256.New(), buf: make([]byte, 64<<10), bad: bad}
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for v.err == nil && !v.eof && v.hi-v.lo <= verifyHoldback {
		if v.lo > 0 {
			v.hi = copy(v.buf, v.buf[v.lo:v.hi])
			v.lo = 0
		}
		k, err := v.src.Read(v.buf[v.hi:])
		v.h.Write(v.buf[v.hi : v.hi+k])
		v.hi += k
		v.n += int64(k)
		switch {
		case err == io.EOF:
			v.eof = true
			v.err = v.verdict()
		case err != nil:
			v.err = err
		}
	}
	if v.err != nil {
		return 0, v.err
	}
	avail := v.hi - v.lo
	if !v.eof {
		avail -= verifyHoldback
	}
	if avail == 0 {
		return 0, io.EOF
	}
	k := copy(p, v.buf[v.lo:v.lo+avail])
	v.lo += k
	return k, nil
}

func (v *verifyReader) verdict() error {
	got := hex.EncodeToString(v.h.Sum(nil))
	if got == v.want && (v.size < 0 || v.n == v.size) {
		return nil
	}
	err := corruptError(v.want, v.n, v.size, got)
	if v.bad != nil {
		v.bad(err)
	}
	return err
}

func (v *verifyReader) Close() error {
	if v.closer == nil {
		return nil
	}
	return v.closer.Close()
}

// blobCorruption is one corrupt copy found here, waiting to be reported.
type blobCorruption struct {
	hash string
	err  error
	// qerr: the copy could not be moved aside (it may be found again).
	qerr   error
	logged bool
}

// blobIntegrity collects the corrupt copies the store finds, for the
// node's reporter (blobCorruptionLoop). Pending reports are keyed by hash:
// a copy found twice before the report goes out is reported once, and
// however many are found the memory stays bounded by the blobs held.
type blobIntegrity struct {
	found   atomic.Int64 // corrupt copies found since start
	scanned atomic.Int64 // bytes the scrub has verified since start
	mu      sync.Mutex
	pending map[string]blobCorruption
	wake    chan struct{}
}

func newBlobIntegrity() *blobIntegrity {
	return &blobIntegrity{pending: map[string]blobCorruption{}, wake: make(chan struct{}, 1)}
}

func (bi *blobIntegrity) note(c blobCorruption) {
	bi.found.Add(1)
	bi.mu.Lock()
	bi.pending[c.hash] = c
	bi.mu.Unlock()
	select {
	case bi.wake <- struct{}{}:
	default:
	}
}

// take hands over up to max pending reports, oldest hash first.
func (bi *blobIntegrity) take(max int) []blobCorruption {
	bi.mu.Lock()
	defer bi.mu.Unlock()
	out := make([]blobCorruption, 0, min(max, len(bi.pending)))
	for _, c := range bi.pending {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hash < out[j].hash })
	if len(out) > max {
		out = out[:max]
	}
	for _, c := range out {
		delete(bi.pending, c.hash)
	}
	return out
}

// putBack returns reports that could not be sent, unless a newer one for
// the same hash came in meanwhile.
func (bi *blobIntegrity) putBack(cs []blobCorruption) {
	bi.mu.Lock()
	defer bi.mu.Unlock()
	for _, c := range cs {
		if _, ok := bi.pending[c.hash]; !ok {
			bi.pending[c.hash] = c
		}
	}
}

// corrupt quarantines a corrupt copy (quarantine does the move) and queues
// its report.
func (b *blobStore) corrupt(hash string, err error, quarantine func() error) {
	b.integrity.note(blobCorruption{hash: hash, err: err, qerr: quarantine()})
}

// checkSmall verifies a blob read from the database.
func (b *blobStore) checkSmall(hash string, d []byte) error {
	got := sumHex(d)
	if got == hash {
		return nil
	}
	err := corruptError(hash, int64(len(d)), int64(len(d)), got)
	b.corrupt(hash, err, func() error { return b.quarantineSmall(hash) })
	return err
}

// verifying wraps an open blob file in a verifyReader that quarantines the
// file when it proves corrupt.
func (b *blobStore) verifying(hash string, f *os.File, size int64) io.ReadCloser {
	return newVerifyReader(f, f, hash, size, func(err error) {
		b.corrupt(hash, err, func() error { return b.quarantineFile(hash, f) })
	})
}

func (b *blobStore) quarantinePath(hash string) (string, error) {
	dir := filepath.Join(b.dir, quarantineDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	return filepath.Join(dir, fmt.Sprintf("%s.%d", hash, time.Now().UnixNano())), nil
}

// quarantineFile moves a corrupt blob file aside, unless the file under
// the blob's name is no longer the one read: an intact copy fetched or
// replicated here meanwhile must stay.
func (b *blobStore) quarantineFile(hash string, f *os.File) error {
	read, err := f.Stat()
	if err != nil {
		return err
	}
	p := b.path(hash)
	cur, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !os.SameFile(read, cur) {
		return nil
	}
	dst, err := b.quarantinePath(hash)
	if err != nil {
		return err
	}
	return os.Rename(p, dst)
}

// quarantineSmall removes a corrupt blob from the database, keeping its
// bytes in the quarantine folder when the disk lets it, unless the value
// is intact by now (a good copy was written over it).
func (b *blobStore) quarantineSmall(hash string) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(smallBucket)
		v := bk.Get([]byte(hash))
		if v == nil || sumHex(v) == hash {
			return nil
		}
		if dst, err := b.quarantinePath(hash); err == nil {
			_ = os.WriteFile(dst, v, 0o640)
		}
		return bk.Delete([]byte(hash))
	})
}

// ReadAll returns a blob's bytes, verified: a corrupt copy is quarantined
// and reported, and the error wraps errBlobCorrupt.
func (b *blobStore) ReadAll(hash string) ([]byte, error) {
	if !validHash(hash) {
		return nil, errs.Errorf(errs.Invalid, "invalid blob hash %q", hash)
	}
	if d := b.getSmall(hash); d != nil {
		if err := b.checkSmall(hash, d); err != nil {
			return nil, err
		}
		return d, nil
	}
	rc, size, err := b.Open(hash)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Room for the whole blob and the final empty read, so it is never
	// copied to grow.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Verify reads a whole blob through the verifier and returns its size.
func (b *blobStore) Verify(hash string) (int64, error) {
	rc, _, err := b.Open(hash)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// readBlob returns a task's blob, verified: the local copy when it is
// intact, else the first intact copy a holder serves. A corrupt local copy
// is quarantined on the way (reported by blobCorruptionLoop). The task
// fails for good only when every holder answered and none had an intact
// copy, with corruption seen at least once; an unreachable holder may
// still have one, so that failure is left to the retry.
func (n *Node) readBlob(ctx context.Context, hash string) ([]byte, error) {
	data, err := n.blobs.ReadAll(hash)
	if err == nil {
		return data, nil
	}
	corrupt := errors.Is(err, errBlobCorrupt)
	conclusive := errors.Is(err, errs.NotFound)
	var lastErr error = fmt.Errorf("no node holds blob %s", hash)
	var failures []string
	if !errors.Is(err, errs.NotFound) || corrupt {
		lastErr = err
		failures = append(failures, fmt.Sprintf("%s (this node): %v", n.name, err))
	}
	var holders []string
	recorded := false
	names := map[string]string{}
	n.fsm.View(func(s *fsm.State) {
		if b := s.Blobs[hash]; b != nil {
			recorded = true
			holders = append(holders, b.Holders...)
		}
		for _, h := range holders {
			if nd := s.Nodes[h]; nd != nil && nd.Name != "" {
				names[h] = nd.Name
			} else {
				names[h] = h
			}
		}
	})
	if recorded && len(holders) == 0 && !corrupt {
		// Every holder dropped out (their copies were lost or quarantined
		// as corrupt): no retry can find the bytes. (A local copy just
		// found corrupt is named below instead, whether or not this node's
		// own report has dropped it yet.)
		return nil, Permanent(errs.Errorf(errs.NotFound, "blob %s is held by no node: every copy was lost or found corrupt", hash))
	}
	for _, h := range holders {
		if h == n.id {
			continue
		}
		addr := n.peers.addrOf(h)
		if addr == "" {
			conclusive = false
			failures = append(failures, names[h]+": address unknown")
			continue
		}
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(n.peers.client(addr).GetBlob(ctx, hash, pw))
		}()
		_, _, err := n.blobs.Put(pr, 0, hash)
		pr.Close()
		if err == nil {
			// Read back through the verifier too: the copy just written
			// is only as good as this node's disk.
			return n.blobs.ReadAll(hash)
		}
		lastErr = fmt.Errorf("fetch blob from %s: %w", addr, err)
		failures = append(failures, fmt.Sprintf("%s: %v", names[h], err))
		switch {
		case errors.Is(err, errs.Invalid):
			// The copy arrived whole but does not hash to its name.
			corrupt = true
		case errors.Is(err, errs.NotFound):
			// The holder has no copy, or found its copy corrupt and
			// quarantined it; its answer carries only the message.
			if strings.Contains(err.Error(), errBlobCorrupt.Error()) {
				corrupt = true
			}
		default:
			conclusive = false
		}
	}
	if corrupt && conclusive {
		return nil, Permanent(errs.Errorf(errs.NotFound, "blob %s is corrupt on every holder: %s", hash, strings.Join(failures, "; ")))
	}
	return nil, lastErr
}

// reportBatchMax bounds the corruption reports in one ledger entry (each
// is an event, and a command carries at most fsm.EventsPerCommand).
const reportBatchMax = 64

// blobCorruptionLoop records each corrupt copy the store found: an event
// in the replicated history, and this node dropped from the blob's holders
// so the leader's repair restores the replica count from an intact copy.
// Reports that fail to commit (no leader) are retried.
func (n *Node) blobCorruptionLoop() {
	defer n.wg.Done()
	retry := time.NewTicker(5 * n.tick())
	defer retry.Stop()
	bi := n.blobs.integrity
	for {
		select {
		case <-n.stopCh:
			return
		case <-bi.wake:
		case <-retry.C:
		}
		for {
			cs := bi.take(reportBatchMax)
			if len(cs) == 0 {
				break
			}
			if err := n.reportCorruption(cs); err != nil {
				n.log.Warn("record corrupt blobs (will retry)", "blobs", len(cs), "error", err)
				bi.putBack(cs)
				break
			}
		}
	}
}

func (n *Node) reportCorruption(cs []blobCorruption) error {
	now := time.Now().UnixNano()
	var evs []fsm.Event
	var drops []fsm.Command
	n.fsm.View(func(s *fsm.State) {
		for _, c := range cs {
			b := s.Blobs[c.hash]
			// Only a recorded holding is dropped: CmdBlobHolders on a blob
			// the ledger no longer has would create it again.
			if b != nil && slices.Contains(b.Holders, n.id) {
				drops = append(drops, fsm.Command{Type: fsm.CmdBlobHolders, Now: now,
					Blob: &fsm.Blob{Hash: c.hash, Size: b.Size}, Remove: []string{n.id}})
			}
		}
	})
	for i := range cs {
		c := &cs[i]
		msg := fmt.Sprintf("%s: %v; copy quarantined", n.name, c.err)
		if c.qerr != nil {
			msg = fmt.Sprintf("%s: %v; quarantine failed: %v", n.name, c.err, c.qerr)
		}
		if !c.logged {
			n.log.Error("corrupt blob copy", "hash", c.hash, "error", c.err, "quarantine_error", c.qerr)
			c.logged = true
		}
		evs = append(evs, fsm.Event{Time: now, Kind: evBlobCorrupt, NodeID: n.id, Msg: msg})
	}
	cmds := append([]fsm.Command{{Type: fsm.CmdEvents, Now: now, Events: evs}}, drops...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: cmds})
	if err != nil {
		return err
	}
	return res.FirstError()
}

// registerBlobMetrics exports the integrity counters; they are read at
// scrape time from the store, which counts from the moment it opens.
func (n *Node) registerBlobMetrics() {
	bi := n.blobs.integrity
	n.metrics.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ragnode_blob_corrupt_total",
			Help: "Corrupt blob copies this node found (task reads, peer requests, scrub) and quarantined, since start."},
			func() float64 { return float64(bi.found.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ragnode_blob_scrub_bytes_total",
			Help: "Blob bytes this node's scrub re-hashed, since start."},
			func() float64 { return float64(bi.scanned.Load()) }),
	)
}

// quarantined reports whether a corrupt copy of the blob was set aside here.
func (b *blobStore) quarantined(hash string) bool {
	m, _ := filepath.Glob(filepath.Join(b.dir, quarantineDir, hash+".*"))
	return len(m) > 0
}
