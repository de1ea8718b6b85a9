package node

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/chunk"
	"github.com/ragnode/ragnode/indexer/convert"
	"github.com/ragnode/ragnode/indexer/embed"
	"github.com/ragnode/ragnode/indexer/loader"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/indexer/store/milvus"
	"github.com/ragnode/ragnode/transport"
)

// IndexerConfig selects the embedder, the vector store and chunking.
type IndexerConfig struct {
	// Embedder: empty URL = built-in lexical embedder.
	EmbedderURL      string
	EmbedderModel    string
	EmbedderKey      string
	EmbedderDim      int
	EmbedBatch       int
	EmbedConcurrency int
	// Vector store: "local" (bbolt per node) or "milvus".
	VDB          string
	VDBAddr      string
	Collection   string
	VDBUser      string
	VDBPass      string
	VDBToken     string
	ChunkSize    int
	ChunkOverlap int
	Converters   []string
	// ChunkReplicas is how many nodes keep each file's chunks in the local
	// store (this node included), so search survives a node's loss.
	ChunkReplicas int
}

func (c *IndexerConfig) defaults() {
	if c.VDB == "" {
		c.VDB = "local"
	}
	if c.ChunkReplicas == 0 {
		c.ChunkReplicas = 2
	}
	if c.Collection == "" {
		c.Collection = "ragnode"
	}
}

func (n *Node) startIndexer() error {
	ic := &n.cfg.Indexer
	ic.defaults()
	var emb embed.Embedder
	if ic.EmbedderURL != "" {
		o, err := embed.NewOpenAI(embed.OpenAIConfig{BaseURL: ic.EmbedderURL, Model: ic.EmbedderModel, APIKey: ic.EmbedderKey,
			Dim: ic.EmbedderDim, Batch: ic.EmbedBatch, Concurrency: ic.EmbedConcurrency})
		if err != nil {
			return fmt.Errorf("embedder: %w", err)
		}
		emb = o
	} else {
		dim := ic.EmbedderDim
		if dim == 0 {
			dim = 384
		}
		emb = embed.NewLexical(dim)
	}
	n.emb = emb
	switch ic.VDB {
	case "local":
		st, err := store.OpenLocal(filepath.Join(n.cfg.DataDir, "chunks.db"))
		if err != nil {
			return fmt.Errorf("open local vector store: %w", err)
		}
		n.store = st
	case "milvus":
		if emb.Dim() == 0 {
			return errors.New("--vdb milvus with an HTTP embedder needs --embedder-dim (the collection's vector size)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := milvus.Open(ctx, milvus.Config{Address: ic.VDBAddr, Collection: ic.Collection, Dim: emb.Dim(),
			Username: ic.VDBUser, Password: ic.VDBPass, Token: ic.VDBToken})
		if err != nil {
			return fmt.Errorf("milvus at %s: %w", ic.VDBAddr, err)
		}
		n.store = st
	default:
		return fmt.Errorf("--vdb %q: want local or milvus", ic.VDB)
	}
	convs := convert.Set{}
	for _, spec := range ic.Converters {
		if err := convs.Add(spec); err != nil {
			return err
		}
	}
	tmp := filepath.Join(n.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return err
	}
	p, err := indexer.New(indexer.Config{Chunk: chunk.Options{Size: ic.ChunkSize, Overlap: ic.ChunkOverlap}, Converters: convs, TmpDir: tmp},
		emb, &nodeSink{n: n})
	if err != nil {
		return err
	}
	n.pipe = p
	return nil
}

// pipelineRunner runs the indexing pipeline as a task body.
type pipelineRunner struct{ n *Node }

