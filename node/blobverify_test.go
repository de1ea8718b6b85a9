package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// randomBlob returns n bytes that differ per seed.
func randomBlob(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// damage corrupts the stored copy of a blob: "truncate" cuts it to half,
// "flip" inverts one byte in the middle. Small blobs are changed inside
// the database, large ones in their file, as a failing disk would.
func damage(t *testing.T, b *blobStore, hash, how string) {
	t.Helper()
	if d := b.getSmall(hash); d != nil {
		switch how {
		case "truncate":
			d = d[:len(d)/2]
		case "flip":
			d[len(d)/2] ^= 0xff
		}
		if err := b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(smallBucket).Put([]byte(hash), d) }); err != nil {
			t.Fatal(err)
		}
		return
	}
	p := b.path(hash)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	switch how {
	case "truncate":
		if err := os.Truncate(p, st.Size()/2); err != nil {
			t.Fatal(err)
		}
	case "flip":
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		one := make([]byte, 1)
		if _, err := f.ReadAt(one, st.Size()/2); err != nil {
			t.Fatal(err)
		}
		one[0] ^= 0xff
		if _, err := f.WriteAt(one, st.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
}

// quarantineHolds reports whether a copy of hash sits in the quarantine.
func quarantineHolds(t *testing.T, b *blobStore, hash string) bool {
	t.Helper()
	return b.quarantined(hash)
}

func requireCorrupt(t *testing.T, err error) {
	t.Helper()
	if err == nil || !errors.Is(err, errBlobCorrupt) || !errors.Is(err, errs.NotFound) {
		t.Fatalf("want a corrupt-blob error (also NotFound), got %v", err)
	}
}

func TestVerifyReaderFailsAtEOFAndHoldsBackTheEnd(t *testing.T) {
	data := randomBlob(200<<10, 1)
	want := sumHex(data)
	flipped := bytes.Clone(data)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name string
		src  []byte
		size int64
		ok   bool
	}{
		{"intact", data, int64(len(data)), true},
		{"intact, length unknown", data, -1, true},
		{"truncated", data[:len(data)/2], -1, false},
		{"truncated, stat agrees", data[:len(data)/2], int64(len(data) / 2), false},
		{"last byte flipped", flipped, int64(len(data)), false},
		{"length differs", data, int64(len(data)) + 1, false},
		{"empty", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := 0
			v := newVerifyReader(bytes.NewReader(tc.src), nil, want, tc.size, func(error) { bad++ })
			// Read in odd small pieces, counting what was handed out.
			var got []byte
			p := make([]byte, 7919)
			var err error
			for {
				var k int
				k, err = v.Read(p)
				got = append(got, p[:k]...)
				if err != nil {
					break
				}
			}
			if tc.ok {
				if err != io.EOF || !bytes.Equal(got, data) || bad != 0 {
					t.Fatalf("intact copy: err %v, %d of %d bytes, bad calls %d", err, len(got), len(data), bad)
				}
				return
			}
			requireCorrupt(t, err)
			if bad != 1 {
				t.Fatalf("bad called %d times, want 1", bad)
			}
			if len(tc.src) > 0 && len(got) >= len(tc.src) {
				t.Fatalf("a corrupt copy was handed out whole (%d of %d bytes) before the verdict", len(got), len(tc.src))
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error does not name the blob: %v", err)
			}
			// The verdict sticks.
			if k, err2 := v.Read(p); k != 0 || !errors.Is(err2, errBlobCorrupt) {
				t.Fatalf("read after the verdict: %d, %v", k, err2)
			}
		})
	}
}

