package store

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// lockTimeout bounds how long OpenLocal waits for the file lock; bbolt
// would otherwise wait forever behind another process holding the file.
var lockTimeout = time.Second

var (
	bucketChunks = []byte("chunks") // chunk ID -> encoded record
	// bucketFiles nests "p"+partition -> "f"+fileID -> indexKey(index)+ID ->
	// empty, so deletes by file, by file from an index, and by partition
	// touch only the chunks concerned. The prefixes keep bucket names
	// non-empty, which bbolt requires.
	bucketFiles = []byte("files")
)

// Local is a Store in a single bbolt file. Vectors are also held in memory,
// normalised, for exact brute-force cosine search, next to a BM25 inverted
// index of the chunk texts (rebuilt from the file at open).
//
// The in-memory index can be built after the file is opened
// (OpenLocalDeferred, then Load): a large store takes a minute to load,
// and a node should be in its cluster meanwhile. Until Load finishes,
// Search answers ErrIndexLoading at once and every other method waits for
// it (Load holds the lock they take), so nothing reads or changes a
// half-built index.
type Local struct {
	db *bolt.DB

	mu    sync.RWMutex
	dim   int       // 0 while the store is empty
	vecs  []float32 // slot i occupies vecs[i*dim : (i+1)*dim], L2-normalised
	slots []slotInfo
	byID  map[string]int
	bm    *bm25Index

	// loaded is set once the index is built; loadErr (under mu) is why
	// it never will be. closing asks a Load under way to stop.
	loaded  atomic.Bool
	loadErr error
	closing atomic.Bool
	// loadedN and total are a Load's progress, in chunks.
	loadedN, total atomic.Int64
}

// ErrIndexLoading is Search's answer while the index is still being built.
var ErrIndexLoading = errors.New("chunk index still loading")

// slotInfo is what search and the index maintenance need without reading
// the record from disk.
type slotInfo struct {
	id, partition, fileID string
	index                 int
	strMeta               map[string]string // string-valued metadata, for filters
	doc                   uint32            // document number in the partition's BM25 index
}

// OpenLocal opens or creates the store at path and loads its index. If
// another process holds the file, it fails after about a second instead of
// waiting.
func OpenLocal(path string) (*Local, error) {
	l, err := OpenLocalDeferred(path)
	if err != nil {
		return nil, err
	}
	if err := l.Load(nil); err != nil {
		l.db.Close()
		return nil, err
	}
	return l, nil
}

// OpenLocalDeferred opens or creates the store at path without building
// its index: call Load (once) before the store answers searches.
func OpenLocalDeferred(path string) (*Local, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: %s is locked by another process (is another ragnode using this data directory?): %w", path, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	l := &Local{db: db, byID: make(map[string]int), bm: newBM25Index()}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketFiles); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketChunks)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return l, nil
}

// errClosing ends a Load that Close interrupted.
var errClosing = errors.New("store closing")

// Load builds the in-memory index from the file. check, when not nil, runs
// first on the open file under the same lock (a walk that detects
// damage). An error is kept: Search answers it from then on, and so does
// every later Load.
func (l *Local) Load(check func(*bolt.DB) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded.Load() || l.loadErr != nil {
		return l.loadErr
	}
	err := l.buildIndex(check)
	if err != nil {
		l.resetIndex()
		l.loadErr = err
		return err
	}
	l.loaded.Store(true)
	return nil
}

func (l *Local) buildIndex(check func(*bolt.DB) error) error {
	if check != nil {
		if err := check(l.db); err != nil {
			return err
		}
	}
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChunks)
		l.total.Store(int64(b.Stats().KeyN))
		n := int64(0)
		return b.ForEach(func(k, v []byte) error {
			if n++; n%1024 == 0 {
				if l.closing.Load() {
					return errClosing
				}
				l.loadedN.Store(n)
			}
			rec, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("chunk %x: %w", k, err)
			}
			if l.dim == 0 {
				l.dim = len(rec.Vector)
			}
			if len(rec.Vector) != l.dim {
				return fmt.Errorf("chunk %s has dimension %d, others %d", rec.ID, len(rec.Vector), l.dim)
			}
			l.put(&rec, "")
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: load %s: %w", l.db.Path(), err)
	}
	l.loadedN.Store(l.total.Load())
	return nil
}

