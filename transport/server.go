package transport

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer/store"
)

// Backend is what a node offers the API. The node package implements it;
// transport only decodes requests and encodes answers.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Members(ctx context.Context) ([]Member, error)
	// Apply proposes a command, forwarding to the leader when needed.
	Apply(ctx context.Context, c fsm.Command) (fsm.Result, error)
	RaftStats() RaftStats
	// Leave departs the cluster for good and stops the node.
	Leave(ctx context.Context) error
	// RemoveServer removes a server from Raft (leader only).
	RemoveServer(ctx context.Context, id string) error
	Submit(ctx context.Context, req SubmitRequest, body io.Reader) (TaskView, error)
	Tasks(ctx context.Context, state, partition string) ([]TaskView, error)
	Task(ctx context.Context, id string) (TaskView, error)
	Cancel(ctx context.Context, id string) error
	Drain(ctx context.Context, req DrainRequest) error
	// OpenBlob streams a blob held on this node.
	OpenBlob(hash string) (io.ReadCloser, int64, error)
	// PutBlob stores a replica pushed by another node.
	PutBlob(ctx context.Context, hash string, body io.Reader) error
	// SubmitBatch stores many files and records their tasks at once.
	SubmitBatch(ctx context.Context, partition string, meta map[string]any, body io.Reader) ([]BatchResult, error)
	// PutBlobs stores many replicas pushed at once.
	PutBlobs(ctx context.Context, body io.Reader) error
	// ReplicateBlob pushes a held blob to more nodes until want holders.
	ReplicateBlob(ctx context.Context, hash string, want int) error
	Search(ctx context.Context, req SearchRequest) ([]Hit, error)
	LocalSearch(ctx context.Context, q store.Query) ([]store.Hit, error)
	PutChunks(ctx context.Context, w ChunkWrite) error
	LocalChunkIDs(ctx context.Context, partition, fileID string) ([]string, error)
	// LocalChunkRecords reads this node's own store: the chunk with that ID
	// when id is set (none or one record), else the file's chunks by index.
	LocalChunkRecords(ctx context.Context, id, partition, fileID string) ([]store.Record, error)
	ChunkMetadata(ctx context.Context, m ChunkMetadata) error
	ChunkDelete(ctx context.Context, d ChunkDelete) error
	RepairChunks(ctx context.Context, r ChunkRepair) error
}

// SubmitRequest describes one uploaded file.
type SubmitRequest struct {
	Partition  string
	FileID     string
	FileName   string
	Metadata   map[string]any
	Mode       string
	SharedPath string
	Size       int64
	// CallbackURL and CallbackToken are openrag's upload fields: POST to
	// the URL, with the token as bearer, when the task ends.
	CallbackURL   string
	CallbackToken string
}

// Server serves the /v1 API over a Backend. Extra handlers (search, the
// RAGondin-compatible API) are mounted with Handle.
type Server struct {
	mux   *http.ServeMux
	b     Backend
	token string
	// Set by MountCompat and SetCORSOrigins (compat_http.go).
	compat bool
	public map[string]bool // paths answered without the token (GET)
	cors   []string
	access consoleAccess // console.go: /ui/ and an opened /metrics skip the token
	auth   *Auth         // auth.go: two planes and role tokens, once SetAuth is called
	// upload_limits.go: idle cut and per-token cap of the upload routes.
	uploads uploadLimits
}

// NewServer builds the API; token "" disables authentication.
func NewServer(b Backend, token string) *Server {
	s := &Server{mux: http.NewServeMux(), b: b, token: token}
	s.routes()
	return s
}

// Handle mounts an extra handler on the same auth-checked mux.
func (s *Server) Handle(pattern string, h http.Handler) { s.handle(pattern, h) }

// ServeHTTP checks the bearer token with a constant-time compare, then routes.
// CORS preflights and the public compat paths come before the check.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.applyCORS(w, r) {
		return
	}
	w = s.fastAPIEdges(w, r) // compat_notfound.go
	w = s.v1Edges(w, r)      // v1_edges.go
	if s.auth != nil {
		if r = s.authorize(w, r); r != nil {
			s.mux.ServeHTTP(w, r)
		}
		return
	}
	if s.token != "" && !s.isPublic(r) && !s.consoleOpen(r) && !CheckToken(r, s.token) {
		s.writeUnauthorized(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// CheckToken reports whether r carries the bearer token.
func CheckToken(r *http.Request, token string) bool {
	// The scheme is case-insensitive (RFC 7235 section 2.1; RFC 6750
	// clients send "bearer" too).
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h[len(scheme):]), []byte(token)) == 1
}

