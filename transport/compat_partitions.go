package transport

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
)

// Partitions, their files, the files' chunks and single chunks (extracts).

// listPartitions answers {"partitions": [{"partition", "created_at",
// "file_count"}]}, RAGondin's shape plus openrag's file count. ?limit= and
// ?offset= page it; a paged answer carries "total".
func (c *compat) listPartitions(w http.ResponseWriter, r *http.Request) {
	offset, limit, paged, ok := pageParams(w, r)
	if !ok {
		return
	}
	ps, err := c.b.Partitions(r.Context())
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	ps = slices.DeleteFunc(ps, func(p PartitionView) bool { return !InScope(r.Context(), p.Name) })
	out := make([]map[string]any, 0, len(ps))
	for i, p := range ps {
		if i < offset || (paged && len(out) == limit) {
			continue
		}
		// document_count is openrag 2026's name for file_count; both are sent.
		// created_at as openrag's summaries give it (ISO 8601): the admin
		// UI hands it to new Date(), which took RAGondin's seconds for
		// milliseconds (every partition "created" in January 1970).
		row := map[string]any{"partition": p.Name, "created_at": isoTimeUTC(p.Created),
			"file_count": len(p.Files), "document_count": len(p.Files)}
		if role := callerRole(r.Context(), p.Name); role != "" {
			row["role"] = role // openrag lists a member's role with the partition
		}
		out = append(out, row)
	}
	body := map[string]any{"partitions": out}
	if paged {
		body["total"] = len(ps)
	}
	WriteJSON(w, http.StatusOK, body)
}

// pageParams reads optional ?offset= and ?limit=; paged is whether limit
// was given.
func pageParams(w http.ResponseWriter, r *http.Request) (offset, limit int, paged, ok bool) {
	var verrs []fieldError
	offset, ferr := queryInt(r, "offset", 0, 0)
	if ferr != nil {
		verrs = append(verrs, *ferr)
	}
	limit, ferr = queryInt(r, "limit", 0, 1)
	if ferr != nil {
		verrs = append(verrs, *ferr)
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs...)
		return 0, 0, false, false
	}
	return offset, limit, r.URL.Query().Get("limit") != "", true
}

// humanSize is RAGondin's _human_readable_size.
func humanSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "KB", "MB", "GB", "TB"} {
		if f < 1024 {
			return fmt.Sprintf("%.2f %s", f, u)
		}
		f /= 1024
	}
	return fmt.Sprintf("%.2f PB", f)
}

// isoTime is Python's datetime.isoformat() of a naive time: microseconds
// only when there are some. ragnode writes UTC.
func isoTime(t int64) string {
	tm := ledgerTime(t)
	if tm.Nanosecond()/1000 != 0 {
		return tm.Format("2006-01-02T15:04:05.000000")
	}
	return tm.Format("2006-01-02T15:04:05")
}

// isoTimeUTC is Python's isoformat() of an aware UTC datetime.
func isoTimeUTC(t int64) string { return isoTime(t) + "+00:00" }

// fileMetadata is what RAGondin's add_file stored on every chunk of a file:
// the user's keys, then the ones it set itself, which win over user keys of
// that name. source was the path RAGondin saved the upload to; ragnode
// keeps uploads by content hash, so it is the file name. created_at is when
// the file's current version was submitted (RAGondin: when it was saved,
// so a PUT renewed it too; a PATCH does not), in UTC.
func fileMetadata(f FileView) map[string]any {
	m := make(map[string]any, len(f.Metadata)+6)
	maps.Copy(m, f.Metadata)
	m["source"] = f.FileName
	m["filename"] = f.FileName
	m["partition"] = f.Partition
	m["file_id"] = f.FileID
	m["file_size"] = humanSize(f.Size)
	if f.Created > 0 {
		m["created_at"] = isoTime(f.Created)
	}
	return m
}

func fileLink(r *http.Request, partition, fileID string) string {
	return baseURL(r) + "/partition/" + url.PathEscape(partition) + "/file/" + url.PathEscape(fileID)
}

func extractLink(r *http.Request, chunkID string) string {
	return baseURL(r) + "/extract/" + url.PathEscape(chunkID)
}

// findPartition returns the named partition from the ledger's listing.
func (c *compat) findPartition(w http.ResponseWriter, r *http.Request, name string) (PartitionView, bool) {
	ps, err := c.b.Partitions(r.Context())
	if err != nil {
		writeCompatError(w, err, partitionNotFound(name))
		return PartitionView{}, false
	}
	for _, p := range ps {
		if p.Name == name {
			return p, true
		}
	}
	writeDetail(w, http.StatusNotFound, "%s", partitionNotFound(name))
	return PartitionView{}, false
}

