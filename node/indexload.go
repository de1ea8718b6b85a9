package node

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ragnode/ragnode/indexer/store"
)

// Join first, load later. The local chunk store keeps its vectors and BM25
// index in memory, rebuilt from chunks.db at start: 523 MB of chunks took
// 77 s, and a node that loaded before starting Raft, Serf and HTTP was
// absent from its cluster all that time (no status, no heartbeats, its
// tasks requeued). So the file is opened at start (the lock, the buckets)
// and the index is built in the background once the node is in its
// cluster. Meanwhile the node serves everything that needs no index, its
// own search answers 503 (store.ErrIndexLoading), it gossips tagIndex =
// "loading" so peers leave it out of their search fan-out, and the store
// makes every other chunk call wait for the load. The load walks the file
// first (storeopen.go), under the same guard as the other stores, so a
// damaged chunks.db is reported with its remedy and then refused, not
// read.

// tagIndex is gossiped while the chunk index is not ready: "loading", or
// "failed" after a load that could not finish.
const tagIndex = "idx"

// indexLoadHook, when set, runs before the load starts: tests delay the
// load with it. It gets the node's stop channel and must return when that
// closes.
var indexLoadHook atomic.Pointer[func(stop <-chan struct{})]

// openChunkStoreDeferred opens chunks.db without building its index (the
// open itself is guarded like openChunkStore's).
func openChunkStoreDeferred(path string) (*store.Local, error) {
	var st *store.Local
	err := guardStore(storeChunks, path, func() error {
		var err error
		st, err = store.OpenLocalDeferred(path)
		return err
	})
	return st, err
}

// localIndex is this node's deferred chunk store, nil when it has none
// (milvus) or it was opened loaded.
func (n *Node) localIndex() *store.Local {
	if l, ok := n.store.(*store.Local); ok && !l.Loaded() {
		return l
	}
	return nil
}

// indexTag is the tagIndex value Serf starts with.
func (n *Node) indexTag() string {
	if n.localIndex() != nil {
		return "loading"
	}
	return ""
}

// startIndexLoad builds the chunk index in the background; Start calls it
// once Raft, Serf and HTTP are up.
func (n *Node) startIndexLoad() {
	l := n.localIndex()
	if l == nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if h := indexLoadHook.Load(); h != nil {
			(*h)(n.stopCh)
		}
		if n.stopping() {
			return
		}
		t0 := time.Now()
		path := n.chunkStorePath()
		err := guardStore(storeChunks, path, func() error {
			return l.Load(walkBolt)
		})
		if err != nil {
			if n.stopping() {
				return // Close interrupted it
			}
			if !errors.Is(err, ErrDamagedStore) {
				err = damaged(storeChunks, path, err.Error())
			}
			l.Fail(err)
			n.log.Error("chunk index not loaded: this node answers no searches and keeps no chunk copies", "error", err)
			n.setTag(tagIndex, "failed")
			return
		}
		done, _ := l.LoadProgress()
		n.log.Info("chunk index loaded", "chunks", done, "took", time.Since(t0).Round(time.Millisecond))
		n.setTag(tagIndex, "")
	}()
}

func (n *Node) chunkStorePath() string { return filepath.Join(n.cfg.DataDir, "chunks.db") }
