package transport

// The RAGondin-compatible API lets clients written for the Ray-based RAGondin
// (now linagora/openrag) talk to ragnode unchanged. Paths, status codes,
// messages and body shapes follow RAGondin's FastAPI routers
// (ragondin/routers/{indexer,partition,search,queue}.py and openrag/routers/*
// after the rename); where ragnode cannot give the same data the deviation is
// noted next to the code that builds the body.
//
// Errors use FastAPI's {"detail": "..."} body, not the /v1 ErrorBody, because
// RAGondin clients read .detail. Validation failures answer 400 where FastAPI
// would answer 422: the deployment being replaced documented 400 and its
// clients only test for "not 2xx".

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/ragnode/ragnode/fsm"
)

const (
	// maxCompatMetadata bounds the metadata form field, which is read whole
	// (unlike the file part) so a client cannot make us buffer a file-sized
	// value by naming it "metadata".
	maxCompatMetadata = 1 << 20
	defaultCompatTopK = 5
)

// RAGondin's task states. RAGondin had no separate embedding state: it
// embedded while inserting, so embedding reports as INSERTING.
const (
	ragQueued      = "QUEUED"
	ragSerializing = "SERIALIZING"
	ragChunking    = "CHUNKING"
	ragInserting   = "INSERTING"
	ragCompleted   = "COMPLETED"
	ragFailed      = "FAILED"
)

type compat struct{ b CompatBackend }

// MountCompat mounts the RAGondin-compatible API on s. Every route goes
// through Server.ServeHTTP, so the bearer token guards it like /v1.
func (s *Server) MountCompat(b CompatBackend) {
	c := &compat{b: b}
	const file = "/indexer/partition/{partition}/file/{file_id}"
	s.mux.HandleFunc("POST "+file, func(w http.ResponseWriter, r *http.Request) {
		c.upload(w, r, fsm.ModeCreate, http.StatusCreated)
	})
	s.mux.HandleFunc("PUT "+file, func(w http.ResponseWriter, r *http.Request) {
		c.upload(w, r, fsm.ModeReplace, http.StatusAccepted)
	})
	s.mux.HandleFunc("PATCH "+file, c.patchFile)
	s.mux.HandleFunc("DELETE "+file, c.deleteFile)
	s.mux.HandleFunc("GET /indexer/task/{task_id}", c.task)
	s.mux.HandleFunc("GET /indexer/task/{task_id}/error", c.taskError)

	// RAGondin declared the partition routes with a trailing slash and
	// openrag without; older clients still send the slash.
	s.mux.HandleFunc("GET /partition", c.listPartitions)
	s.mux.HandleFunc("GET /partition/{$}", c.listPartitions)
	s.mux.HandleFunc("GET /partition/{partition}", c.listFiles)
	s.mux.HandleFunc("GET /partition/{partition}/{$}", c.listFiles)
	s.mux.HandleFunc("DELETE /partition/{partition}", c.deletePartition)
	s.mux.HandleFunc("DELETE /partition/{partition}/{$}", c.deletePartition)
	s.mux.HandleFunc("GET /partition/check-file/{partition}/file/{file_id}", c.checkFile)
	s.mux.HandleFunc("GET /partition/{partition}/file/{file_id}", c.getFile)

	s.mux.HandleFunc("GET /search", c.searchAll)
	s.mux.HandleFunc("GET /search/{$}", c.searchAll)
	s.mux.HandleFunc("GET /search/partition/{partition}", c.searchPartition)
	s.mux.HandleFunc("GET /search/partition/{partition}/file/{file_id}", c.searchFile)

	s.mux.HandleFunc("GET /health_check", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, "RAG API is up.")
	})
	s.mux.HandleFunc("GET /queue/info", c.queueInfo)
}

// detailBody is FastAPI's error body.
type detailBody struct {
	Detail string `json:"detail"`
}

func writeDetail(w http.ResponseWriter, code int, format string, args ...any) {
	WriteJSON(w, code, detailBody{Detail: fmt.Sprintf(format, args...)})
}

// writeCompatError maps a backend error to its status. notFound, when set,
// replaces the backend's 404 text with RAGondin's wording, which clients
// match on.
func writeCompatError(w http.ResponseWriter, err error, notFound string) {
	code := StatusOf(err)
	if code == http.StatusNotFound && notFound != "" {
		writeDetail(w, code, "%s", notFound)
		return
	}
	writeDetail(w, code, "%s", err.Error())
}

