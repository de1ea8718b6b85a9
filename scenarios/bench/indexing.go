package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/chunk"
	"github.com/ragnode/ragnode/indexer/embed"
	"github.com/ragnode/ragnode/indexer/store"
)

var words = strings.Fields(`raft leader election log replication follower candidate term commit index snapshot
	membership gossip serf failure detection scheduler quota allocation worker pipeline loader chunk embedding vector
	store search partition metadata document paragraph section heading table figure reference appendix summary
	throughput latency benchmark cluster node restart drain requeue attempt retry checksum blob replica`)

func prose(r *rand.Rand, nwords int) string {
	var sb strings.Builder
	for i := 0; i < nwords; i++ {
		sb.WriteString(words[r.Intn(len(words))])
		if i%17 == 16 {
			sb.WriteString(". ")
		} else {
			sb.WriteByte(' ')
		}
		if i%120 == 119 {
			sb.WriteString("\n\n")
		}
	}
	return sb.String()
}

type doc struct {
	name string
	data []byte
}

// corpus is a mix of txt, md, html, csv, json and eml documents of 200 to
// 6,000 words.
func corpus(n int) []doc {
	r := rand.New(rand.NewSource(7))
	var out []doc
	for i := 0; i < n; i++ {
		w := 200 + r.Intn(5800)
		var d doc
		switch i % 6 {
		case 0:
			d = doc{fmt.Sprintf("d%04d.txt", i), []byte(prose(r, w))}
		case 1:
			var sb strings.Builder
			for s := 0; s < 1+w/400; s++ {
				fmt.Fprintf(&sb, "# Section %d\n\n%s\n\n## Details\n\n%s\n\n", s, prose(r, 200), prose(r, 200))
			}
			d = doc{fmt.Sprintf("d%04d.md", i), []byte(sb.String())}
		case 2:
			var sb strings.Builder
			sb.WriteString("<html><head><title>Doc</title></head><body>")
			for s := 0; s < 1+w/300; s++ {
				fmt.Fprintf(&sb, "<h2>Part %d</h2><p>%s</p><ul><li>%s</li></ul>", s, prose(r, 250), prose(r, 50))
			}
			sb.WriteString("</body></html>")
			d = doc{fmt.Sprintf("d%04d.html", i), []byte(sb.String())}
		case 3:
			var sb strings.Builder
			sb.WriteString("id,name,description,value\n")
			for row := 0; row < w/12; row++ {
				fmt.Fprintf(&sb, "%d,item %d,\"%s\",%d\n", row, row, prose(r, 10), r.Intn(1000))
			}
			d = doc{fmt.Sprintf("d%04d.csv", i), []byte(sb.String())}
		case 4:
			var items []map[string]any
			for k := 0; k < w/40; k++ {
				items = append(items, map[string]any{"id": k, "title": prose(r, 5), "body": prose(r, 35)})
			}
			b, _ := json.Marshal(map[string]any{"items": items})
			d = doc{fmt.Sprintf("d%04d.json", i), b}
		case 5:
			body := prose(r, w)
			d = doc{fmt.Sprintf("d%04d.eml", i), []byte("From: a@example.com\r\nTo: b@example.com\r\nSubject: report " + fmt.Sprint(i) +
				"\r\nDate: Mon, 2 Jan 2006 15:04:05 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body)}
		}
		out = append(out, d)
	}
	return out
}

// benchIndexing runs the indexing pipeline (load, chunk, embed, upsert into
// the local bbolt store) in this process with one worker per core over a
// mixed corpus; then the same with the OpenAI-compatible embedder against a
// local stand-in that answers at once (zero-cost vectors), so the figure is
// ragnode's own overhead around a remote embedder.
func benchIndexing(ctx context.Context, tb *benchTB) []section {
	docs := corpus(scale(600, 12))
	var bytesTotal int
	for _, d := range docs {
		bytesTotal += len(d.data)
	}
	cores := runtime.GOMAXPROCS(0)
	const dim = 384
	stand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Input []string `json:"input"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		type item struct {
			Object    string    `json:"object"`
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		}
		v := make([]float32, dim)
		v[0] = 1
		resp := struct {
			Object string `json:"object"`
			Data   []item `json:"data"`
			Model  string `json:"model"`
		}{Object: "list", Model: "standin"}
		for i := range req.Input {
			resp.Data = append(resp.Data, item{"embedding", i, v})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}))
	defer stand.Close()
	var calls atomic.Int64
	sec := section{
		Title: "6. Indexing throughput (in-process pipeline, local store)",
		Setup: fmt.Sprintf("%d documents (txt, md, html, csv, json, eml in equal shares; %.1f MB), the production pipeline (`indexer.Pipeline`: detect, load, "+
			"chunk at 512 tokens, embed, upsert into the local bbolt vector store) with %d workers (one per core). *OpenAI stand-in*: the OpenAI-compatible "+
			"embedder against an in-process HTTP server that returns constant %d-d vectors at once, so the figure is ragnode's own cost.",
			len(docs), float64(bytesTotal)/1e6, cores, dim),
		Header: []string{"embedder", "docs", "chunks", "wall", "docs/s", "chunks/s", "docs/s per core", "chunks/s per core", "MB/s"},
	}
	for _, e := range []string{"built-in (lexical, 384-d)", "OpenAI-compatible stand-in (384-d)"} {
		var emb embed.Embedder
		if strings.HasPrefix(e, "built-in") {
			emb = embed.NewLexical(dim)
		} else {
			o, err := embed.NewOpenAI(embed.OpenAIConfig{BaseURL: stand.URL, Model: "standin", Dim: dim})
			if err != nil {
				tb.Fatalf("openai: %v", err)
			}
			emb = o
		}
		st, err := store.OpenLocal(filepath.Join(tb.TempDir(), "chunks.db"))
		if err != nil {
			tb.Fatalf("store: %v", err)
		}
		p, err := indexer.New(indexer.Config{Chunk: chunk.Options{}, TmpDir: tb.TempDir()}, emb, indexer.StoreSink{Store: st})
		if err != nil {
			tb.Fatalf("pipeline: %v", err)
		}
		var next, chunks, fails atomic.Int64
		var wg sync.WaitGroup
		t0 := time.Now()
		for w := 0; w < cores; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(docs) || ctx.Err() != nil {
						return
					}
					d := docs[i]
					res, err := p.Run(ctx, indexer.Input{TaskID: taskID(), Partition: "bench", FileID: d.name, FileName: d.name, Data: d.data, GPU: -1}, nil)
					if err != nil {
						if fails.Add(1) < 4 {
							logf("  index %s: %v", d.name, err)
						}
						continue
					}
					chunks.Add(int64(res.Chunks))
				}
			}()
		}
		wg.Wait()
		wall := time.Since(t0)
		_ = st.Close()
		nd := float64(len(docs) - int(fails.Load()))
		nc := float64(chunks.Load())
		sec.Rows = append(sec.Rows, []string{e, fmt.Sprintf("%.0f", nd), fmt.Sprintf("%.0f", nc), secs(wall),
			fmt.Sprintf("%.0f", nd/wall.Seconds()), fmt.Sprintf("%.0f", nc/wall.Seconds()),
			fmt.Sprintf("%.0f", nd/wall.Seconds()/float64(cores)), fmt.Sprintf("%.0f", nc/wall.Seconds()/float64(cores)),
			fmt.Sprintf("%.2f", float64(bytesTotal)/1e6/wall.Seconds())})
		logf("indexing %s: %.0f docs, %.0f chunks in %s (%d failed)", e, nd, nc, wall.Round(time.Millisecond), fails.Load())
	}
	_ = calls.Load()
	return []section{sec}
}
