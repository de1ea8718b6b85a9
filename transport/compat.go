package transport

// The RAGondin-compatible API lets clients written for the Ray-based RAGondin
// (now linagora/openrag) talk to ragnode unchanged. Paths, status codes,
// messages and body shapes follow RAGondin's FastAPI routers
// (ragondin/routers/{indexer,partition,search,queue}.py and openrag/routers/*
// after the rename); where ragnode cannot give the same data the deviation is
// noted next to the code that builds the body.
//
// Errors use FastAPI's {"detail": "..."} body, not the /v1 ErrorBody,
// because RAGondin clients read .detail; a request FastAPI would have
// refused in validation (a required query parameter missing, an integer
// that does not parse, a number out of range) answers 422 with FastAPI's
// list of {type, loc, msg, input} (compat_http.go). Checks RAGondin made
// in its own code keep its 400.
//
// Files: compat.go (routes, uploads), compat_http.go (auth, CORS, 422),
// compat_tasks.go (tasks, queue), compat_partitions.go (partitions, files,
// chunks, extracts), compat_search.go.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/ragnode/ragnode/fsm"
)

const (
	// maxCompatMetadata bounds the metadata form field, which is read whole
	// (unlike the file part) so a client cannot make us buffer a file-sized
	// value by naming it "metadata".
	maxCompatMetadata = 1 << 20
	// maxCallbackField bounds callback_url and callback_token, which are
	// kept in the ledger with the task.
	maxCallbackField = 4 << 10
)

type compat struct{ b CompatBackend }

// MountCompat mounts the RAGondin-compatible API on s. Every route goes
// through Server.ServeHTTP, so the bearer token guards it like /v1, except
// GET /health_check and GET /version; auth failures on these routes answer
// FastAPI's {"detail"} body.
func (s *Server) MountCompat(b CompatBackend) {
	c := &compat{b: b}
	s.compat = true
	s.public = map[string]bool{"/health_check": true, "/version": true}
	const file = "/indexer/partition/{partition}/file/{file_id}"
	s.handleFunc("POST "+file, func(w http.ResponseWriter, r *http.Request) {
		release, err := s.beginUpload(w, r)
		if err != nil {
			writeCompatError(w, err, "")
			return
		}
		defer release()
		c.upload(w, r, fsm.ModeCreate, http.StatusCreated)
	})
	s.handleFunc("PUT "+file, func(w http.ResponseWriter, r *http.Request) {
		release, err := s.beginUpload(w, r)
		if err != nil {
			writeCompatError(w, err, "")
			return
		}
		defer release()
		c.upload(w, r, fsm.ModeReplace, http.StatusAccepted)
	})
	s.handleFunc("PATCH "+file, c.patchFile)
	s.handleFunc("DELETE "+file, c.deleteFile)
	s.handleFunc("POST "+file+"/copy", c.copyFile)
	s.handleFunc("GET /indexer/supported/types", c.supportedTypes)
	s.handleFunc("GET /indexer/task/{task_id}", c.task)
	s.handleFunc("DELETE /indexer/task/{task_id}", c.cancelTask)
	s.handleFunc("GET /indexer/task/{task_id}/error", c.taskError)
	s.handleFunc("GET /indexer/task/{task_id}/logs", c.taskLogs)

	// RAGondin declared the partition routes with a trailing slash and
	// openrag without; older clients still send the slash.
	s.handleFunc("GET /partition", c.listPartitions)
	s.handleFunc("GET /partition/{$}", c.listPartitions)
	s.handleFunc("GET /partition/{partition}", c.listFiles)
	s.handleFunc("GET /partition/{partition}/{$}", c.listFiles)
	s.handleFunc("DELETE /partition/{partition}", c.deletePartition)
	s.handleFunc("DELETE /partition/{partition}/{$}", c.deletePartition)
	s.handleFunc("GET /partition/check-file/{partition}/file/{file_id}", c.checkFile)
	s.handleFunc("GET /partition/{partition}/file/{file_id}", c.getFile)
	s.handleFunc("GET /partition/{partition}/chunks", c.listChunks)
	s.handleFunc("GET /extract/{extract_id}", c.extract)
	s.handleFunc("POST /partition/{partition}", c.createPartition)
	s.handleFunc("PATCH /partition/{partition}", c.updatePartition)
	s.handleFunc("GET /partition/{partition}/config", c.partitionConfig)
	// GET /partition/{p}/relationships/{rid:path} and
	// /partition/{p}/file/{id}/ancestors under one pattern: either literal
	// form would overlap /partition/check-file/{p}/file/{id} (and each
	// other) with neither more specific, which ServeMux refuses.
	s.handleFunc("GET /partition/{partition}/{kind}/{rest...}", c.partitionSubpath)

	s.handleFunc("GET /search", c.searchAll)
	s.handleFunc("GET /search/{$}", c.searchAll)
	s.handleFunc("GET /search/partition/{partition}", c.searchPartition)
	s.handleFunc("GET /search/partition/{partition}/file/{file_id}", c.searchFile)

	s.handleFunc("GET /health_check", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, "RAG API is up.")
	})
	s.handleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"version": c.b.CompatInfo().Version, "server": "ragnode"})
	})
	s.handleFunc("GET /queue/info", c.queueInfo)
	s.handleFunc("GET /queue/tasks", c.queueTasks)
	s.handleFunc("GET /openapi.json", c.openAPI)
	s.handleFunc("GET /users/info", c.usersInfo)
	s.handleFunc("GET /actors/{$}", c.actors)
	s.handleFunc("POST /actors/{actor_name}/restart", c.restartActor)
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
	setRetryAfter(w, err)
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