func fileNotFound(partition, fileID string) string {
	return fmt.Sprintf("File '%s' not found in partition '%s'.", fileID, partition)
}

func taskNotFound(id string) string { return fmt.Sprintf("Task '%s' not found.", id) }

func partitionNotFound(p string) string { return fmt.Sprintf("Partition '%s' not found.", p) }

// fileIDFrom validates {file_id} as RAGondin's validate_file_id did. The mux
// unescapes path values, so an escaped slash (%2F) shows up as "/" here; the
// raw path is checked too in case a proxy or a future mux leaves it escaped.
func fileIDFrom(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("file_id")
	raw := r.URL.EscapedPath()
	if i := strings.LastIndexByte(raw, '/'); i >= 0 {
		raw = raw[i+1:]
	}
	if strings.Contains(id, "/") || strings.Contains(strings.ToUpper(raw), "%2F") {
		writeDetail(w, http.StatusBadRequest, "File ID contains forbidden characters: /")
		return "", false
	}
	if strings.TrimSpace(id) == "" {
		writeDetail(w, http.StatusBadRequest, "File ID cannot be empty.")
		return "", false
	}
	return id, true
}

// parseMetadata accepts what RAGondin's validate_metadata accepted, except
// that a JSON value other than an object is refused here rather than
// crashing later: ragnode stores metadata as a map.
func parseMetadata(raw string) (map[string]any, error) {
	if strings.TrimSpace(raw) == "" {
		return map[string]any{}, nil
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, invalidf("Invalid JSON in metadata")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalidf("Metadata must be a JSON object.")
	}
	return m, nil
}

// baseURL is the scheme and host the client used. RAGondin runs uvicorn with
// proxy headers on, so URLs it hands out point at the proxy; doing the same
// keeps task_status_url usable behind a load balancer. The headers are not
// trusted for anything else: a client that forges them only misleads itself.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := strings.ToLower(firstForwarded(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
		scheme = p
	}
	host := r.Host
	if h := firstForwarded(r.Header.Get("X-Forwarded-Host")); h != "" && !strings.ContainsAny(h, "/\\@ \t\"<>?#") {
		host = h
	}
	return scheme + "://" + host
}

// firstForwarded takes the client-most hop of a comma-separated header.
func firstForwarded(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

func taskStatusURL(r *http.Request, id string) string {
	return baseURL(r) + "/indexer/task/" + url.PathEscape(id)
}

// upload streams the multipart "file" part into Submit. Metadata must be
// known before Submit starts, so when "file" comes before "metadata" the
// file is spooled to a temporary file while the rest of the form is read;
// otherwise nothing is buffered beyond the multipart reader's window.
func (c *compat) upload(w http.ResponseWriter, r *http.Request, mode string, okCode int) {
	partition := r.PathValue("partition")
	fileID, ok := fileIDFrom(w, r)
	if !ok {
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "Expected a multipart/form-data body with a 'file' part: %v", err)
		return
	}
	req := SubmitRequest{Partition: partition, FileID: fileID, Mode: mode, Size: -1}
	var (
		metaSeen bool
		spool    *os.File
	)
	defer func() {
		if spool != nil {
			spool.Close()
			os.Remove(spool.Name())
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeDetail(w, http.StatusBadRequest, "Malformed multipart body: %v", err)
			return
		}
		switch part.FormName() {
		case "metadata":
			if metaSeen {
				continue
			}
			raw, err := io.ReadAll(io.LimitReader(part, maxCompatMetadata+1))
			if err != nil {
				writeDetail(w, http.StatusBadRequest, "Reading metadata: %v", err)
				return
			}
			if len(raw) > maxCompatMetadata {
				writeDetail(w, http.StatusRequestEntityTooLarge, "Metadata exceeds %d bytes.", maxCompatMetadata)
				return
			}
			if req.Metadata, err = parseMetadata(string(raw)); err != nil {
				writeCompatError(w, err, "")
				return
			}
			metaSeen = true
		case "file":
			if spool != nil {
				continue // RAGondin takes one file; extra ones are ignored
			}
			req.FileName = part.FileName()
			if metaSeen {
				c.submit(w, r, req, part, okCode)
				return
			}
			if spool, err = os.CreateTemp("", "ragnode-upload-*"); err != nil {
				writeDetail(w, http.StatusInternalServerError, "Spooling upload: %v", err)
				return
			}
			n, err := io.Copy(spool, part)
			if err != nil {
				writeDetail(w, http.StatusBadRequest, "Reading file part: %v", err)
				return
			}
			req.Size = n
		}
	}
	if spool == nil {
		writeDetail(w, http.StatusBadRequest, "Missing 'file' part.")
		return
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		writeDetail(w, http.StatusInternalServerError, "Rewinding spooled upload: %v", err)
		return
	}
	c.submit(w, r, req, spool, okCode)
}

