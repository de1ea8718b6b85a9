package transport

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ragnode/ragnode/fsm"
)

// copyFile is openrag's POST /indexer/partition/{p}/file/{id}/copy
// (openrag/api/routers/admin/indexing.py copy_file_between_partitions):
// form fields source_partition and source_file_id (required), metadata
// (optional JSON object merged over the source's). 201 {"message": "File
// copied successfully."}; 404 when the source is missing, 409 when the
// target exists. The chunks are copied with their vectors, not embedded
// again.
func (c *compat) copyFile(w http.ResponseWriter, r *http.Request) {
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
	srcPartition, srcFileID := r.PostFormValue("source_partition"), r.PostFormValue("source_file_id")
	var verrs []fieldError
	if _, ok := r.PostForm["source_partition"]; !ok {
		verrs = append(verrs, fieldMissing("body", "source_partition"))
	}
	if _, ok := r.PostForm["source_file_id"]; !ok {
		verrs = append(verrs, fieldMissing("body", "source_file_id"))
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs...)
		return
	}
	// openrag validates source_file_id as it validates the path's file ID.
	if strings.Contains(srcFileID, "/") {
		writeDetail(w, http.StatusBadRequest, "File ID contains forbidden characters: /")
		return
	}
	if strings.TrimSpace(srcFileID) == "" {
		writeDetail(w, http.StatusBadRequest, "File ID cannot be empty.")
		return
	}
	meta, err := parseMetadata(r.PostFormValue("metadata"))
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	if err := c.b.CopyFile(r.Context(), srcPartition, srcFileID, partition, fileID, meta); err != nil {
		if errors.Is(err, fsm.ErrFileExists) {
			writeDetail(w, http.StatusConflict, "File '%s' already exists in partition %s", fileID, partition)
			return
		}
		writeCompatError(w, err, fileNotFound(srcPartition, srcFileID))
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]string{"message": "File copied successfully."})
}
