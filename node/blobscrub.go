package node

import (
	"errors"
	"io"
	"time"

	"github.com/ragnode/ragnode/errs"
)

// The scrub re-reads every local blob through the verifier, so a copy that
// rots on disk is found and replaced while other copies exist, not on the
// day a task or a repair needs it and none is left. Its reads are paced
// (Config.ScrubRate) so that it never competes with indexing for the disk.

const (
	// DefaultScrubRate is the scrub's read budget, in bytes per second.
	DefaultScrubRate = 8 << 20
	// scrubFirstDelay lets a starting node replay and catch up before the
	// first pass.
	scrubFirstDelay = time.Minute
	// scrubGap is the pause between the end of one pass and the next.
	scrubGap = time.Hour
	// scrubChunk is one paced read.
	scrubChunk = 256 << 10
)

// startBlobIntegrity starts the corruption reporter and the scrub.
func (n *Node) startBlobIntegrity() {
	n.registerBlobMetrics()
	n.wg.Add(2)
	go n.blobCorruptionLoop()
	go n.scrubLoop()
}

func (n *Node) scrubLoop() {
	defer n.wg.Done()
	if n.cfg.ScrubRate < 0 {
		return
	}
	if !pause(n.stopCh, scrubFirstDelay) {
		return
	}
	for {
		t0 := time.Now()
		st := n.scrubPass(n.stopCh, n.cfg.ScrubRate)
		if st.corrupt > 0 {
			n.log.Warn("blob scrub found corrupt copies", "corrupt", st.corrupt, "blobs", st.blobs, "bytes", st.bytes, "took", time.Since(t0).Round(time.Second))
		} else {
			n.log.Debug("blob scrub pass", "blobs", st.blobs, "bytes", st.bytes, "took", time.Since(t0).Round(time.Second))
		}
		if !pause(n.stopCh, scrubGap) {
			return
		}
	}
}

type scrubStats struct {
	blobs, corrupt int
	bytes          int64
}

// scrubPass verifies every blob held here at most rate bytes per second,
// until done or stop closes. Corrupt copies are quarantined and reported
// by the store's verifier, as on any read.
func (n *Node) scrubPass(stop <-chan struct{}, rate int64) scrubStats {
	var st scrubStats
	hashes, err := n.blobs.List()
	if err != nil {
		n.log.Warn("blob scrub: list blobs", "error", err)
		return st
	}
	p := &pacer{rate: float64(rate), start: time.Now(), stop: stop}
	buf := make([]byte, scrubChunk)
	for _, h := range hashes {
		select {
		case <-stop:
			return st
		default:
		}
		k, err := n.scrubOne(h, p, buf)
		st.bytes += k
		switch {
		case err == nil:
			st.blobs++
		case errors.Is(err, errBlobCorrupt):
			st.blobs++
			st.corrupt++
		case errors.Is(err, errs.NotFound), errors.Is(err, errScrubStopped):
			// Deleted since the listing (janitor), or the node is stopping.
		default:
			n.log.Warn("blob scrub: read blob", "hash", h, "error", err)
		}
	}
	return st
}

var errScrubStopped = errors.New("scrub stopped")

func (n *Node) scrubOne(hash string, p *pacer, buf []byte) (int64, error) {
	rc, _, err := n.blobs.Open(hash)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	var total int64
	for {
		k, err := rc.Read(buf)
		total += int64(k)
		n.blobs.integrity.scanned.Add(int64(k))
		if !p.take(k) {
			return total, errScrubStopped
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// pacer spreads reads to rate bytes per second.
type pacer struct {
	rate  float64
	start time.Time
	sent  int64
	stop  <-chan struct{}
}

// take accounts k bytes and waits until they fit the rate; false when stop
// closed meanwhile.
func (p *pacer) take(k int) bool {
	p.sent += int64(k)
	due := p.start.Add(time.Duration(float64(p.sent) / p.rate * float64(time.Second)))
	now := time.Now()
	if d := due.Sub(now); d > 0 {
		return pause(p.stop, d)
	}
	if now.Sub(due) > time.Second {
		// Behind by more than a second (a stall elsewhere): start over
		// rather than bank the idle time as a burst.
		p.start, p.sent = now, 0
	}
	return true
}