// indexerFileNotFound is openrag's wording on its indexer routes (PUT and
// DELETE /indexer/partition/{p}/file/{id}).
func indexerFileNotFound(partition, fileID string) string {
	return fmt.Sprintf("'%s' not found in partition '%s'", fileID, partition)
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
		case "workspace_ids":
			// openrag's 2026 upload form. Accepted so its clients are not
			// refused, read (bounded) and not acted on: ragnode has no
			// workspaces.
			if _, err := io.Copy(io.Discard, io.LimitReader(part, maxCompatMetadata)); err != nil {
				writeDetail(w, http.StatusBadRequest, "Reading %s: %v", part.FormName(), err)
				return
			}
		case "callback_url", "callback_token":
			raw, err := io.ReadAll(io.LimitReader(part, maxCallbackField+1))
			if err != nil {
				writeDetail(w, http.StatusBadRequest, "Reading %s: %v", part.FormName(), err)
				return
			}
			if len(raw) > maxCallbackField {
				writeDetail(w, http.StatusRequestEntityTooLarge, "%s exceeds %d bytes.", part.FormName(), maxCallbackField)
				return
			}
			if part.FormName() == "callback_url" {
				req.CallbackURL = strings.TrimSpace(string(raw))
			} else {
				req.CallbackToken = string(raw)
			}
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
		writeValidation(w, fieldMissing("body", "file"))
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
	if _, ok := req.Metadata["mimetype"].(string); ok {
		req.FileName = typedName(req.FileName, req.Metadata, c.b.CompatInfo())
	}
	// OpenRAG checks the quota of new files only (add_file, not put_file).
	done, err := c.admitUpload(r.Context(), req.Partition, req.Mode == fsm.ModeCreate)
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	tv, err := c.b.Submit(r.Context(), req, body)
	if err == nil {
		done(tv)
	}
	if err != nil {
		if StatusOf(err) == http.StatusConflict {
			// RAGondin's exact wording, partition unquoted.
			writeDetail(w, http.StatusConflict, "File '%s' already exists in partition %s", req.FileID, req.Partition)
			return
		}
		writeCompatError(w, err, indexerFileNotFound(req.Partition, req.FileID))
		return
	}
	WriteJSON(w, okCode, map[string]string{"task_status_url": taskStatusURL(r, tv.ID)})
}

// parseSmallForm parses a urlencoded or multipart form of metadata-sized
// fields (no file part), answering 413 or 400 itself when it cannot; the
// caller removes r.MultipartForm's temporary files.
func parseSmallForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 2*maxCompatMetadata)
	if err := r.ParseMultipartForm(maxCompatMetadata); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeDetail(w, http.StatusRequestEntityTooLarge, "Form exceeds %d bytes.", mbe.Limit)
			return false
		}
		writeDetail(w, http.StatusBadRequest, "Malformed form body: %v", err)
		return false
	}
	return true
}

// patchFile reads "metadata" from a urlencoded or multipart form; a missing
// field is an empty update, as in RAGondin.
func (c *compat) patchFile(w http.ResponseWriter, r *http.Request) {
	partition := r.PathValue("partition")
	fileID, ok := fileIDFrom(w, r)
	if !ok {
		return
	}
	if !parseSmallForm(w, r) {
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
		if target, _ := meta["partition"].(string); target != "" && errors.Is(err, fsm.ErrFileExists) {
			// A move onto a file that exists: the upload's 409 wording.
			writeDetail(w, http.StatusConflict, "File '%s' already exists in partition %s", fileID, target)
			return
		}
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
		writeCompatError(w, err, indexerFileNotFound(partition, fileID))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