func (c *compat) submit(w http.ResponseWriter, r *http.Request, req SubmitRequest, body io.Reader, okCode int) {
	if req.Metadata == nil {
		req.Metadata = map[string]any{}
	}
	tv, err := c.b.Submit(r.Context(), req, body)
	if err != nil {
		if StatusOf(err) == http.StatusConflict {
			// RAGondin's exact wording, partition unquoted.
			writeDetail(w, http.StatusConflict, "File '%s' already exists in partition %s", req.FileID, req.Partition)
			return
		}
		writeCompatError(w, err, fileNotFound(req.Partition, req.FileID))
		return
	}
	WriteJSON(w, okCode, map[string]string{"task_status_url": taskStatusURL(r, tv.ID)})
}

// patchFile reads "metadata" from a urlencoded or multipart form; a missing
// field is an empty update, as in RAGondin.
func (c *compat) patchFile(w http.ResponseWriter, r *http.Request) {
	partition := r.PathValue("partition")
	fileID, ok := fileIDFrom(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 2*maxCompatMetadata)
	if err := r.ParseMultipartForm(maxCompatMetadata); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeDetail(w, http.StatusRequestEntityTooLarge, "Form exceeds %d bytes.", mbe.Limit)
			return
		}
		writeDetail(w, http.StatusBadRequest, "Malformed form body: %v", err)
		return
	}
	if r.MultipartForm != nil {
		defer r.MultipartForm.RemoveAll()
	}
	meta, err := parseMetadata(r.PostFormValue("metadata"))
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	if err := c.b.UpdateFileMetadata(r.Context(), partition, fileID, meta); err != nil {
		writeCompatError(w, err, fileNotFound(partition, fileID))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{
		"message": fmt.Sprintf("Metadata for file '%s' successfully updated.", fileID),
	})
}

func (c *compat) deleteFile(w http.ResponseWriter, r *http.Request) {
	partition, fileID := r.PathValue("partition"), r.PathValue("file_id")
	if err := c.b.DeleteFile(r.Context(), partition, fileID); err != nil {
		writeCompatError(w, err, fileNotFound(partition, fileID))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ragTaskState maps the ledger's state and stage to RAGondin's vocabulary.
// RAGondin had no cancelled state (a cancelled Ray task surfaced as a
// failure), so cancelled reports FAILED and /error says it was cancelled.
// A running task that has not reported a stage yet is loading its file,
// which RAGondin called SERIALIZING.
func ragTaskState(state, stage string) string {
	switch fsm.TaskState(state) {
	case fsm.Queued, fsm.Assigned:
		return ragQueued
	case fsm.Running:
		switch stage {
		case fsm.StageChunking:
			return ragChunking
		case fsm.StageEmbedding, fsm.StageInserting:
			return ragInserting
		default:
			return ragSerializing
		}
	case fsm.Completed:
		return ragCompleted
	case fsm.Failed, fsm.Cancelled:
		return ragFailed
	}
	return strings.ToUpper(state)
}

func (c *compat) task(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	tv, err := c.b.Task(r.Context(), id)
	if err != nil {
		writeCompatError(w, err, taskNotFound(id))
		return
	}
	meta := tv.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	state := ragTaskState(tv.State, tv.Stage)
	body := map[string]any{
		"task_id":    tv.ID,
		"task_state": state,
		"details": map[string]any{
			"file_id":   tv.FileID,
			"partition": tv.Partition,
			"metadata":  meta,
		},
	}
	if state == ragFailed {
		body["error_url"] = taskStatusURL(r, tv.ID) + "/error"
	}
	WriteJSON(w, http.StatusOK, body)
}

// taskError answers RAGondin's {"task_id", "traceback": [lines]}. ragnode
// keeps an error message rather than a Python traceback; its lines stand in.
func (c *compat) taskError(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	tv, err := c.b.Task(r.Context(), id)
	if err != nil {
		writeCompatError(w, err, taskNotFound(id))
		return
	}
	msg := strings.TrimRight(tv.Error, "\n")
	if msg == "" && tv.State == string(fsm.Cancelled) {
		msg = "Task was cancelled."
	}
	if msg == "" {
		writeDetail(w, http.StatusNotFound, "No error found for task '%s'.", id)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"task_id": tv.ID, "traceback": strings.Split(msg, "\n")})
}

// unixSeconds turns a ledger time into RAGondin's integer seconds. The FSM
// records Command.Now in Unix nanoseconds; a value too small to be
// nanoseconds is taken to be seconds already.
func unixSeconds(t int64) int64 {
	if t > 1e15 {
		return t / 1e9
	}
	return t
}

// listPartitions answers {"partitions": [{"partition", "created_at"}]},
// RAGondin's shape.
func (c *compat) listPartitions(w http.ResponseWriter, r *http.Request) {
	ps, err := c.b.Partitions(r.Context())
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, map[string]any{"partition": p.Name, "created_at": unixSeconds(p.Created)})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"partitions": out})
}