type localStatusKey struct{}

// LocalStatusRequested reports whether a status request asked for the
// answering node's own view (?local=1), which must not be forwarded.
func LocalStatusRequested(ctx context.Context) bool {
	return ctx.Value(localStatusKey{}) != nil
}

func (s *Server) routes() {
	s.handleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.URL.Query().Get("local") == "1" {
			ctx = context.WithValue(ctx, localStatusKey{}, true)
		}
		st, err := s.b.Status(ctx)
		reply(w, st, err)
	})
	s.handleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) {
		m, err := s.b.Members(r.Context())
		reply(w, m, err)
	})
	s.handleFunc("POST /v1/leave", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"result": "left"}, s.b.Leave(r.Context()))
	})
	s.handleFunc("GET /v1/internal/raft-stats", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, s.b.RaftStats())
	})
	s.handleFunc("POST /v1/internal/apply", func(w http.ResponseWriter, r *http.Request) {
		var req ApplyRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			WriteError(w, invalidf("decode command: %v", err))
			return
		}
		res, err := s.b.Apply(r.Context(), req.Command)
		reply(w, res, err)
	})
	s.handleFunc("POST /v1/internal/remove-server", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		reply(w, map[string]string{"removed": id}, s.b.RemoveServer(r.Context(), id))
	})
	s.handleFunc("POST /v1/files", func(w http.ResponseWriter, r *http.Request) {
		release, err := s.beginUpload(w, r)
		if err != nil {
			WriteError(w, err)
			return
		}
		defer release()
		q := r.URL.Query()
		req := SubmitRequest{
			Partition:  q.Get("partition"),
			FileID:     q.Get("file_id"),
			FileName:   q.Get("filename"),
			Mode:       q.Get("mode"),
			SharedPath: q.Get("shared_path"),
			Size:       r.ContentLength,
		}
		if m := q.Get("metadata"); m != "" {
			if err := json.Unmarshal([]byte(m), &req.Metadata); err != nil {
				WriteError(w, invalidf("metadata must be a JSON object of strings: %v", err))
				return
			}
		}
		tv, err := s.b.Submit(r.Context(), req, r.Body)
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusCreated, tv)
	})
	s.handleFunc("POST /v1/files/batch", func(w http.ResponseWriter, r *http.Request) {
		release, err := s.beginUpload(w, r)
		if err != nil {
			WriteError(w, err)
			return
		}
		defer release()
		var meta map[string]any
		if m := r.URL.Query().Get("metadata"); m != "" {
			if err := json.Unmarshal([]byte(m), &meta); err != nil {
				WriteError(w, invalidf("metadata must be a JSON object: %v", err))
				return
			}
		}
		res, err := s.b.SubmitBatch(r.Context(), r.URL.Query().Get("partition"), meta, r.Body)
		if err != nil {
			WriteError(w, err)
			return
		}
		for i := range res {
			if res[i].Err != nil {
				res[i].Code = StatusOf(res[i].Err)
			}
		}
		WriteJSON(w, http.StatusCreated, res)
	})
	s.handleFunc("PUT /v1/blobs", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"stored": "batch"}, s.b.PutBlobs(r.Context(), r.Body))
	})
	s.handleFunc("GET /v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		partition := r.URL.Query().Get("partition")
		if own := ScopeOf(r.Context()); own != "" {
			partition = own // the route's scope refused any other
		}
		ts, err := s.b.Tasks(r.Context(), r.URL.Query().Get("state"), partition)
		reply(w, ts, err)
	})
	s.handleFunc("GET /v1/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		t, err := s.b.Task(r.Context(), r.PathValue("id"))
		reply(w, t, err)
	})
	s.handleFunc("POST /v1/tasks/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"cancelled": r.PathValue("id")}, s.b.Cancel(r.Context(), r.PathValue("id")))
	})
	s.handleFunc("POST /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		var req DrainRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			WriteError(w, invalidf("decode drain request: %v", err))
			return
		}
		reply(w, req, s.b.Drain(r.Context(), req))
	})
	s.handleFunc("GET /v1/blobs/{hash}", func(w http.ResponseWriter, r *http.Request) {
		rc, size, err := s.b.OpenBlob(r.PathValue("hash"))
		if err != nil {
			WriteError(w, err)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, _ = io.Copy(w, rc)
	})
	s.handleFunc("POST /v1/internal/replicate/{hash}", func(w http.ResponseWriter, r *http.Request) {
		want := 0
		fmt.Sscanf(r.URL.Query().Get("want"), "%d", &want)
		reply(w, map[string]string{"replicated": r.PathValue("hash")}, s.b.ReplicateBlob(r.Context(), r.PathValue("hash"), want))
	})
	s.handleFunc("POST /v1/search", func(w http.ResponseWriter, r *http.Request) {
		var req SearchRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			WriteError(w, invalidf("decode search request: %v", err))
			return
		}
		hits, err := s.b.Search(r.Context(), req)
		if hits == nil {
			hits = []Hit{}
		}
		reply(w, hits, err)
	})
	s.handleFunc("POST /v1/internal/search-local", func(w http.ResponseWriter, r *http.Request) {
		var q WireQuery
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			WriteError(w, invalidf("decode query: %v", err))
			return
		}
		hits, err := s.b.LocalSearch(r.Context(), QueryFromWire(q))
		reply(w, HitsToWire(hits), err)
	})
	s.handleFunc("POST /v1/internal/chunks", func(w http.ResponseWriter, r *http.Request) {
		var cw ChunkWrite
		if err := json.NewDecoder(r.Body).Decode(&cw); err != nil {
			WriteError(w, invalidf("decode chunks: %v", err))
			return
		}
		reply(w, map[string]int{"written": len(cw.Records)}, s.b.PutChunks(r.Context(), cw))
	})
	s.handleFunc("POST /v1/internal/chunks/metadata", func(w http.ResponseWriter, r *http.Request) {
		var m ChunkMetadata
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			WriteError(w, invalidf("decode metadata: %v", err))
			return
		}
		reply(w, map[string]string{"updated": m.FileID}, s.b.ChunkMetadata(r.Context(), m))
	})
	s.handleFunc("POST /v1/internal/chunks/delete", func(w http.ResponseWriter, r *http.Request) {
		var d ChunkDelete
		if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
			WriteError(w, invalidf("decode delete: %v", err))
			return
		}
		reply(w, map[string]string{"deleted": d.Partition + "/" + d.FileID}, s.b.ChunkDelete(r.Context(), d))
	})
	s.handleFunc("POST /v1/internal/chunks/repair", func(w http.ResponseWriter, r *http.Request) {
		var cr ChunkRepair
		if err := json.NewDecoder(r.Body).Decode(&cr); err != nil {
			WriteError(w, invalidf("decode repair: %v", err))
			return
		}
		reply(w, map[string]string{"repaired": cr.FileID}, s.b.RepairChunks(r.Context(), cr))
	})
	s.handleFunc("GET /v1/internal/chunk-ids", func(w http.ResponseWriter, r *http.Request) {
		ids, err := s.b.LocalChunkIDs(r.Context(), r.URL.Query().Get("partition"), r.URL.Query().Get("file_id"))
		if ids == nil {
			ids = []string{}
		}
		reply(w, ids, err)
	})
	s.handleFunc("GET /v1/internal/chunk-records", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		recs, err := s.b.LocalChunkRecords(r.Context(), q.Get("id"), q.Get("partition"), q.Get("file_id"))
		reply(w, RecordsToWire(recs), err)
	})
	s.handleFunc("PUT /v1/blobs/{hash}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"stored": r.PathValue("hash")}, s.b.PutBlob(r.Context(), r.PathValue("hash"), r.Body))
	})
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

// WriteJSON writes v with a status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError maps an error to a status code and an ErrorBody.
func WriteError(w http.ResponseWriter, err error) {
	setRetryAfter(w, err)
	WriteJSON(w, StatusOf(err), ErrorBody{Error: err.Error()})
}