// resetIndex drops a partly built index; the caller holds mu.
func (l *Local) resetIndex() {
	l.dim, l.vecs, l.slots, l.byID, l.bm = 0, nil, nil, make(map[string]int), newBM25Index()
}

// Fail records err as the store's answer from now on, unless the index is
// already built: for a Load that ended in a way it could not report (the
// caller recovered a panic inside it).
func (l *Local) Fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.loaded.Load() && l.loadErr == nil {
		l.resetIndex()
		l.loadErr = err
	}
}

// Loaded reports whether the index is built.
func (l *Local) Loaded() bool { return l.loaded.Load() }

// LoadProgress is how many chunks a Load has read of how many.
func (l *Local) LoadProgress() (done, total int64) { return l.loadedN.Load(), l.total.Load() }

// Close closes the file. The Local must not be used afterwards. A Load
// under way stops first.
func (l *Local) Close() error {
	l.closing.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.db.Close()
}

// Upsert writes recs in one transaction: all or none are stored. Every
// record needs an ID, a partition, a file ID and a vector whose dimension
// matches the store's.
func (l *Local) Upsert(ctx context.Context, recs []Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The last write of an ID wins, as if the records were upserted one by
	// one.
	last := make(map[string]int, len(recs))
	for i := range recs {
		last[recs[i].ID] = i
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loadErr != nil {
		return l.loadErr // a store that failed its load is not touched again
	}
	dim := l.dim
	for i := range recs {
		r := &recs[i]
		switch {
		case r.ID == "":
			return fmt.Errorf("store: record %d has no ID", i)
		case r.Partition == "":
			return fmt.Errorf("store: record %s has no partition", r.ID)
		case r.FileID == "":
			return fmt.Errorf("store: record %s has no file ID", r.ID)
		case len(r.Vector) == 0:
			return fmt.Errorf("store: record %s has no vector", r.ID)
		}
		if dim == 0 {
			dim = len(r.Vector)
		}
		if len(r.Vector) != dim {
			return fmt.Errorf("store: record %s has dimension %d, store holds dimension %d", r.ID, len(r.Vector), dim)
		}
	}
	// The replaced records' texts, to unindex them from BM25.
	oldText := make(map[string]string)
	err := l.db.Update(func(tx *bolt.Tx) error {
		chunks, files := tx.Bucket(bucketChunks), tx.Bucket(bucketFiles)
		for i := range recs {
			// A file's records come in one batch; a cancel rolls the
			// transaction back (all or none) instead of finishing it.
			if i%1024 == 1023 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			r := &recs[i]
			if last[r.ID] != i {
				continue
			}
			if s, ok := l.byID[r.ID]; ok {
				if err := unindex(files, &l.slots[s]); err != nil {
					return err
				}
				texts, err := chunkTexts(tx, []string{r.ID})
				if err != nil {
					return err
				}
				oldText[r.ID] = texts[r.ID]
			}
			v, err := encodeRecord(r)
			if err != nil {
				return fmt.Errorf("record %s: %w", r.ID, err)
			}
			if err := chunks.Put([]byte(r.ID), v); err != nil {
				return err
			}
			fb, err := fileBucket(files, r.Partition, r.FileID, true)
			if err != nil {
				return err
			}
			if err := fb.Put(indexKey(r.Index, r.ID), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: upsert: %w", err)
	}
	l.dim = dim
	for i := range recs {
		if last[recs[i].ID] == i {
			l.put(&recs[i], oldText[recs[i].ID])
		}
	}
	return nil
}

// DeleteFile removes every chunk of the file.
func (l *Local) DeleteFile(ctx context.Context, partition, fileID string) error {
	return l.deleteFile(ctx, partition, fileID, math.MinInt)
}

// DeleteFileFrom removes the file's chunks with Index >= fromIndex.
func (l *Local) DeleteFileFrom(ctx context.Context, partition, fileID string, fromIndex int) error {
	return l.deleteFile(ctx, partition, fileID, fromIndex)
}

func (l *Local) deleteFile(ctx context.Context, partition, fileID string, from int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if partition == "" || fileID == "" {
		return errors.New("store: delete needs a partition and a file ID")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loadErr != nil {
		return l.loadErr
	}
	var ids []string
	var texts map[string]string
	err := l.db.Update(func(tx *bolt.Tx) error {
		fb, _ := fileBucket(tx.Bucket(bucketFiles), partition, fileID, false)
		if fb == nil {
			return nil
		}
		var keys [][]byte
		c := fb.Cursor()
		for k, _ := c.Seek(indexKey(from, "")); k != nil; k, _ = c.Next() {
			keys = append(keys, k)
			ids = append(ids, string(k[8:]))
		}
		// Deleting while a cursor walks the bucket can skip keys, hence
		// the two passes.
		for _, k := range keys {
			if err := fb.Delete(k); err != nil {
				return err
			}
		}
		if from == math.MinInt {
			pb := tx.Bucket(bucketFiles).Bucket(partitionName(partition))
			if err := pb.DeleteBucket(fileName(fileID)); err != nil {
				return err
			}
		}
		var err error
		if texts, err = chunkTexts(tx, ids); err != nil {
			return err
		}
		return deleteChunks(tx, ids)
	})
	if err != nil {
		return fmt.Errorf("store: delete file: %w", err)
	}
	l.drop(ids, texts)
	return nil
}

// DeletePartition removes every chunk of the partition.
func (l *Local) DeletePartition(ctx context.Context, partition string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if partition == "" {
		return errors.New("store: delete needs a partition")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loadErr != nil {
		return l.loadErr
	}
	var ids []string
	err := l.db.Update(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		pb := files.Bucket(partitionName(partition))
		if pb == nil {
			return nil
		}
		err := pb.ForEachBucket(func(name []byte) error {
			return pb.Bucket(name).ForEach(func(k, _ []byte) error {
				ids = append(ids, string(k[8:]))
				return nil
			})
		})
		if err != nil {
			return err
		}
		if err := files.DeleteBucket(partitionName(partition)); err != nil {
			return err
		}
		return deleteChunks(tx, ids)
	})
	if err != nil {
		return fmt.Errorf("store: delete partition: %w", err)
	}
	// Dropping the partition's BM25 index whole spares re-analyzing its
	// texts; drop then only fixes slots.
	l.bm.dropPartition(partition)
	l.drop(ids, nil)
	return nil
}

// UpdateMetadata merges meta into every chunk of the file; a nil value
// removes the key. Vectors and texts are rewritten unchanged.
func (l *Local) UpdateMetadata(ctx context.Context, partition, fileID string, meta map[string]any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loadErr != nil {
		return l.loadErr
	}
	updated := make(map[string]*Record)
	err := l.db.Update(func(tx *bolt.Tx) error {
		fb, _ := fileBucket(tx.Bucket(bucketFiles), partition, fileID, false)
		if fb == nil {
			return nil
		}
		chunks := tx.Bucket(bucketChunks)
		return fb.ForEach(func(k, _ []byte) error {
			id := k[8:]
			v := chunks.Get(id)
			if v == nil {
				return fmt.Errorf("index lists missing chunk %s", id)
			}
			rec, err := decodeRecord(v)
			if err != nil {
				return err
			}
			rec.Metadata = mergeMeta(rec.Metadata, meta)
			enc, err := encodeRecord(&rec)
			if err != nil {
				return err
			}
			updated[rec.ID] = &rec
			return chunks.Put(id, enc)
		})
	})
	if err != nil {
		return fmt.Errorf("store: update metadata: %w", err)
	}
	for id, rec := range updated {
		l.slots[l.byID[id]].strMeta = stringMeta(rec.Metadata)
	}
	return nil
}

// mergeMeta returns a copy of base with meta's keys set (or removed when
// nil).
func mergeMeta(base, meta map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(meta))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range meta {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// ChunkIDs lists chunk IDs, sorted; empty partition or fileID match all.
func (l *Local) ChunkIDs(ctx context.Context, partition, fileID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.loadErr != nil {
		return nil, l.loadErr
	}
	ids := []string{}
	for i := range l.slots {
		s := &l.slots[i]
		if (partition == "" || s.partition == partition) && (fileID == "" || s.fileID == fileID) {
			ids = append(ids, s.id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

type candidate struct {
	slot  int
	score float32
}

// topK is a min-heap holding the k best candidates seen, worst on top, so
// a full scan costs O(n log k) and O(k) memory.
type topK struct {
	l     *Local
	k     int
	items []candidate
}

func (h *topK) better(a, b candidate) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return h.l.slots[a.slot].id < h.l.slots[b.slot].id
}

func (h *topK) Len() int           { return len(h.items) }
func (h *topK) Less(i, j int) bool { return h.better(h.items[j], h.items[i]) }
func (h *topK) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *topK) Push(x any)         { h.items = append(h.items, x.(candidate)) }
func (h *topK) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

func (h *topK) offer(slot int, score float32) {
	c := candidate{slot, score}
	if len(h.items) < h.k {
		heap.Push(h, c)
		return
	}
	if h.better(c, h.items[0]) {
		h.items[0] = c
		heap.Fix(h, 0)
	}
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// normalized returns v scaled to unit length (a zero vector stays zero and
// scores 0 against everything).
func normalized(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if n == 0 {
		return out
	}
	inv := 1 / math.Sqrt(n)
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

// put adds or replaces the in-memory copy of rec; oldText is the text of
// the record it replaces, if any, to unindex it. Callers hold mu.
func (l *Local) put(rec *Record, oldText string) {
	info := slotInfo{
		id: rec.ID, partition: rec.Partition, fileID: rec.FileID,
		index: rec.Index, strMeta: stringMeta(rec.Metadata),
	}
	nv := normalized(rec.Vector)
	if s, ok := l.byID[rec.ID]; ok {
		l.bm.remove(l.slots[s].partition, l.slots[s].doc, oldText)
		info.doc = l.bm.add(rec.Partition, s, rec.Text)
		l.slots[s] = info
		copy(l.vecs[s*l.dim:(s+1)*l.dim], nv)
		return
	}
	info.doc = l.bm.add(rec.Partition, len(l.slots), rec.Text)
	l.byID[rec.ID] = len(l.slots)
	l.slots = append(l.slots, info)
	l.vecs = append(l.vecs, nv...)
}

// drop removes ids from memory by moving the last slot into each hole;
// texts holds their stored texts, to unindex them from BM25 (nil when
// their partition's index was dropped whole). Callers hold mu.
func (l *Local) drop(ids []string, texts map[string]string) {
	for _, id := range ids {
		s, ok := l.byID[id]
		if !ok {
			continue
		}
		l.bm.remove(l.slots[s].partition, l.slots[s].doc, texts[id])
		last := len(l.slots) - 1
		if s != last {
			l.slots[s] = l.slots[last]
			copy(l.vecs[s*l.dim:(s+1)*l.dim], l.vecs[last*l.dim:])
			l.byID[l.slots[s].id] = s
			l.bm.moved(l.slots[s].partition, l.slots[s].doc, s)
		}
		l.slots = l.slots[:last]
		l.vecs = l.vecs[:last*l.dim]
		delete(l.byID, id)
	}
	if len(l.slots) == 0 {
		// An empty store may take vectors of a new embedder.
		l.dim = 0
		l.vecs = nil
	}
}

func stringMeta(m map[string]any) map[string]string {
	var out map[string]string
	for k, v := range m {
		if s, ok := v.(string); ok {
			if out == nil {
				out = make(map[string]string)
			}
			out[k] = s
		}
	}
	return out
}

func partitionName(p string) []byte { return append([]byte{'p'}, p...) }
func fileName(f string) []byte      { return append([]byte{'f'}, f...) }

func fileBucket(files *bolt.Bucket, partition, fileID string, create bool) (*bolt.Bucket, error) {
	if !create {
		pb := files.Bucket(partitionName(partition))
		if pb == nil {
			return nil, nil
		}
		return pb.Bucket(fileName(fileID)), nil
	}
	pb, err := files.CreateBucketIfNotExists(partitionName(partition))
	if err != nil {
		return nil, err
	}
	return pb.CreateBucketIfNotExists(fileName(fileID))
}

// indexKey sorts by chunk index (sign bit flipped so negatives sort first),
// then by ID so two IDs at one index cannot overwrite each other.
func indexKey(index int, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(int64(index))^(1<<63))
	return append(k, id...)
}

func unindex(files *bolt.Bucket, s *slotInfo) error {
	fb, _ := fileBucket(files, s.partition, s.fileID, false)
	if fb == nil {
		return nil
	}
	return fb.Delete(indexKey(s.index, s.id))
}

// chunkTexts reads the stored texts of ids (absent ones are skipped).
func chunkTexts(tx *bolt.Tx, ids []string) (map[string]string, error) {
	chunks := tx.Bucket(bucketChunks)
	out := make(map[string]string, len(ids))
	for _, id := range ids {
		v := chunks.Get([]byte(id))
		if v == nil {
			continue
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return nil, fmt.Errorf("chunk %s: %w", id, err)
		}
		out[id] = rec.Text
	}
	return out, nil
}

func deleteChunks(tx *bolt.Tx, ids []string) error {
	chunks := tx.Bucket(bucketChunks)
	for _, id := range ids {
		if err := chunks.Delete([]byte(id)); err != nil {
			return err
		}
	}
	return nil
}

// Record encoding: version byte, uvarint vector length, the vector as
// little-endian float32s (compact, and fast to load at open), then the
// remaining fields as JSON.
const recordVersion = 1

type recordFields struct {
	ID        string         `json:"id"`
	Partition string         `json:"p"`
	FileID    string         `json:"f"`
	Index     int            `json:"i"`
	Text      string         `json:"t,omitempty"`
	Page      int            `json:"pg,omitempty"`
	Headings  []string       `json:"h,omitempty"`
	Metadata  map[string]any `json:"m,omitempty"`
}

func encodeRecord(r *Record) ([]byte, error) {
	js, err := json.Marshal(recordFields{r.ID, r.Partition, r.FileID, r.Index, r.Text, r.Page, r.Headings, r.Metadata})
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 1+binary.MaxVarintLen64+4*len(r.Vector)+len(js))
	buf = append(buf, recordVersion)
	buf = binary.AppendUvarint(buf, uint64(len(r.Vector)))
	for _, f := range r.Vector {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(f))
	}
	return append(buf, js...), nil
}

func decodeRecord(b []byte) (Record, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return Record{}, errors.New("unknown record encoding")
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || uint64(len(b)-1-w) < 4*n {
		return Record{}, errors.New("corrupt record")
	}
	b = b[1+w:]
	vec := make([]float32, n)
	for i := range vec {
		vec[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	var f recordFields
	d := json.NewDecoder(bytes.NewReader(b[4*n:]))
	if err := d.Decode(&f); err != nil {
		return Record{}, fmt.Errorf("corrupt record: %w", err)
	}
	return Record{
		ID: f.ID, Partition: f.Partition, FileID: f.FileID, Index: f.Index,
		Text: f.Text, Page: f.Page, Headings: f.Headings, Vector: vec, Metadata: f.Metadata,
	}, nil
}

var _ Store = (*Local)(nil)

// FileRecords returns a file's chunks with their vectors, ordered by index,
// so a node can copy a file's chunks to another replica.
func (l *Local) FileRecords(ctx context.Context, partition, fileID string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.loadErr != nil {
		return nil, l.loadErr
	}
	var out []Record
	err := l.db.View(func(tx *bolt.Tx) error {
		fb, _ := fileBucket(tx.Bucket(bucketFiles), partition, fileID, false)
		if fb == nil {
			return nil
		}
		chunks := tx.Bucket(bucketChunks)
		return fb.ForEach(func(k, _ []byte) error {
			v := chunks.Get(k[8:])
			if v == nil {
				return fmt.Errorf("index lists missing chunk %s", k[8:])
			}
			rec, err := decodeRecord(v)
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: read file: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// HasFile reports whether any chunk of the file is stored here (an index
// lookup, no scan).
func (l *Local) HasFile(partition, fileID string) bool {
	// Under the lock: until a Load has walked the file, a read may meet
	// a damaged page that the Load would have reported.
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.loadErr != nil {
		return false
	}
	has := false
	_ = l.db.View(func(tx *bolt.Tx) error {
		fb, _ := fileBucket(tx.Bucket(bucketFiles), partition, fileID, false)
		has = fb != nil && fb.Stats().KeyN > 0
		return nil
	})
	return has
}

// Record returns the chunk with that ID, vector included; false when this
// store holds none.
func (l *Local) Record(ctx context.Context, id string) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.loadErr != nil {
		return Record{}, false, l.loadErr
	}
	var rec Record
	found := false
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketChunks).Get([]byte(id))
		if v == nil {
			return nil
		}
		var err error
		rec, err = decodeRecord(v)
		found = err == nil
		return err
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("store: read chunk: %w", err)
	}
	return rec, found, nil
}