func TestBlobStoreQuarantinesCorruptCopy(t *testing.T) {
	for _, size := range []int{4 << 10, smallBlob + 300<<10} {
		for _, how := range []string{"truncate", "flip"} {
			kind := map[bool]string{true: "small", false: "large"}[size <= smallBlob]
			t.Run(kind+" "+how, func(t *testing.T) {
				b, err := openBlobStore(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				data := randomBlob(size, uint64(size))
				h, _, err := b.Put(bytes.NewReader(data), 0, "")
				if err != nil {
					t.Fatal(err)
				}
				damage(t, b, h, how)
				// A streamed read fails at the end, never handing out the
				// whole (damaged) length.
				rc, _, err := b.Open(h)
				if err == nil {
					got, rerr := io.ReadAll(rc)
					rc.Close()
					requireCorrupt(t, rerr)
					if len(got) >= size {
						t.Fatalf("read %d bytes of a corrupt copy", len(got))
					}
				} else {
					requireCorrupt(t, err) // small: checked before Open returns
				}
				if b.Has(h) {
					t.Fatal("corrupt copy still in the store")
				}
				if !quarantineHolds(t, b, h) {
					t.Fatal("corrupt copy not kept in quarantine")
				}
				if got := b.integrity.found.Load(); got != 1 {
					t.Fatalf("found %d corrupt copies, want 1", got)
				}
				reps := b.integrity.take(10)
				if len(reps) != 1 || reps[0].hash != h || reps[0].qerr != nil {
					t.Fatalf("reports: %+v", reps)
				}
				// A later read says why there is no copy.
				_, err = b.ReadAll(h)
				requireCorrupt(t, err)
				if _, err := b.Verify(strings.Repeat("0", 64)); err == nil || errors.Is(err, errBlobCorrupt) {
					t.Fatalf("a blob never held: %v", err)
				}
				// An intact copy written back (a fetch, a repair) reads fine.
				if _, _, err := b.Put(bytes.NewReader(data), 0, h); err != nil {
					t.Fatal(err)
				}
				got, err := b.ReadAll(h)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("after repair: %d bytes, %v", len(got), err)
				}
			})
		}
	}
}

// A replica write of an intact copy replaces a corrupt one not found yet,
// rather than keeping it as a duplicate.
func TestPutReplacesUndetectedCorruptCopy(t *testing.T) {
	b, err := openBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i, size := range []int{3 << 10, smallBlob + 10<<10} {
		data := randomBlob(size, uint64(900+i))
		h, _, err := b.Put(bytes.NewReader(data), 0, "")
		if err != nil {
			t.Fatal(err)
		}
		damage(t, b, h, "flip")
		if _, _, err := b.Put(bytes.NewReader(data), 0, h); err != nil {
			t.Fatal(err)
		}
		got, err := b.ReadAll(h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: %d bytes, %v", size, len(got), err)
		}
	}
	if f := b.integrity.found.Load(); f != 0 {
		t.Fatalf("%d corrupt copies found; the writes should have replaced them", f)
	}
}

func TestPacerBoundsRate(t *testing.T) {
	p := &pacer{rate: 4 << 20, start: time.Now(), stop: make(chan struct{})}
	t0 := time.Now()
	for i := 0; i < 8; i++ {
		if !p.take(256 << 10) {
			t.Fatal("pacer stopped")
		}
	}
	// 2 MiB at 4 MiB/s: half a second at least (no upper bound: the
	// machine may be slow).
	if d := time.Since(t0); d < 450*time.Millisecond {
		t.Fatalf("2 MiB at 4 MiB/s took %s", d)
	}
	stop := make(chan struct{})
	close(stop)
	q := &pacer{rate: 1, start: time.Now(), stop: stop}
	if q.take(1 << 20) {
		t.Fatal("a stopped pacer waited")
	}
}

// blobCluster starts k nodes and waits until all are registered alive.
func blobCluster(t *testing.T, k int, mod func(i int, cfg *Config)) (*cluster, []*Node) {
	c := newCluster(t)
	ns := c.startN(k, mod)
	waitFor(t, 30*time.Second, "all nodes registered alive", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		alive := 0
		l.fsm.View(func(s *fsm.State) {
			for _, nd := range s.Nodes {
				if nd.Status == fsm.NodeAlive {
					alive++
				}
			}
		})
		return alive == k
	})
	return c, ns
}