// fileMetadata is what RAGondin stored on every chunk of a file: the user's
// keys plus the ones it set itself, which win over user keys of that name.
func fileMetadata(f FileView) map[string]any {
	m := make(map[string]any, len(f.Metadata)+3)
	maps.Copy(m, f.Metadata)
	m["filename"] = f.FileName
	m["partition"] = f.Partition
	m["file_id"] = f.FileID
	return m
}

func fileLink(r *http.Request, partition, fileID string) string {
	return baseURL(r) + "/partition/" + url.PathEscape(partition) + "/file/" + url.PathEscape(fileID)
}

// listFiles answers {"files": [{"link", "file_id", "partition", "filename",
// ...user metadata}]}: openrag's shape (RAGondin's held only "link").
func (c *compat) listFiles(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("partition")
	ps, err := c.b.Partitions(r.Context())
	if err != nil {
		writeCompatError(w, err, partitionNotFound(name))
		return
	}
	for _, p := range ps {
		if p.Name != name {
			continue
		}
		files := make([]map[string]any, 0, len(p.Files))
		for _, f := range p.Files {
			m := fileMetadata(f)
			m["link"] = fileLink(r, f.Partition, f.FileID)
			files = append(files, m)
		}
		WriteJSON(w, http.StatusOK, map[string]any{"files": files})
		return
	}
	writeDetail(w, http.StatusNotFound, "%s", partitionNotFound(name))
}

