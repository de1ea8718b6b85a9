package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// Doc is one generated document.
type Doc struct {
	Partition string
	FileID    string
	Name      string
	Body      []byte
	// Corrupt documents pass type detection but fail to load; Reason is the
	// prefix their task's error must start with.
	Corrupt bool
	Reason  string
	// Empty documents complete with zero chunks.
	Empty bool
	// Metadata is sent with the upload.
	Metadata map[string]any
}

var words = strings.Fields(`raft leader follower term quorum gossip member shard chunk vector
embedding index ledger replica snapshot commit partition latency throughput node cluster
document parser token search query filter score recall precision batch stream blob hash`)

func sentence(r *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = words[r.Intn(len(words))]
	}
	return strings.Join(w, " ")
}

// GenDoc makes document i: mostly good txt/md/html/csv/json, every tenth a
// corrupt json or pdf.
func GenDoc(r *rand.Rand, run string, i int, big bool) Doc {
	part := []string{"alpha", "beta"}[i%2]
	base := fmt.Sprintf("%s/doc-%04d", run, i)
	paras := 1 + r.Intn(5)
	if big {
		paras = 300 + r.Intn(200)
	}
	if i%10 == 7 {
		if i%20 == 7 {
			return Doc{Partition: part, FileID: base + ".json", Name: "bad.json", Body: []byte(`{"title": "broken", "a":`), Corrupt: true, Reason: "json:"}
		}
		return Doc{Partition: part, FileID: base + ".pdf", Name: "bad.pdf",
			Body: append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x00}, 40)...), Corrupt: true, Reason: "pdf:"}
	}
	// Hostile but valid shapes, one each per 50 documents: a long word
	// with no space or newline (the chunker must cut it in linear time),
	// an empty file, and metadata near the cap on a small file.
	switch i % 50 {
	case 11:
		return Doc{Partition: part, FileID: base + "-longword.txt", Name: "w.txt", Body: bytes.Repeat([]byte("x"), 100<<10)}
	case 23:
		return Doc{Partition: part, FileID: base + "-empty.txt", Name: "e.txt", Body: nil, Empty: true}
	case 37:
		return Doc{Partition: part, FileID: base + "-meta.txt", Name: "m.txt", Body: []byte(sentence(r, 50) + ".\n"),
			Metadata: map[string]any{"notes": strings.Repeat("n", 60<<10)}}
	}
	var b strings.Builder
	switch i % 5 {
	case 0:
		for p := 0; p < paras; p++ {
			fmt.Fprintf(&b, "%s.\n\n", sentence(r, 30+r.Intn(40)))
		}
		return Doc{Partition: part, FileID: base + ".txt", Name: "d.txt", Body: []byte(b.String())}
	case 1:
		for p := 0; p < paras; p++ {
			fmt.Fprintf(&b, "# Section %d\n\n%s.\n\n- %s\n\n", p, sentence(r, 30+r.Intn(40)), sentence(r, 6))
		}
		return Doc{Partition: part, FileID: base + ".md", Name: "d.md", Body: []byte(b.String())}
	case 2:
		b.WriteString("<!DOCTYPE html><html><head><title>doc</title></head><body>")
		for p := 0; p < paras; p++ {
			fmt.Fprintf(&b, "<h2>Part %d</h2><p>%s.</p>", p, sentence(r, 30+r.Intn(40)))
		}
		b.WriteString("</body></html>\n")
		return Doc{Partition: part, FileID: base + ".html", Name: "d.html", Body: []byte(b.String())}
	case 3:
		b.WriteString("id,name,description\n")
		for p := 0; p < 3+paras*4; p++ {
			fmt.Fprintf(&b, "%d,%s,%s\n", p, words[r.Intn(len(words))], sentence(r, 8+r.Intn(8)))
		}
		return Doc{Partition: part, FileID: base + ".csv", Name: "d.csv", Body: []byte(b.String())}
	default:
		b.WriteString(`{"title": "doc", "items": [`)
		for p := 0; p < paras*2; p++ {
			if p > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"n": %d, "text": %q}`, p, sentence(r, 15+r.Intn(20)))
		}
		b.WriteString("]}\n")
		return Doc{Partition: part, FileID: base + ".json", Name: "d.json", Body: []byte(b.String())}
	}
}

// Submitted is what the workload knows about one accepted document.
type Submitted struct {
	Doc
	TaskID   string
	Tries    int
	Latency  time.Duration // first try to acceptance
	Accepted time.Time
}

// Workload submits documents through random live nodes at a steady rate.
type Workload struct {
	e    *Env
	r    *rand.Rand
	rate time.Duration

	mu       sync.Mutex
	subs     []*Submitted
	lost     []string
	maxLat   time.Duration
	maxLatID string
	n        int

	stop chan struct{}
	done chan struct{}
}

// Run starts submitting one document every rate, up to max (0: no cap)
// until Stop.
func (e *Env) RunWorkload(rate time.Duration, max int) *Workload {
	w := &Workload{e: e, r: rand.New(rand.NewSource(e.Seed + 1)), rate: rate, stop: make(chan struct{}), done: make(chan struct{})}
	e.wl = w
	go w.loop(max)
	e.T.Cleanup(w.Stop)
	return w
}

// Burst submits n large documents at once (concurrently, 4 at a time), so
// that tasks are running when the next fault strikes.
func (w *Workload) Burst(n int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := 0; i < n; i++ {
		d := w.next(true)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.submit(d)
		}()
	}
	wg.Wait()
}

func (w *Workload) next(big bool) Doc {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	return GenDoc(w.r, w.e.Name, w.n, big)
}

func (w *Workload) loop(max int) {
	defer close(w.done)
	tk := time.NewTicker(w.rate)
	defer tk.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; max == 0 || i < max; i++ {
		select {
		case <-w.stop:
			return
		case <-tk.C:
		}
		d := w.next(false)
		wg.Add(1)
		go func() { defer wg.Done(); w.submit(d) }()
	}
}

// Stop ends the submission loop and waits for submissions in flight.
func (w *Workload) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// submit retries through random live nodes until a node accepts the file or
// says it exists already (an earlier try was committed but its answer lost).
func (w *Workload) submit(d Doc) {
	start := time.Now()
	var last error
	for try := 1; time.Since(start) < 90*time.Second; try++ {
		live := w.e.Live()
		if len(live) == 0 {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		p := live[w.r.Intn(len(live))]
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		tv, err := p.Client().Submit(ctx, transport.SubmitRequest{Partition: d.Partition, FileID: d.FileID, FileName: d.Name, Mode: fsm.ModeCreate, Metadata: d.Metadata}, bytes.NewReader(d.Body))
		cancel()
		if err == nil || transport.IsStatus(err, 409) {
			lat := time.Since(start)
			w.mu.Lock()
			w.subs = append(w.subs, &Submitted{Doc: d, TaskID: tv.ID, Tries: try, Latency: lat, Accepted: time.Now()})
			if lat > w.maxLat {
				w.maxLat, w.maxLatID = lat, d.FileID
			}
			w.mu.Unlock()
			return
		}
		if transport.IsStatus(err, 415) || transport.IsStatus(err, 400) {
			w.e.Fail("submit %s refused for good: %v", d.FileID, err)
			return
		}
		last = err
		time.Sleep(150 * time.Millisecond)
	}
	w.mu.Lock()
	w.lost = append(w.lost, fmt.Sprintf("%s: %v", d.FileID, last))
	w.mu.Unlock()
	w.e.Fail("submit %s not accepted within 90s: %v", d.FileID, last)
}

// Submitted returns the accepted documents.
func (w *Workload) Submitted() []*Submitted {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*Submitted(nil), w.subs...)
}

// MaxLatency is the longest time a submission took to be accepted.
func (w *Workload) MaxLatency() (time.Duration, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxLat, w.maxLatID
}

// SubmitVia submits d once through p, and records it like the workload's
// own documents when p accepts it (the checker then expects it in the
// ledger exactly once). It returns p's answer.
func (w *Workload) SubmitVia(p *harness.Proc, d Doc) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	tv, err := p.Client().Submit(ctx, transport.SubmitRequest{Partition: d.Partition, FileID: d.FileID, FileName: d.Name, Mode: fsm.ModeCreate, Metadata: d.Metadata}, bytes.NewReader(d.Body))
	if err == nil {
		w.mu.Lock()
		w.subs = append(w.subs, &Submitted{Doc: d, TaskID: tv.ID, Tries: 1, Latency: time.Since(start), Accepted: time.Now()})
		w.mu.Unlock()
	}
	return err
}