func (r pipelineRunner) Run(ctx context.Context, job Job) (Outcome, error) {
	job.Progress(fsm.StageLoading)
	data, err := job.Open(ctx)
	if err != nil {
		return Outcome{}, err
	}
	t := job.Task
	res, err := r.n.pipe.Run(ctx, indexer.Input{TaskID: t.ID, Partition: t.Partition, FileID: t.FileID, FileName: t.File.Name,
		Data: data, Metadata: t.Metadata, GPU: job.GPU}, job.Progress)
	if err != nil {
		if indexer.IsPermanent(err) {
			return Outcome{}, Permanent(err)
		}
		return Outcome{}, err
	}
	return Outcome{Chunks: res.Chunks, ChunkHolders: res.Holders}, nil
}

func (pipelineRunner) Close() error { return nil }

// nodeSink writes a file's chunks to this node's store and, with the local
// store, to ChunkReplicas-1 other nodes chosen by rendezvous hashing.
type nodeSink struct{ n *Node }

func (s *nodeSink) WriteFile(ctx context.Context, partition, fileID string, recs []store.Record) ([]string, error) {
	n := s.n
	if _, err := (indexer.StoreSink{Store: n.store}).WriteFile(ctx, partition, fileID, recs); err != nil {
		return nil, err
	}
	if n.cfg.Indexer.VDB != "local" {
		return nil, nil
	}
	holders := []string{n.id}
	holders = append(holders, n.pushChunks(ctx, partition, fileID, recs, n.cfg.Indexer.ChunkReplicas-1, holders)...)
	return holders, nil
}

// pushChunks copies a file's records to up to want peers not in skip,
// ranked by rendezvous hash on the file, and returns the peers that took
// them. A missing copy costs redundancy, not correctness: the leader's
// repair loop restores it later.
func (n *Node) pushChunks(ctx context.Context, partition, fileID string, recs []store.Record, want int, skip []string) []string {
	var got []string
	if want <= 0 {
		return nil
	}
	for _, addr := range n.rankPeers(partition+"\x00"+fileID, 1<<30) {
		if len(got) == want {
			break
		}
		id := n.idOfHTTP(addr)
		if id == "" || containsStr(skip, id) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := n.client(addr).PutChunks(cctx, transport.ChunkWrite{Partition: partition, FileID: fileID, Records: recs})
		cancel()
		if err != nil {
			n.log.Warn("chunk replica write", "to", addr, "error", err)
			continue
		}
		got = append(got, id)
	}
	return got
}

// rankPeers returns up to k alive peers' API addresses, ranked by rendezvous
// hash on key so the same file lands on the same peers.
func (n *Node) rankPeers(key string, k int) []string {
	if k <= 0 {
		return nil
	}
	type cand struct {
		addr  string
		score uint64
	}
	var cs []cand
	for _, m := range n.serf.Members() {
		id := m.Tags[tagID]
		if id == "" || id == n.id || m.Status != serf.StatusAlive || m.Tags[tagHTTP] == "" {
			continue
		}
		sum := sha256.Sum256([]byte(key + "/" + id))
		cs = append(cs, cand{m.Tags[tagHTTP], binary.BigEndian.Uint64(sum[:8])})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].score > cs[j].score })
	var out []string
	for i := 0; i < len(cs) && i < k; i++ {
		out = append(out, cs[i].addr)
	}
	return out
}

// PutChunks implements transport.Backend: a replica write from a peer.
func (n *Node) PutChunks(ctx context.Context, w transport.ChunkWrite) error {
	_, err := (indexer.StoreSink{Store: n.store}).WriteFile(ctx, w.Partition, w.FileID, w.Records)
	return err
}

// LocalSearch implements transport.Backend: search this node's store only.
func (n *Node) LocalSearch(ctx context.Context, q store.Query) ([]store.Hit, error) {
	return n.store.Search(ctx, q)
}

// LocalChunkIDs implements transport.Backend.
func (n *Node) LocalChunkIDs(ctx context.Context, partition, fileID string) ([]string, error) {
	return n.store.ChunkIDs(ctx, partition, fileID)
}

