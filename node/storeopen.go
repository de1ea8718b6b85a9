package node

// Opening the node's bbolt files (raft.db, blobs/small.db, chunks.db) so
// that a damaged one is an error an operator can act on, not a crash.
//
// bbolt trusts its file: a page of noise makes it panic ("invalid page
// type", "page N already freed", a freelist that does not parse) or fault on
// an address past the mapping, and the process dies with a stack trace that
// names neither the file nor a way out. Worse, only the pages a read
// happens to touch are ever looked at, so a node may start and die later, on
// the first request that reaches the bad page. Here every open runs under
// recover (with faults turned into panics), and is followed by a walk of
// every bucket's keys: each branch and leaf page is read once, in order.
// bbolt's own tx.Check does that and more, but keeps a map entry per page
// (large on a store of millions of keys) and runs in a goroutine of its
// own, where a fault cannot be caught. Values are not read: on the blob
// store that would read every file.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/ragnode/ragnode/indexer/store"
)

// ErrDamagedStore matches (errors.Is) every DamagedStoreError.
var ErrDamagedStore = errors.New("damaged store")

// DamagedStoreError says which store file cannot be read and what the
// operator can do about it.
type DamagedStoreError struct {
	What   string // "raft log", "blob store", "chunk store"
	Path   string
	Cause  string // bbolt's complaint, on one line
	Remedy string
}

func (e *DamagedStoreError) Error() string {
	return fmt.Sprintf("%s %s is damaged (%s): %s", e.What, e.Path, e.Cause, e.Remedy)
}

// Is makes errors.Is(err, ErrDamagedStore) hold.
func (e *DamagedStoreError) Is(target error) bool { return target == ErrDamagedStore }

// The stores, as DamagedStoreError.What names them.
const (
	storeRaft   = "raft log"
	storeBlobs  = "blob store"
	storeChunks = "chunk store"
)

// remedy is what to do about a damaged store. Its Raft state is the only
// part of a node that a peer restores as it is; the blob and chunk stores
// are recorded in the ledger as held by this node, so a node that lost one
// must come back as a new member for the leader to copy them again.
func remedy(what, path string) string {
	if what == storeRaft {
		dir := filepath.Dir(path)
		return fmt.Sprintf("restore this node from a peer: stop it, remove its Raft state (%s and %s) and start it again with --join",
			path, filepath.Join(dir, "snapshots")+string(filepath.Separator))
	}
	return "stop this node, move its data directory aside and start it again on an empty one with --join: it rejoins as a new member " +
		"and the leader copies back what other nodes hold (on a single node: restore the data directory from a backup)"
}

// maxCause bounds the quoted cause: some of bbolt's panics print a whole
// freelist.
const maxCause = 200

func damaged(what, path, cause string) error {
	cause = strings.Join(strings.Fields(cause), " ")
	if len(cause) > maxCause {
		cause = cause[:maxCause] + "..."
	}
	return &DamagedStoreError{What: what, Path: path, Cause: cause, Remedy: remedy(what, path)}
}

// isDamage tells bbolt's errors about a file's contents from the others (a
// lock held by another process, permissions, a full disk).
func isDamage(err error) bool {
	for _, e := range []error{berrors.ErrInvalid, berrors.ErrVersionMismatch, berrors.ErrChecksum, berrors.ErrInvalidMapping} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// guardStore runs open, turning bbolt's panics, memory faults on its
// mapping and its errors about the file's contents into a
// DamagedStoreError; other errors pass through.
func guardStore(what, path string, open func() error) (err error) {
	// A fault on a damaged mapping (a page number past the end of the
	// file) otherwise kills the process outright, recover or not.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(what, path, fmt.Sprintf("bbolt: %v", r))
		}
	}()
	if err := open(); err != nil {
		if isDamage(err) {
			return damaged(what, path, "bbolt: "+err.Error())
		}
		return err
	}
	return nil
}

// openBolt opens a bbolt file and reads its whole tree, so that damage
// shows now, as a DamagedStoreError, and not as a panic on some later
// read.
func openBolt(path, what string, mode os.FileMode, opts *bolt.Options) (*bolt.DB, error) {
	var db *bolt.DB
	err := guardStore(what, path, func() error {
		var err error
		if db, err = bolt.Open(path, mode, opts); err != nil {
			return err
		}
		if err := walkBolt(db); err != nil {
			return damaged(what, path, err.Error())
		}
		return nil
	})
	if err != nil && db != nil {
		// In a goroutine: a panic inside bbolt may have left one of its
		// locks held, and Close would then wait forever.
		go db.Close()
		db = nil
	}
	return db, err
}

// checkBoltFile is openBolt for a file another library opens itself: it
// checks the file, if there is one, and closes it again.
func checkBoltFile(path, what string, opts *bolt.Options) error {
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		return nil // nothing to check: the owner creates it, or reports why it cannot
	}
	db, err := openBolt(path, what, 0o600, opts)
	if err != nil {
		return err
	}
	return db.Close()
}

// walkBolt reads every key of every bucket, nested ones included, and
// checks that each bucket's keys come in strictly ascending order, as a
// sound B+tree gives them.
func walkBolt(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return walkBucket(b, fmt.Sprintf("%q", name))
		})
	})
}

func walkBucket(b *bolt.Bucket, name string) error {
	var prev []byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("bucket %s: key %x after %x: keys out of order", name, k, prev)
		}
		prev = k
		if v != nil {
			continue
		}
		// nil marks a nested bucket (an empty value is not nil).
		if child := b.Bucket(k); child != nil {
			if err := walkBucket(child, fmt.Sprintf("%s/%q", name, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// openRaftLog opens raft.db. raft-boltdb opens the file itself, so it is
// checked first, and raft-boltdb's own open (which creates its buckets)
// runs under the same guard.
func openRaftLog(path string, opts *bolt.Options) (*raftboltdb.BoltStore, error) {
	if err := checkBoltFile(path, storeRaft, opts); err != nil {
		return nil, err
	}
	var st *raftboltdb.BoltStore
	err := guardStore(storeRaft, path, func() error {
		var err error
		st, err = raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: opts})
		return err
	})
	return st, err
}

// openChunkStore opens the local chunk store, checked as openRaftLog does.
func openChunkStore(path string) (*store.Local, error) {
	if err := checkBoltFile(path, storeChunks, &bolt.Options{Timeout: 2 * time.Second}); err != nil {
		return nil, err
	}
	var st *store.Local
	err := guardStore(storeChunks, path, func() error {
		var err error
		st, err = store.OpenLocal(path)
		return err
	})
	return st, err
}
