package node

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/fsm"
)

func chunkTexts(t *testing.T, cc compatClient, partition, fileID string) []string {
	t.Helper()
	code, body := cc.do("GET", "/partition/"+partition+"/chunks?include_embedding=false&file_id="+fileID, nil, "")
	var lc struct {
		Chunks []struct {
			Content  string         `json:"content"`
			Metadata map[string]any `json:"metadata"`
		} `json:"chunks"`
	}
	if json.Unmarshal([]byte(body), &lc); code != 200 {
		t.Fatalf("chunks of %s/%s = %d %s", partition, fileID, code, body)
	}
	var out []string
	for _, c := range lc.Chunks {
		if c.Metadata["file_id"] != fileID || c.Metadata["partition"] != partition {
			t.Fatalf("chunk of %s/%s has metadata %v", partition, fileID, c.Metadata)
		}
		out = append(out, c.Content)
	}
	return out
}

// A copy serves the source's chunks under its own partition and ID
// without running a task (nothing is embedded again); PATCH with a
// "partition" key moves a file the same way and removes the source.
func TestCompatCopyAndMoveFile(t *testing.T) {
	c, ns := indexCluster(t, nil)
	cc := compatClient{t: t, base: "http://" + followerOf(t, c, ns).HTTPAddr()}
	text := "# Lease\n\nThe tenant pays rent monthly.\n\n## Repairs\n\nThe landlord repairs the roof."
	code, body := cc.upload("POST", "legal", "lease", "lease.md", text, `{"author":"ana"}`)
	m := taskURL.FindStringSubmatch(body)
	if code != 201 || m == nil {
		t.Fatalf("upload = %d %s", code, body)
	}
	cc.waitState(m[2], "COMPLETED")
	src := chunkTexts(t, cc, "legal", "lease")
	form := url.Values{"source_partition": {"legal"}, "source_file_id": {"lease"}, "metadata": {`{"copy":true}`}}
	code, body = cc.do("POST", "/indexer/partition/archive/file/lease-2025/copy", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	if code != 201 || body != `{"message":"File copied successfully."}` {
		t.Fatalf("copy = %d %s", code, body)
	}
	if got := chunkTexts(t, cc, "archive", "lease-2025"); strings.Join(got, "|") != strings.Join(src, "|") || len(got) == 0 {
		t.Fatalf("copy's chunks %q, source's %q", got, src)
	}
	var copyTask *fsm.Task
	var f *fsm.File
	ns[0].fsm.View(func(s *fsm.State) {
		f = s.Files[fsm.FileKey("archive", "lease-2025")]
		if f != nil {
			tc := *s.Tasks[f.LiveTask]
			copyTask = &tc
		}
	})
	if f == nil || copyTask.LastNode != "" || copyTask.State != fsm.Completed || f.Metadata["author"] != "ana" || f.Metadata["copy"] != true {
		t.Fatalf("copy in the ledger: %+v task %+v (a task that ran has a LastNode)", f, copyTask)
	}
	code, body = cc.do("POST", "/indexer/partition/archive/file/lease-2025/copy", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	if code != 409 || body != `{"detail":"File 'lease-2025' already exists in partition archive"}` {
		t.Fatalf("copy over existing = %d %s", code, body)
	}
	// The copy is searchable in its partition.
	code, body = cc.do("GET", "/search/partition/archive?text=tenant+rent&top_k=3", nil, "")
	if code != 200 || !strings.Contains(body, `"file_id":"lease-2025"`) {
		t.Fatalf("search in the copy's partition = %d %s", code, body)
	}

	// Move: PATCH with a partition key.
	patch := url.Values{"metadata": {`{"partition":"moved","reviewed":"yes"}`}}
	code, body = cc.do("PATCH", "/indexer/partition/legal/file/lease", strings.NewReader(patch.Encode()), "application/x-www-form-urlencoded")
	if code != 200 || body != `{"message":"Metadata for file 'lease' successfully updated."}` {
		t.Fatalf("move = %d %s", code, body)
	}
	if code, _ := cc.do("GET", "/partition/legal/file/lease", nil, ""); code != 404 {
		t.Fatalf("source after move = %d", code)
	}
	if got := chunkTexts(t, cc, "moved", "lease"); strings.Join(got, "|") != strings.Join(src, "|") {
		t.Fatalf("moved chunks %q", got)
	}
	code, body = cc.do("GET", "/partition/moved/file/lease", nil, "")
	if code != 200 || !strings.Contains(body, `"reviewed":"yes"`) || strings.Contains(body, `"partition":"legal"`) {
		t.Fatalf("moved file = %d %s", code, body)
	}
	// Moving onto an existing file is refused and changes nothing.
	patch = url.Values{"metadata": {`{"partition":"archive"}`}}
	cc.do("POST", "/indexer/partition/archive/file/lease/copy", strings.NewReader(url.Values{"source_partition": {"moved"}, "source_file_id": {"lease"}}.Encode()), "application/x-www-form-urlencoded")
	code, body = cc.do("PATCH", "/indexer/partition/moved/file/lease", strings.NewReader(patch.Encode()), "application/x-www-form-urlencoded")
	if code != 409 || body != `{"detail":"File 'lease' already exists in partition archive"}` {
		t.Fatalf("move onto existing = %d %s", code, body)
	}
	if code, _ := cc.do("GET", "/partition/moved/file/lease", nil, ""); code != 200 {
		t.Fatalf("refused move removed the source: %d", code)
	}
}
