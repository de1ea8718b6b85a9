package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ragnode/ragnode/errs"
)

// FuzzCompatMetadata: any metadata string is either a JSON object (which
// encodes back to JSON) or refused as invalid, never anything else.
func FuzzCompatMetadata(f *testing.F) {
	for _, s := range []string{"", " ", "{}", `{"a":1,"b":[true,null]}`, "[]", "null", `"x"`, "{", `{"a":{"b":{"c":{}}}}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		m, err := parseMetadata(raw)
		if err != nil {
			if !errors.Is(err, errs.Invalid) {
				t.Fatalf("metadata %q: error of another kind: %v", raw, err)
			}
			return
		}
		if m == nil {
			t.Fatalf("metadata %q: nil map without an error", raw)
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("metadata %q: accepted but does not encode: %v", raw, err)
		}
	})
}

// fuzzBoundary is the boundary every fuzzed upload body is sent with.
const fuzzBoundary = "ragnodefuzz"

// FuzzCompatUpload sends any bytes as the multipart body of a RAGondin
// upload: the answer is a success or one of the refusals the API
// documents, never a 5xx or a panic, and a success hands Submit the
// file part's name and a metadata object.
func FuzzCompatUpload(f *testing.F) {
	seed := func(parts ...part) {
		var buf bytes.Buffer
		buf.WriteString("")
		for _, p := range parts {
			buf.WriteString("--" + fuzzBoundary + "\r\n")
			if p.filename != "" {
				buf.WriteString(`Content-Disposition: form-data; name="` + p.name + `"; filename="` + p.filename + "\"\r\n\r\n")
			} else {
				buf.WriteString(`Content-Disposition: form-data; name="` + p.name + "\"\r\n\r\n")
			}
			buf.WriteString(p.body + "\r\n")
		}
		buf.WriteString("--" + fuzzBoundary + "--\r\n")
		f.Add(buf.Bytes())
	}
	seed(part{name: "file", filename: "a.txt", body: "hello"})
	seed(part{name: "metadata", body: `{"author":"ana"}`}, part{name: "file", filename: "a.md", body: "# t"})
	seed(part{name: "file", filename: "a.txt", body: "x"}, part{name: "metadata", body: `[1]`})
	seed(part{name: "metadata", body: `{`})
	seed(part{name: "workspace_ids", body: "1,2"}, part{name: "file", filename: "b.exe", body: "MZ"})
	f.Add([]byte("--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"file\"\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fake := newFakeCompat()
		s := NewServer(stubBackend{}, compatToken)
		s.MountCompat(fake)
		req := httptest.NewRequest(http.MethodPost, "/indexer/partition/p/file/f1", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+compatToken)
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+fuzzBoundary)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusCreated:
			var out map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out["task_status_url"] == "" {
				t.Fatalf("201 without a task URL: %s", rec.Body)
			}
			for id := range fake.tasks {
				r, _ := fake.upload(id)
				if r.Partition != "p" || r.FileID != "f1" {
					t.Fatalf("Submit got %+v", r)
				}
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
			var d map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil || d["detail"] == nil {
				t.Fatalf("%d without a FastAPI detail: %s", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("upload answered %d: %s", rec.Code, rec.Body)
		}
	})
}