// Search implements transport.Backend and CompatBackend. With the local
// store it fans out to every alive node and merges; either way the ledger
// has the last word: only chunks of the file's live version are returned,
// with the file's current metadata.
func (n *Node) Search(ctx context.Context, req transport.SearchRequest) ([]transport.Hit, error) {
	if strings.TrimSpace(req.Text) == "" {
		return nil, transport.Errorf(http.StatusBadRequest, "search text is empty")
	}
	if req.TopK <= 0 {
		req.TopK = 5
	}
	vecs, err := n.emb.Embed(ctx, []string{req.Text})
	if err != nil {
		return nil, fmt.Errorf("embed query: %w", err)
	}
	fetch := req.TopK * 3
	if len(req.Filter) > 0 {
		fetch = req.TopK * 10
	}
	q := store.Query{Vector: vecs[0], Partitions: req.Partitions, TopK: fetch}
	var hits []store.Hit
	if n.cfg.Indexer.VDB != "local" {
		if hits, err = n.store.Search(ctx, q); err != nil {
			return nil, err
		}
	} else {
		hits = n.fanOutSearch(ctx, q)
	}
	return n.filterHits(hits, req), nil
}

func (n *Node) fanOutSearch(ctx context.Context, q store.Query) []store.Hit {
	var mu sync.Mutex
	var all []store.Hit
	var wg sync.WaitGroup
	for _, m := range n.serf.Members() {
		if m.Tags[tagID] == "" || m.Status != serf.StatusAlive {
			continue
		}
		id, addr := m.Tags[tagID], m.Tags[tagHTTP]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var hs []store.Hit
			var err error
			if id == n.id {
				hs, err = n.store.Search(ctx, q)
			} else {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				hs, err = n.client(addr).LocalSearch(cctx, q)
				cancel()
			}
			if err != nil {
				n.log.Warn("search fan-out", "node", addr, "error", err)
				return
			}
			mu.Lock()
			all = append(all, hs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

func (n *Node) filterHits(hits []store.Hit, req transport.SearchRequest) []transport.Hit {
	best := map[string]store.Hit{}
	for _, h := range hits {
		if b, ok := best[h.ID]; !ok || h.Score > b.Score {
			best[h.ID] = h
		}
	}
	var out []transport.Hit
	n.fsm.View(func(s *fsm.State) {
		for _, h := range best {
			f := s.Files[fsm.FileKey(h.Partition, h.FileID)]
			if f == nil || f.LiveTask == "" || h.Index >= f.LiveChunks {
				continue
			}
			if task, _ := h.Metadata[indexer.MetaTask].(string); task != f.LiveTask {
				continue
			}
			meta := map[string]any{}
			for k, v := range f.Metadata {
				meta[k] = v
			}
			meta["filename"], meta["partition"], meta["file_id"] = f.Ref.Name, f.Partition, f.FileID
			if !metaMatches(meta, req.Filter) {
				continue
			}
			out = append(out, transport.Hit{Score: h.Score, ChunkID: h.ID, Partition: h.Partition, FileID: h.FileID,
				FileName: f.Ref.Name, Page: h.Page, Index: h.Index, Headings: h.Headings, Text: h.Text, Metadata: meta})
		}
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ChunkID < out[j].ChunkID
	})
	if len(out) > req.TopK {
		out = out[:req.TopK]
	}
	return out
}

func metaMatches(meta map[string]any, filter map[string]string) bool {
	for k, v := range filter {
		got, ok := meta[k]
		if !ok || fmt.Sprint(got) != v {
			return false
		}
	}
	return true
}

// checkType peeks at an upload and refuses types the pipeline cannot read.
func (n *Node) checkType(name string, body *bufio.Reader) error {
	head, _ := body.Peek(4096)
	if err := n.pipe.CheckSupported(name, head); err != nil {
		kinds := loader.Supported()
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = string(k)
		}
		return transport.Errorf(http.StatusUnsupportedMediaType, "%s: %v (supported: %s)", name, err, strings.Join(names, ", "))
	}
	return nil
}