// placeBlob stores data on the given nodes and records them as its holders.
func placeBlob(t *testing.T, data []byte, on ...*Node) string {
	t.Helper()
	var h string
	var ids []string
	for _, n := range on {
		var err error
		if h, _, err = n.blobs.Put(bytes.NewReader(data), 0, ""); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.id)
	}
	res, err := on[0].prop.Propose(ctxT(t, 10*time.Second), fsm.Command{Type: fsm.CmdBlobHolders, Now: time.Now().UnixNano(),
		Blob: &fsm.Blob{Hash: h, Size: int64(len(data)), Holders: ids}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	for _, n := range on {
		waitFor(t, 10*time.Second, "holders applied on "+n.name, func() bool { return slices.Equal(holdersOf(n, h), ids) })
	}
	return h
}

func holdersOf(n *Node, hash string) []string {
	var out []string
	n.fsm.View(func(s *fsm.State) {
		if b := s.Blobs[hash]; b != nil {
			out = slices.Clone(b.Holders)
		}
	})
	slices.Sort(out)
	return out
}

// corruptEvent reports whether the history holds a blob_corrupt event from
// node about hash.
func corruptEvent(n *Node, node, hash string) bool {
	found := false
	n.fsm.View(func(s *fsm.State) {
		for _, e := range s.Events {
			found = found || (e.Kind == evBlobCorrupt && e.NodeID == node && strings.Contains(e.Msg, hash))
		}
	})
	return found
}

func metricValue(t *testing.T, n *Node, name string) float64 {
	t.Helper()
	mfs, err := n.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

func taskFor(hash string, size int) fsm.Task {
	return fsm.Task{ID: "t-" + hash[:8], File: fsm.FileRef{Hash: hash, Size: int64(size), Name: "x.bin"}}
}

// A task's read of a corrupt local copy quarantines it, drops this node
// from the holders, records the event, and returns a holder's intact copy;
// with no intact copy anywhere the task fails for good, saying so, and no
// bytes are returned.
func TestReadFileRecoversFromCorruptLocalBlob(t *testing.T) {
	_, ns := blobCluster(t, 2, nil)
	n1, n2 := ns[0], ns[1]
	seed := uint64(100)
	for _, size := range []int{8 << 10, smallBlob + 200<<10} {
		for _, how := range []string{"truncate", "flip"} {
			kind := map[bool]string{true: "small", false: "large"}[size <= smallBlob]
			t.Run(kind+" "+how+" here, intact on the peer", func(t *testing.T) {
				seed++
				data := randomBlob(size, seed)
				h := placeBlob(t, data, n1, n2)
				damage(t, n1.blobs, h, how)
				before := n1.blobs.integrity.found.Load()
				got, err := n1.readFile(ctxT(t, 30*time.Second), taskFor(h, size))
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("read %d bytes, want the intact %d", len(got), len(data))
				}
				if !quarantineHolds(t, n1.blobs, h) {
					t.Fatal("corrupt local copy not quarantined")
				}
				if n1.blobs.integrity.found.Load() != before+1 {
					t.Fatal("corruption not counted")
				}
				waitFor(t, 10*time.Second, "the event and n1 dropped from the holders", func() bool {
					return corruptEvent(n2, n1.id, h) && slices.Equal(holdersOf(n2, h), []string{n2.id})
				})
				// The fetched copy now serves the next read locally.
				again, err := n1.blobs.ReadAll(h)
				if err != nil || !bytes.Equal(again, data) {
					t.Fatalf("local copy after the fetch: %d bytes, %v", len(again), err)
				}
			})
		}
	}
	t.Run("corrupt on every holder", func(t *testing.T) {
		data := randomBlob(smallBlob+100<<10, 200)
		h := placeBlob(t, data, n1, n2)
		damage(t, n1.blobs, h, "truncate")
		damage(t, n2.blobs, h, "flip")
		got, err := n1.readFile(ctxT(t, 30*time.Second), taskFor(h, len(data)))
		if err == nil || got != nil {
			t.Fatalf("read returned %d bytes, err %v", len(got), err)
		}
		if !IsPermanent(err) || !strings.Contains(err.Error(), "blob "+h+" is corrupt on every holder") {
			t.Fatalf("want a permanent 'corrupt on every holder' failure, got %v", err)
		}
		if !quarantineHolds(t, n1.blobs, h) || !quarantineHolds(t, n2.blobs, h) {
			t.Fatal("a corrupt copy was not quarantined")
		}
		waitFor(t, 10*time.Second, "both nodes dropped from the holders, both events", func() bool {
			return len(holdersOf(n1, h)) == 0 && corruptEvent(n1, n1.id, h) && corruptEvent(n1, n2.id, h)
		})
	})
	t.Run("only copy corrupt, held here", func(t *testing.T) {
		data := randomBlob(2<<10, 300)
		h := placeBlob(t, data, n1)
		damage(t, n1.blobs, h, "flip")
		got, err := n1.readFile(ctxT(t, 30*time.Second), taskFor(h, len(data)))
		if got != nil || !IsPermanent(err) || !strings.Contains(err.Error(), "corrupt on every holder") {
			t.Fatalf("read: %d bytes, %v", len(got), err)
		}
	})
	t.Run("peer refuses to serve its corrupt copy", func(t *testing.T) {
		data := randomBlob(smallBlob+50<<10, 400)
		h := placeBlob(t, data, n2)
		damage(t, n2.blobs, h, "flip")
		var buf bytes.Buffer
		err := n1.peers.of(n2.id).GetBlob(ctxT(t, 10*time.Second), h, &buf)
		if !transport.IsStatus(err, 404) || !strings.Contains(err.Error(), errBlobCorrupt.Error()) || buf.Len() != 0 {
			t.Fatalf("GET of a corrupt blob: %v, %d bytes shipped", err, buf.Len())
		}
		if !quarantineHolds(t, n2.blobs, h) {
			t.Fatal("the serving node did not quarantine its corrupt copy")
		}
		// n2 reports its corrupt copy and drops out of the holders; with
		// no holder left the read fails for good, not as a retry.
		waitFor(t, 10*time.Second, "n2 dropped from the blob's holders", func() bool {
			dropped := false
			n1.fsm.View(func(s *fsm.State) { dropped = s.Blobs[h] != nil && len(s.Blobs[h].Holders) == 0 })
			return dropped
		})
		got, err := n1.readFile(ctxT(t, 30*time.Second), taskFor(h, len(data)))
		if got != nil || !IsPermanent(err) || !strings.Contains(err.Error(), "held by no node") {
			t.Fatalf("read: %d bytes, %v", len(got), err)
		}
		if n1.blobs.Has(h) {
			t.Fatal("n1 stored a copy")
		}
	})
	if v := metricValue(t, n1, "ragnode_blob_corrupt_total"); v != float64(n1.blobs.integrity.found.Load()) || v < 6 {
		t.Fatalf("ragnode_blob_corrupt_total on n1 = %v (found %d)", v, n1.blobs.integrity.found.Load())
	}
}

// The scrub re-hashes every local blob, quarantines the corrupt ones,
// reports them (event, holders, metric) and leaves the intact ones alone.
func TestScrubQuarantinesCorruptBlobs(t *testing.T) {
	_, ns := blobCluster(t, 1, func(_ int, cfg *Config) { cfg.ScrubRate = -1 })
	n := ns[0]
	var intact, bad []string
	for i, size := range []int{3 << 10, smallBlob + 64<<10, 5 << 10, smallBlob + 128<<10} {
		h := placeBlob(t, randomBlob(size, uint64(500+i)), n)
		if i < 2 {
			intact = append(intact, h)
			continue
		}
		damage(t, n.blobs, h, []string{"flip", "truncate"}[i%2])
		bad = append(bad, h)
	}
	st := n.scrubPass(n.stopCh, 1<<30)
	if st.blobs != 4 || st.corrupt != 2 {
		t.Fatalf("scrub saw %d blobs, %d corrupt; want 4 and 2", st.blobs, st.corrupt)
	}
	for _, h := range intact {
		if !n.blobs.Has(h) || quarantineHolds(t, n.blobs, h) {
			t.Fatalf("intact blob %s touched", h)
		}
	}
	for _, h := range bad {
		if n.blobs.Has(h) || !quarantineHolds(t, n.blobs, h) {
			t.Fatalf("corrupt blob %s not quarantined", h)
		}
	}
	waitFor(t, 10*time.Second, "events and holders for the corrupt blobs", func() bool {
		for _, h := range bad {
			if !corruptEvent(n, n.id, h) || len(holdersOf(n, h)) != 0 {
				return false
			}
		}
		return true
	})
	for _, h := range intact {
		if !slices.Equal(holdersOf(n, h), []string{n.id}) {
			t.Fatalf("intact blob %s lost its holder", h)
		}
	}
	if v := metricValue(t, n, "ragnode_blob_corrupt_total"); v != 2 {
		t.Fatalf("ragnode_blob_corrupt_total = %v, want 2", v)
	}
	if v := metricValue(t, n, "ragnode_blob_scrub_bytes_total"); v <= 0 {
		t.Fatalf("ragnode_blob_scrub_bytes_total = %v", v)
	}
	// A second pass finds nothing new.
	if st := n.scrubPass(n.stopCh, 1<<30); st.blobs != 2 || st.corrupt != 0 {
		t.Fatalf("second pass: %+v", st)
	}
}

// corpusText is a text document long enough to be stored as a blob file
// and indexed into many chunks.
func corpusText(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "Section %d. The archive record %d describes shipment %d of item %x to depot %d.\n", i, i*7, i*13, i*2654435761, i%97)
		if i%20 == 19 {
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// Three real nodes: the node that runs the task finds its copy of the
// file truncated on disk; the task still completes with every chunk, from
// another holder's copy, and the repair puts an intact copy back.
func TestCorruptBlobTaskCompletesFromPeer(t *testing.T) {
	c, ns := indexCluster(t, func(_ int, cfg *Config) { cfg.Replicas = 3 })
	doc := corpusText(smallBlob + 256<<10)
	ctx := ctxT(t, 2*time.Minute)
	// The same bytes indexed once intact: the chunk count to expect.
	tv, err := clientOf(ns[0]).Submit(ctx, submitReq("p", "intact.txt"), bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := waitTerminal(t, c, []string{tv.ID}, 90*time.Second)[tv.ID]
	if want.State != fsm.Completed || want.Chunks < 10 {
		t.Fatalf("intact run: %s, %d chunks (%s)", want.State, want.Chunks, want.Error)
	}
	h := want.File.Hash
	// Hold the next task until its node's copy is damaged: every node
	// drains, then the target comes back alone.
	target := ns[1]
	for _, n := range ns {
		if err := clientOf(ns[0]).Drain(ctx, drainReq(n.name)); err != nil {
			t.Fatal(err)
		}
	}
	tv2, err := clientOf(target).Submit(ctx, submitReq("p", "damaged.txt"), bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the blob held by all three", func() bool { return len(holdersOf(target, h)) == 3 })
	damage(t, target.blobs, h, "truncate")
	if err := clientOf(ns[0]).Drain(ctx, transport.DrainRequest{Node: target.name, Cancel: true}); err != nil {
		t.Fatal(err)
	}
	got := waitTerminal(t, c, []string{tv2.ID}, 90*time.Second)[tv2.ID]
	if got.State != fsm.Completed || got.Chunks != want.Chunks || got.LastNode != target.id || got.Failures != 0 {
		t.Fatalf("damaged run: %s on %s with %d chunks after %d failures, want completed on %s with %d at once (%s)",
			got.State, got.LastNode, got.Chunks, got.Failures, target.id, want.Chunks, got.Error)
	}
	if !quarantineHolds(t, target.blobs, h) {
		t.Fatal("the truncated copy was not quarantined")
	}
	waitFor(t, 10*time.Second, "the corruption event", func() bool { return corruptEvent(ns[0], target.id, h) })
	// The event came in the same entry that dropped the target from the
	// holders; the leader's repair brings the count back to three.
	waitFor(t, 60*time.Second, "three holders again", func() bool { return len(holdersOf(ns[0], h)) == 3 })
	back, err := target.blobs.ReadAll(h)
	if err != nil || !bytes.Equal(back, doc) {
		t.Fatalf("target's copy after repair: %d bytes, %v", len(back), err)
	}
}
