package transport

import (
	"net/http"
	"strings"
)

// Document relationships (openrag 2026, routers/admin/partitions.py and
// the search routers' RelatedDocSearchParams): files carry
// "relationship_id" (a group: an e-mail thread, a folder) and "parent_id"
// (the file ID of their parent in the same partition) in their metadata.
// The ledger holds every file's metadata, so these are ledger reads.

const (
	metaRelationship = "relationship_id"
	metaParent       = "parent_id"
)

// relatedParams are openrag's RelatedDocSearchParams.
type relatedParams struct {
	related, ancestors bool
	limit              int
	maxDepth           int // -1: unlimited
}

func readRelatedParams(r *http.Request) (relatedParams, []fieldError) {
	var rp relatedParams
	var verrs []fieldError
	var ferr *fieldError
	if rp.related, ferr = queryBool(r, "include_related", false); ferr != nil {
		verrs = append(verrs, *ferr)
	}
	if rp.ancestors, ferr = queryBool(r, "include_ancestors", false); ferr != nil {
		verrs = append(verrs, *ferr)
	}
	if rp.limit, ferr = queryInt(r, "related_limit", 20, 0); ferr != nil {
		verrs = append(verrs, *ferr)
	}
	if rp.maxDepth, ferr = queryInt(r, "max_ancestor_depth", -1, 0); ferr != nil {
		verrs = append(verrs, *ferr)
	}
	return rp, verrs
}

func metaString(f FileView, key string) string {
	s, _ := f.Metadata[key].(string)
	return s
}

// fileEntry is a file as the relationship routes list it: the listing's
// shape (fileMetadata plus link).
func fileEntry(r *http.Request, f FileView) map[string]any {
	m := fileMetadata(f)
	m["link"] = fileLink(r, f.Partition, f.FileID)
	return m
}

// relatedFiles lists the files of p in relationship group rid, by ID.
func relatedFiles(p PartitionView, rid string) []FileView {
	var out []FileView
	for _, f := range p.Files {
		if rid != "" && metaString(f, metaRelationship) == rid {
			out = append(out, f)
		}
	}
	return out
}

// ancestorPath is the path from the root to fileID (root first, the file
// last) following parent_id within the partition; maxDepth (>= 0) caps
// the ancestors included. A cycle or a missing parent ends the walk.
func ancestorPath(p PartitionView, fileID string, maxDepth int) []FileView {
	byID := make(map[string]FileView, len(p.Files))
	for _, f := range p.Files {
		byID[f.FileID] = f
	}
	cur, ok := byID[fileID]
	if !ok {
		return nil
	}
	path := []FileView{cur}
	seen := map[string]bool{fileID: true}
	for maxDepth < 0 || len(path)-1 < maxDepth {
		pid := metaString(cur, metaParent)
		parent, ok := byID[pid]
		if pid == "" || !ok || seen[pid] {
			break
		}
		seen[pid] = true
		path = append(path, parent)
		cur = parent
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path
}

// partitionSubpath routes GET /partition/{p}/{kind}/{rest...}: openrag's
// relationships/{relationship_id:path} (an ID may hold slashes: a folder
// path) and file/{file_id}/ancestors (a file ID holds none, so one with a
// slash names no route, as in openrag).
func (c *compat) partitionSubpath(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	switch r.PathValue("kind") {
	case "relationships":
		if rest != "" {
			c.relationships(w, r, rest)
			return
		}
	case "file":
		if id, ok := strings.CutSuffix(rest, "/ancestors"); ok && id != "" && !strings.Contains(id, "/") {
			c.ancestors(w, r, id)
			return
		}
	}
	writeDetail(w, http.StatusNotFound, "Not Found")
}

// relationships is GET /partition/{p}/relationships/{rid}: {"files": [...]}.
func (c *compat) relationships(w http.ResponseWriter, r *http.Request, rid string) {
	p, ok := c.findPartition(w, r, r.PathValue("partition"))
	if !ok {
		return
	}
	files := []map[string]any{}
	for _, f := range relatedFiles(p, rid) {
		files = append(files, fileEntry(r, f))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"files": files})
}

// ancestors is GET /partition/{p}/file/{id}/ancestors: {"ancestors":
// [root, ..., file]}; 404 in openrag's words when the file is missing.
func (c *compat) ancestors(w http.ResponseWriter, r *http.Request, fileID string) {
	partition := r.PathValue("partition")
	depth, ferr := queryInt(r, "max_ancestor_depth", -1, 0)
	if ferr != nil {
		writeValidation(w, *ferr)
		return
	}
	ps, err := c.b.Partitions(r.Context())
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	for _, p := range ps {
		if p.Name != partition {
			continue
		}
		if path := ancestorPath(p, fileID, depth); path != nil {
			out := make([]map[string]any, 0, len(path))
			for _, f := range path {
				out = append(out, fileEntry(r, f))
			}
			WriteJSON(w, http.StatusOK, map[string]any{"ancestors": out})
			return
		}
	}
	writeDetail(w, http.StatusNotFound, "'%s' not found in partition '%s'", fileID, partition)
}

// expandRelated appends, after the hits, the chunks of files related to
// each hit's file (same relationship_id) and of its ancestors, at most
// rp.limit per hit, each chunk once, as openrag's retrieval service does.
func (c *compat) expandRelated(r *http.Request, rp relatedParams, hits []Hit) ([]map[string]any, error) {
	if !rp.related && !rp.ancestors || len(hits) == 0 {
		return nil, nil
	}
	ps, err := c.b.Partitions(r.Context())
	if err != nil {
		return nil, err
	}
	byName := make(map[string]PartitionView, len(ps))
	for _, p := range ps {
		byName[p.Name] = p
	}
	seen := map[string]bool{}
	for _, h := range hits {
		seen[h.ChunkID] = true
	}
	var out []map[string]any
	for _, h := range hits {
		p, ok := byName[h.Partition]
		if !ok {
			continue
		}
		var files []FileView
		self := FileView{}
		for _, f := range p.Files {
			if f.FileID == h.FileID {
				self = f
			}
		}
		if rp.related {
			for _, f := range relatedFiles(p, metaString(self, metaRelationship)) {
				if f.FileID != h.FileID {
					files = append(files, f)
				}
			}
		}
		if rp.ancestors {
			if path := ancestorPath(p, h.FileID, rp.maxDepth); len(path) > 1 {
				files = append(files, path[:len(path)-1]...)
			}
		}
		added := 0
		for _, f := range files {
			if added >= rp.limit {
				break
			}
			chunks, err := c.b.FileChunks(r.Context(), f.Partition, f.FileID, false)
			if err != nil {
				continue // gone since the listing: nothing to add
			}
			for _, ch := range chunks {
				if added >= rp.limit {
					break
				}
				if seen[ch.ID] {
					continue
				}
				seen[ch.ID] = true
				added++
				m := chunkMetadata(ch)
				m["related_to"] = h.FileID
				out = append(out, map[string]any{"link": extractLink(r, ch.ID), "metadata": m, "content": ch.Text})
			}
		}
	}
	return out, nil
}
