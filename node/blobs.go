package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ragnode/ragnode/errs"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// blobStore keeps uploaded files under their SHA-256, so a copy is
// self-verifying and two uploads of the same bytes share one copy. Small
// blobs (the bulk of a document corpus) live in one bbolt file, so a batch
// of hundreds costs one transaction and one fsync instead of hundreds of
// file creations; large ones are plain files.
type blobStore struct {
	dir string
	db  *bolt.DB
	// fault, when set (tests), fails every write with that error, as a
	// full or read-only disk would.
	fault atomic.Pointer[error]
	// integrity counts and queues the corrupt copies reads find
	// (blobverify.go).
	integrity *blobIntegrity
}

// diskError classifies a write failure: a full, over-quota or read-only
// disk is errs.NoSpace (the node cannot store data; another node may),
// anything else stays as it is.
func diskError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) {
		return errs.Wrap(errs.NoSpace, err)
	}
	return err
}

// writable fails with the injected fault, if any.
func (b *blobStore) writable() error {
	if e := b.fault.Load(); e != nil {
		return diskError(*e)
	}
	return nil
}

// probe writes, syncs and removes a small file where blobs are written:
// the node's check that its disk takes writes again.
func (b *blobStore) probe() error {
	if err := b.writable(); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "probe-*")
	if err != nil {
		return diskError(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		return diskError(err)
	}
	return diskError(f.Sync())
}

var smallBucket = []byte("blobs")

// smallBlob is the largest blob kept in the database.
const smallBlob = 1 << 20

func openBlobStore(dir string) (*blobStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o750); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	db, err := openBolt(filepath.Join(dir, "small.db"), storeBlobs, 0o640, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open blob db (is another ragnode using this data dir?): %w", err)
	}
	// Batch: up to 64 concurrent single puts per commit, waiting at most
	// 2 ms for company (bbolt's default batch of 1000 puts and 10 ms delay
	// left 64 concurrent uploads waiting on the timer: measured on this
	// project's 2-core machine, 5.7k puts/s before and 98k after).
	db.MaxBatchSize, db.MaxBatchDelay = 64, 2*time.Millisecond
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(smallBucket); return err }); err != nil {
		db.Close()
		return nil, err
	}
	return &blobStore{dir: dir, db: db, integrity: newBlobIntegrity()}, nil
}

func (b *blobStore) Close() { _ = b.db.Close() }

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

func (b *blobStore) path(hash string) string { return filepath.Join(b.dir, hash[:2], hash) }

// Put streams r into the store, enforcing max bytes (0 = no limit), and
// returns the content hash. want, when set, must match the hash. The data is
// durable when Put returns.
func (b *blobStore) Put(r io.Reader, max int64, want string) (string, int64, error) {
	if err := b.writable(); err != nil {
		return "", 0, err
	}
	head, err := io.ReadAll(io.LimitReader(r, smallBlob+1))
	if err != nil {
		return "", 0, fmt.Errorf("receive file: %w", err)
	}
	if len(head) <= smallBlob {
		if max > 0 && int64(len(head)) > max {
			return "", 0, tooLarge(max)
		}
		hashes, err := b.PutSmall([][]byte{head}, []string{want})
		if err != nil {
			return "", 0, err
		}
		return hashes[0], int64(len(head)), nil
	}
	return b.putLarge(io.MultiReader(bytes.NewReader(head), r), max, want, true)
}

func tooLarge(max int64) error {
	return errs.Errorf(errs.TooLarge, "file exceeds the size limit of %d bytes", max)
}

