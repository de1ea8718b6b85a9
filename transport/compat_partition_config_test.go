package transport

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/errs"
)

// The fake's partition records: a created partition is an entry of
// f.created with no files.

const fakePartitionCreated = 1_750_000_000 * 1e9

func (f *fakeCompat) CreatePartition(ctx context.Context, partition string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.created[partition]; ok {
		return errs.Errorf(errs.Conflict, "partition %s exists", partition)
	}
	f.created[partition] = fakePartitionCreated
	return nil
}

func (f *fakeCompat) UpdatePartition(ctx context.Context, partition string, cfg map[string]any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.created[partition]; !ok {
		return errs.Errorf(errs.NotFound, "partition %s not found", partition)
	}
	m := f.pconfig[partition]
	if m == nil {
		m = map[string]any{}
		f.pconfig[partition] = m
	}
	for k, v := range cfg {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return nil
}

func TestCompatPartitionCreateConfigDelete(t *testing.T) {
	e := newCompatEnv(t)
	e.expect("POST", "/partition/docs", http.StatusCreated, "")
	e.expect("POST", "/partition/docs", http.StatusConflict, `{"detail":"Partition 'docs' already exists."}`)
	// The empty partition is listed, with its creation time and no files.
	e.expect("GET", "/partition/", http.StatusOK,
		`{"partitions":[{"created_at":"2025-06-15T15:06:40+00:00","document_count":0,"file_count":0,"partition":"docs"}]}`)
	e.expect("GET", "/partition/docs", http.StatusOK, `{"files":[]}`)
	defaults := map[string]any{"name": "docs", "description": "", "embedder": "default", "indexation_preset": "default",
		"retrieval_preset": "default", "indexation_pipeline": map[string]any{}, "retrieval_pipeline": map[string]any{},
		"dimension": 0, "created_at": "2025-06-15T15:06:40", "document_count": 0, "chat_history_depth": 0, "chat_llm": nil}
	jsonEq(t, e.expect("GET", "/partition/docs/config", http.StatusOK, ""), defaults)
	e.expect("GET", "/partition/nope/config", http.StatusNotFound, `{"detail":"Partition 'nope' not found."}`)

	code, body := e.do("PATCH", "/partition/docs", "application/json",
		strings.NewReader(`{"description":"Team docs","embedder":"  bge  ","chat_history_depth":4,"chat_llm":"m"}`))
	want := map[string]any{}
	for k, v := range defaults {
		want[k] = v
	}
	want["description"], want["embedder"], want["chat_history_depth"], want["chat_llm"] = "Team docs", "bge", 4, "m"
	if code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", code, body)
	}
	jsonEq(t, body, want)
	// chat_llm may be cleared with null; the rest stays.
	code, body = e.do("PATCH", "/partition/docs", "application/json", strings.NewReader(`{"chat_llm":null}`))
	want["chat_llm"] = nil
	if code != http.StatusOK {
		t.Fatalf("PATCH null = %d %s", code, body)
	}
	jsonEq(t, body, want)
	jsonEq(t, e.expect("GET", "/partition/docs/config", http.StatusOK, ""), want)

	code, body = e.do("PATCH", "/partition/nope", "application/json", strings.NewReader(`{"description":"x"}`))
	if code != http.StatusNotFound || body != `{"detail":"Partition 'nope' not found."}` {
		t.Fatalf("PATCH missing = %d %s", code, body)
	}

	e.expect("DELETE", "/partition/docs", http.StatusNoContent, "")
	e.expect("GET", "/partition/", http.StatusOK, `{"partitions":[]}`)
	e.expect("DELETE", "/partition/docs", http.StatusNotFound, `{"detail":"Partition 'docs' not found."}`)
}

// PATCH bodies are validated as pydantic validates UpdatePartitionRequest.
func TestCompatPartitionPatchValidation(t *testing.T) {
	e := newCompatEnv(t)
	e.expect("POST", "/partition/p", http.StatusCreated, "")
	cases := []struct{ body, want string }{
		{`{}`, `{"detail":[{"type":"value_error","loc":["body"],"msg":"Value error, at least one field must be provided","input":{},"ctx":{"error":{}}}]}`},
		{`{"colour":"red"}`, `{"detail":[{"type":"extra_forbidden","loc":["body","colour"],"msg":"Extra inputs are not permitted","input":"red"}]}`},
		{`{"description":null}`, `{"detail":[{"type":"value_error","loc":["body","description"],"msg":"Value error, description cannot be null","input":null,"ctx":{"error":{}}}]}`},
		{`{"embedder":"  "}`, `{"detail":[{"type":"value_error","loc":["body","embedder"],"msg":"Value error, name must be non-empty","input":"  ","ctx":{"error":{}}}]}`},
		{`{"chat_history_depth":-1}`, `{"detail":[{"type":"greater_than_equal","loc":["body","chat_history_depth"],"msg":"Input should be greater than or equal to 0","input":-1,"ctx":{"ge":0}}]}`},
		{`{"chat_history_depth":"x"}`, `{"detail":[{"type":"int_type","loc":["body","chat_history_depth"],"msg":"Input should be a valid integer","input":"x"}]}`},
		{`{"description":3}`, `{"detail":[{"type":"string_type","loc":["body","description"],"msg":"Input should be a valid string","input":3}]}`},
		{`[1]`, `{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":[1]}]}`},
	}
	for _, c := range cases {
		code, body := e.do("PATCH", "/partition/p", "application/json", strings.NewReader(c.body))
		if code != http.StatusUnprocessableEntity || body != c.want {
			t.Errorf("PATCH %s = %d %s\nwant 422 %s", c.body, code, body, c.want)
		}
	}
	code, body := e.do("PATCH", "/partition/p", "application/json", strings.NewReader(`{`))
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"type":"json_invalid"`) {
		t.Errorf("PATCH bad JSON = %d %s", code, body)
	}
	// Nothing invalid was stored.
	if len(e.fake.pconfig["p"]) != 0 {
		t.Fatalf("stored %v", e.fake.pconfig["p"])
	}
}
