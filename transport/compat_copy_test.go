package transport

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
)

// CopyFile copies the fake's file record and chunks, as the node does
// from its stores.
func (f *fakeCompat) CopyFile(ctx context.Context, srcPartition, srcFileID, partition, fileID string, meta map[string]any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.files[[2]string{srcPartition, srcFileID}]
	if !ok {
		return errs.Errorf(errs.NotFound, "no source")
	}
	if _, exists := f.files[[2]string{partition, fileID}]; exists {
		return fmt.Errorf("copy: %w", fsm.ErrFileExists)
	}
	cp := src
	cp.Partition, cp.FileID = partition, fileID
	cp.Metadata = maps.Clone(src.Metadata)
	if cp.Metadata == nil {
		cp.Metadata = map[string]any{}
	}
	maps.Copy(cp.Metadata, meta)
	f.files[[2]string{partition, fileID}] = cp
	if _, ok := f.created[partition]; !ok {
		f.created[partition] = fakePartitionCreated
	}
	return nil
}

func formBody(kv ...string) *strings.Reader {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return strings.NewReader(v.Encode())
}

func TestCompatCopyFile(t *testing.T) {
	e := newCompatEnv(t)
	e.add("src", "a", `{"author":"ana"}`)
	const form = "application/x-www-form-urlencoded"
	copyPath := "/indexer/partition/dst/file/b/copy"
	code, body := e.do("POST", copyPath, form, formBody("source_partition", "src", "source_file_id", "a", "metadata", `{"tag":"x"}`))
	if code != http.StatusCreated || body != `{"message":"File copied successfully."}` {
		t.Fatalf("copy = %d %s", code, body)
	}
	fv, err := e.fake.File(context.Background(), "dst", "b")
	if err != nil || fv.Metadata["author"] != "ana" || fv.Metadata["tag"] != "x" {
		t.Fatalf("copied file %+v %v", fv, err)
	}
	for _, c := range []struct {
		body       *strings.Reader
		path       string
		code       int
		wantDetail string
	}{
		{formBody("source_partition", "src", "source_file_id", "a"), copyPath, 409, `{"detail":"File 'b' already exists in partition dst"}`},
		{formBody("source_partition", "src", "source_file_id", "zz"), "/indexer/partition/dst/file/c/copy", 404, `{"detail":"File 'zz' not found in partition 'src'."}`},
		{formBody("source_partition", "src", "source_file_id", "x/y"), "/indexer/partition/dst/file/c/copy", 400, `{"detail":"File ID contains forbidden characters: /"}`},
		{formBody("source_partition", "src", "source_file_id", "a", "metadata", "[1]"), "/indexer/partition/dst/file/c/copy", 400, `{"detail":"Metadata must be a JSON object."}`},
		{formBody("source_partition", "src"), "/indexer/partition/dst/file/c/copy", 422,
			`{"detail":[{"type":"missing","loc":["body","source_file_id"],"msg":"Field required","input":null}]}`},
		{formBody(), "/indexer/partition/dst/file/c/copy", 422,
			`{"detail":[{"type":"missing","loc":["body","source_partition"],"msg":"Field required","input":null},{"type":"missing","loc":["body","source_file_id"],"msg":"Field required","input":null}]}`},
	} {
		code, body := e.do("POST", c.path, form, c.body)
		if code != c.code || body != c.wantDetail {
			t.Errorf("POST %s = %d %s; want %d %s", c.path, code, body, c.code, c.wantDetail)
		}
	}
}