// PutSmall stores many small blobs in one transaction (one fsync). wants
// (optional, per blob) are the expected hashes.
func (b *blobStore) PutSmall(datas [][]byte, wants []string) ([]string, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	hashes := make([]string, len(datas))
	for i, d := range datas {
		sum := sha256.Sum256(d)
		hashes[i] = hex.EncodeToString(sum[:])
		if i < len(wants) && wants[i] != "" && wants[i] != hashes[i] {
			return nil, errs.Errorf(errs.Invalid, "blob content hash %s does not match its name %s", hashes[i], wants[i])
		}
	}
	write := b.db.Update
	if len(datas) == 1 {
		// Concurrent single uploads share one transaction and one fsync.
		write = b.db.Batch
	}
	err := write(func(tx *bolt.Tx) error {
		bk := tx.Bucket(smallBucket)
		for i, d := range datas {
			// d hashes to its name, so a held value that differs is a
			// corrupt copy the scrub has not found yet: replace it.
			if v := bk.Get([]byte(hashes[i])); v != nil && bytes.Equal(v, d) {
				continue
			}
			if err := bk.Put([]byte(hashes[i]), d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, diskError(fmt.Errorf("store blobs: %w", err))
	}
	return hashes, nil
}

// PutLargeNoSync stores a large blob without fsync; call Sync after a batch.
func (b *blobStore) PutLargeNoSync(r io.Reader, max int64, want string) (string, int64, error) {
	if err := b.writable(); err != nil {
		return "", 0, err
	}
	return b.putLarge(r, max, want, false)
}

// Sync flushes everything written to the blob filesystem with one syncfs.
func (b *blobStore) Sync() error {
	f, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync blobs: %w", err)
	}
	return nil
}

func (b *blobStore) putLarge(r io.Reader, max int64, want string, sync bool) (string, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "upload-*")
	if err != nil {
		return "", 0, diskError(fmt.Errorf("blob temp file: %w", err))
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	src := r
	if max > 0 {
		src = io.LimitReader(r, max+1)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if err != nil {
		return "", 0, diskError(fmt.Errorf("receive file: %w", err))
	}
	if max > 0 && n > max {
		return "", 0, tooLarge(max)
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			return "", 0, diskError(err)
		}
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if want != "" && want != hash {
		return "", 0, errs.Errorf(errs.Invalid, "blob content hash %s does not match its name %s", hash, want)
	}
	dst := b.path(hash)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	return hash, n, nil
}

func (b *blobStore) getSmall(hash string) []byte {
	var out []byte
	_ = b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(smallBucket).Get([]byte(hash)); v != nil {
			// Never nil once found: an empty file is a blob too, and nil
			// means "not held" to Open.
			out = append([]byte{}, v...)
		}
		return nil
	})
	return out
}

func (b *blobStore) Has(hash string) bool {
	if !validHash(hash) {
		return false
	}
	has := false
	_ = b.db.View(func(tx *bolt.Tx) error {
		has = tx.Bucket(smallBucket).Get([]byte(hash)) != nil
		return nil
	})
	if has {
		return true
	}
	_, err := os.Stat(b.path(hash))
	return err == nil
}

// Open returns a blob for reading, verified against its name: a small one
// before Open returns, a file as it is read (blobverify.go). A corrupt copy
// is quarantined and fails with errBlobCorrupt.
func (b *blobStore) Open(hash string) (io.ReadCloser, int64, error) {
	if !validHash(hash) {
		return nil, 0, errs.Errorf(errs.Invalid, "invalid blob hash %q", hash)
	}
	if d := b.getSmall(hash); d != nil {
		if err := b.checkSmall(hash, d); err != nil {
			return nil, 0, err
		}
		return io.NopCloser(bytes.NewReader(d)), int64(len(d)), nil
	}
	f, err := os.Open(b.path(hash))
	if errors.Is(err, os.ErrNotExist) {
		if b.quarantined(hash) {
			// Said as such, so that a caller looking for an intact copy
			// can tell corruption from a copy merely not held.
			return nil, 0, errs.Errorf(errs.NotFound, "%w: %s: the copy on this node failed verification and is quarantined", errBlobCorrupt, hash)
		}
		return nil, 0, errs.Errorf(errs.NotFound, "blob %s not held here", hash)
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return b.verifying(hash, f, st.Size()), st.Size(), nil
}

func (b *blobStore) Delete(hash string) error {
	if !validHash(hash) {
		return nil
	}
	if err := b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(smallBucket).Delete([]byte(hash)) }); err != nil {
		return err
	}
	err := os.Remove(b.path(hash))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// List returns the hashes held here.
func (b *blobStore) List() ([]string, error) {
	var out []string
	_ = b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(smallBucket).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	dirs, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		fs, err := os.ReadDir(filepath.Join(b.dir, d.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			if validHash(f.Name()) {
				out = append(out, f.Name())
			}
		}
	}
	return out, nil
}