// listFiles answers {"files": [{"link", "file_id", "partition", "filename",
// ...metadata}]}: openrag's shape (RAGondin's held only "link"). ?limit=
// and ?offset= page it; a paged answer carries "total".
func (c *compat) listFiles(w http.ResponseWriter, r *http.Request) {
	offset, limit, paged, ok := pageParams(w, r)
	if !ok {
		return
	}
	p, ok := c.findPartition(w, r, r.PathValue("partition"))
	if !ok {
		return
	}
	files := make([]map[string]any, 0, len(p.Files))
	for i, f := range p.Files {
		if i < offset || (paged && len(files) == limit) {
			continue
		}
		m := fileMetadata(f)
		m["link"] = fileLink(r, f.Partition, f.FileID)
		files = append(files, m)
	}
	body := map[string]any{"files": files}
	if paged {
		body["total"] = len(p.Files)
	}
	WriteJSON(w, http.StatusOK, body)
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

// getFile answers {"metadata": {...}, "documents": [{"link"}]}: a link to
// /extract/{id} per chunk of the file's live version, in chunk order. The
// metadata is the file's (RAGondin took its first chunk's, page included;
// so does this when the file has chunks). A file whose task has not
// finished has no chunks yet: documents is empty.
func (c *compat) getFile(w http.ResponseWriter, r *http.Request) {
	partition, fileID := r.PathValue("partition"), r.PathValue("file_id")
	// openrag's ?limit= (default 2000) caps the chunk links.
	limit, ferr := queryInt(r, "limit", 2000, 1)
	if ferr != nil {
		writeValidation(w, *ferr)
		return
	}
	f, err := c.b.File(r.Context(), partition, fileID)
	if err != nil {
		writeCompatError(w, err, fileNotFound(partition, fileID))
		return
	}
	chunks, err := c.b.FileChunks(r.Context(), partition, fileID, false)
	if err != nil {
		writeCompatError(w, err, fileNotFound(partition, fileID))
		return
	}
	meta := fileMetadata(f)
	docs := make([]map[string]string, 0, len(chunks))
	for i, ch := range chunks {
		if i == limit {
			break
		}
		if i == 0 {
			meta["page"] = ch.Page
		}
		docs = append(docs, map[string]string{"link": extractLink(r, ch.ID)})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"metadata": meta, "documents": docs})
}

// chunkMetadata is a stored chunk's metadata as RAGondin kept it: the
// file's metadata, then the chunk's own keys.
func chunkMetadata(ch ChunkView) map[string]any {
	m := fileMetadata(FileView{Partition: ch.Partition, FileID: ch.FileID, FileName: ch.FileName,
		Metadata: ch.Metadata, Size: ch.FileSize, Created: ch.Created})
	m["_id"] = ch.ID
	m["page"] = ch.Page
	m["chunk_index"] = ch.Index
	if len(ch.Headings) > 0 {
		m["headings"] = ch.Headings
	}
	return m
}

// listChunks is GET /partition/{p}/chunks: {"chunks": [{"link", "content",
// "metadata"}]}, every live chunk of the partition or of ?file_id=, file by
// file in file ID order then chunk order. include_embedding (default true,
// as upstream) adds metadata.vector. ?limit= caps the answer, which then
// carries "total" (the ledger's live chunk count).
func (c *compat) listChunks(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("partition")
	fileID := r.URL.Query().Get("file_id")
	var verrs []fieldError
	limit, ferr := queryInt(r, "limit", 0, 1)
	if ferr != nil {
		verrs = append(verrs, *ferr)
	}
	withVec, ferr := queryBool(r, "include_embedding", true)
	if ferr != nil {
		verrs = append(verrs, *ferr)
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs...)
		return
	}
	paged := r.URL.Query().Get("limit") != ""
	p, ok := c.findPartition(w, r, name)
	if !ok {
		return
	}
	files := p.Files
	if fileID != "" {
		files = nil
		for _, f := range p.Files {
			if f.FileID == fileID {
				files = []FileView{f}
			}
		}
		if files == nil {
			writeDetail(w, http.StatusNotFound, "%s", fileNotFound(name, fileID))
			return
		}
	}
	out := []map[string]any{}
	total := 0
	for _, f := range files {
		total += f.Chunks
		if (paged && len(out) >= limit) || f.Chunks == 0 {
			continue
		}
		chunks, err := c.b.FileChunks(r.Context(), f.Partition, f.FileID, withVec)
		if err != nil {
			writeCompatError(w, err, fileNotFound(f.Partition, f.FileID))
			return
		}
		for _, ch := range chunks {
			if paged && len(out) == limit {
				break
			}
			m := chunkMetadata(ch)
			if withVec {
				vec := ch.Vector
				if vec == nil {
					vec = []float32{}
				}
				m["vector"] = vec
			}
			out = append(out, map[string]any{"link": extractLink(r, ch.ID), "content": ch.Text, "metadata": m})
		}
	}
	body := map[string]any{"chunks": out}
	if paged {
		body["total"] = total
	}
	WriteJSON(w, http.StatusOK, body)
}

// extract is RAGondin's GET /extract/{id}: one chunk of a live file.
func (c *compat) extract(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("extract_id")
	ch, err := c.b.Chunk(r.Context(), id)
	if err != nil {
		writeCompatError(w, err, fmt.Sprintf("Extract '%s' not found.", id))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"page_content": ch.Text, "metadata": chunkMetadata(ch)})
}
