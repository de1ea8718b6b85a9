package node

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ragnode/ragnode/transport"
)

// blobStore keeps uploaded files under their SHA-256, so a copy is
// self-verifying and two uploads of the same bytes share one file.
type blobStore struct {
	dir string
}

func openBlobStore(dir string) (*blobStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o750); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	return &blobStore{dir: dir}, nil
}

func (b *blobStore) Close() {}

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
// on disk (fsync) when Put returns.
func (b *blobStore) Put(r io.Reader, max int64, want string) (string, int64, error) {
	return b.put(r, max, want, true)
}

// PutNoSync is Put without the fsync: the caller stores many blobs and then
// calls Sync once.
func (b *blobStore) PutNoSync(r io.Reader, max int64, want string) (string, int64, error) {
	return b.put(r, max, want, false)
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

func (b *blobStore) put(r io.Reader, max int64, want string, sync bool) (string, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "upload-*")
	if err != nil {
		return "", 0, fmt.Errorf("blob temp file: %w", err)
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
		return "", 0, fmt.Errorf("receive file: %w", err)
	}
	if max > 0 && n > max {
		return "", 0, transport.Errorf(http.StatusRequestEntityTooLarge, "file exceeds the size limit of %d bytes", max)
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			return "", 0, err
		}
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if want != "" && want != hash {
		return "", 0, transport.Errorf(http.StatusBadRequest, "blob content hash %s does not match its name %s", hash, want)
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

func (b *blobStore) Has(hash string) bool {
	if !validHash(hash) {
		return false
	}
	_, err := os.Stat(b.path(hash))
	return err == nil
}

func (b *blobStore) Open(hash string) (io.ReadCloser, int64, error) {
	if !validHash(hash) {
		return nil, 0, transport.Errorf(http.StatusBadRequest, "invalid blob hash %q", hash)
	}
	f, err := os.Open(b.path(hash))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, transport.Errorf(http.StatusNotFound, "blob %s not held here", hash)
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

func (b *blobStore) Delete(hash string) error {
	if !validHash(hash) {
		return nil
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