func (c *compat) deletePartition(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("partition")
	if err := c.b.DeletePartition(r.Context(), name); err != nil {
		writeCompatError(w, err, partitionNotFound(name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkFile answers a bare JSON string, as RAGondin did.
func (c *compat) checkFile(w http.ResponseWriter, r *http.Request) {
	partition, fileID := r.PathValue("partition"), r.PathValue("file_id")
	if _, err := c.b.File(r.Context(), partition, fileID); err != nil {
		writeCompatError(w, err, fileNotFound(partition, fileID))
		return
	}
	WriteJSON(w, http.StatusOK, fmt.Sprintf("File '%s' exists in partition '%s'.", fileID, partition))
}

// getFile answers {"metadata": {...}, "documents": []}. RAGondin listed a
// link per chunk in documents; the backend has no chunk listing, so the
// list is empty rather than absent, which keeps clients that iterate it
// working.
func (c *compat) getFile(w http.ResponseWriter, r *http.Request) {
	partition, fileID := r.PathValue("partition"), r.PathValue("file_id")
	f, err := c.b.File(r.Context(), partition, fileID)
	if err != nil {
		writeCompatError(w, err, fileNotFound(partition, fileID))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"metadata": fileMetadata(f), "documents": []any{}})
}

// searchParams reads text and top_k as RAGondin's Query(...) declared them.
func searchParams(w http.ResponseWriter, r *http.Request) (string, int, bool) {
	q := r.URL.Query()
	text := q.Get("text")
	if text == "" {
		writeDetail(w, http.StatusBadRequest, "Query parameter 'text' is required.")
		return "", 0, false
	}
	topK := defaultCompatTopK
	if v := q.Get("top_k"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeDetail(w, http.StatusBadRequest, "Query parameter 'top_k' must be a positive integer.")
			return "", 0, false
		}
		topK = n
	}
	return text, topK, true
}

func (c *compat) searchAll(w http.ResponseWriter, r *http.Request) {
	text, topK, ok := searchParams(w, r)
	if !ok {
		return
	}
	// "all" anywhere means every partition, like RAGondin's default ["all"].
	var parts []string
	for _, p := range r.URL.Query()["partitions"] {
		if p == "all" {
			parts = nil
			break
		}
		if p != "" {
			parts = append(parts, p)
		}
	}
	c.search(w, r, SearchRequest{Text: text, Partitions: parts, TopK: topK}, "", topK)
}

func (c *compat) searchPartition(w http.ResponseWriter, r *http.Request) {
	text, topK, ok := searchParams(w, r)
	if !ok {
		return
	}
	c.search(w, r, SearchRequest{Text: text, Partitions: []string{r.PathValue("partition")}, TopK: topK}, "", topK)
}

// searchFile asks the backend for the file's chunks only, through the
// file_id filter that every backend applies against the ledger.
func (c *compat) searchFile(w http.ResponseWriter, r *http.Request) {
	text, topK, ok := searchParams(w, r)
	if !ok {
		return
	}
	fileID := r.PathValue("file_id")
	req := SearchRequest{Text: text, Partitions: []string{r.PathValue("partition")}, TopK: topK,
		Filter: map[string]string{"file_id": fileID}}
	c.search(w, r, req, fileID, topK)
}

// search answers {"documents": [{"link", "metadata", "content"}]}, the
// shape of openrag's search routers (RAGondin's later versions too). link
// points at RAGondin's /extract/{chunk_id}, which ragnode does not serve:
// it is kept because clients use it as the chunk's identity. metadata holds
// the user's keys, then the ones ragnode knows, which win.
func (c *compat) search(w http.ResponseWriter, r *http.Request, req SearchRequest, fileID string, limit int) {
	hits, err := c.b.Search(r.Context(), req)
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	base := baseURL(r)
	docs := make([]map[string]any, 0, min(len(hits), limit))
	for _, h := range hits {
		if fileID != "" && h.FileID != fileID {
			continue
		}
		if len(docs) == limit {
			break
		}
		m := make(map[string]any, len(h.Metadata)+8)
		maps.Copy(m, h.Metadata)
		m["_id"] = h.ChunkID
		m["score"] = h.Score
		m["file_id"] = h.FileID
		m["partition"] = h.Partition
		m["filename"] = h.FileName
		m["page"] = h.Page
		m["chunk_index"] = h.Index
		if len(h.Headings) > 0 {
			m["headings"] = h.Headings
		}
		docs = append(docs, map[string]any{
			"link":     base + "/extract/" + url.PathEscape(h.ChunkID),
			"metadata": m,
			"content":  h.Text,
		})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"documents": docs})
}

// queueInfo answers RAGondin's {"workers": {...}, "tasks": {...}}. The
// backend's task counts are folded into RAGondin's states; keys may be
// ledger states or stages (lower case) or RAGondin's own names, so a
// backend that already counts by stage keeps that detail. A bare "running"
// count lands in SERIALIZING, as a running task with no stage does.
func (c *compat) queueInfo(w http.ResponseWriter, r *http.Request) {
	qi, err := c.b.QueueInfo(r.Context())
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	counts := map[string]int{}
	for k, n := range qi.Tasks {
		switch strings.ToLower(k) {
		case "queued", "assigned":
			counts[ragQueued] += n
		case "running", "loading", "serializing":
			counts[ragSerializing] += n
		case "chunking":
			counts[ragChunking] += n
		case "embedding", "inserting":
			counts[ragInserting] += n
		case "completed":
			counts[ragCompleted] += n
		case "failed", "cancelled":
			counts[ragFailed] += n
		}
	}
	active := map[string]int{}
	total := 0
	for _, s := range []string{ragQueued, ragSerializing, ragChunking, ragInserting} {
		active[s] = counts[s]
		total += counts[s]
	}
	// max_per_actor was a per-worker setting in RAGondin; ragnode's nodes
	// differ in size, so this is the mean slots per node.
	perWorker := 0
	if qi.PoolSize > 0 {
		perWorker = qi.TotalSlots / qi.PoolSize
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"workers": map[string]int{
			"total_slots":   qi.TotalSlots,
			"free_slots":    qi.FreeSlots,
			"busy_slots":    qi.BusySlots,
			"pool_size":     qi.PoolSize,
			"max_per_actor": perWorker,
		},
		"tasks": map[string]any{
			"active":          total,
			"active_statuses": active,
			"total_completed": counts[ragCompleted],
			"total_failed":    counts[ragFailed],
		},
	})
}
