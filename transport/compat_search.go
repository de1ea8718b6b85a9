package transport

import (
	"maps"
	"net/http"
	"strconv"
)

const defaultCompatTopK = 5

type searchQuery struct {
	text      string
	topK      int
	threshold float64
	hasThresh bool
}

// MaxTopK is the most hits one search may ask for (node refuses more too):
// each hit is fetched from every copy holder and held before the answer.
const MaxTopK = 1000

// searchParams reads text, top_k and similarity_threshold as FastAPI's
// Query(...) declarations would: a missing text, a top_k that is not an
// integer of at least 1, or a threshold outside [0, 1] answer 422.
func searchParams(w http.ResponseWriter, r *http.Request) (searchQuery, bool) {
	var sq searchQuery
	var verrs []fieldError
	sq.text = r.URL.Query().Get("text")
	if sq.text == "" {
		verrs = append(verrs, fieldMissing("query", "text"))
	}
	topK, ferr := queryInt(r, "top_k", defaultCompatTopK, 1)
	if ferr == nil && topK > MaxTopK {
		ferr = &fieldError{Type: "less_than_equal", Loc: []string{"query", "top_k"},
			Msg: "Input should be less than or equal to " + strconv.Itoa(MaxTopK), Input: r.URL.Query().Get("top_k"), Ctx: map[string]any{"le": MaxTopK}}
	}
	if ferr != nil {
		verrs = append(verrs, *ferr)
	}
	sq.topK = topK
	th, has, ferr := queryFloat01(r, "similarity_threshold")
	if ferr != nil {
		verrs = append(verrs, *ferr)
	}
	sq.threshold, sq.hasThresh = th, has
	if len(verrs) > 0 {
		writeValidation(w, verrs...)
		return sq, false
	}
	return sq, true
}

func (c *compat) searchAll(w http.ResponseWriter, r *http.Request) {
	sq, ok := searchParams(w, r)
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
	c.search(w, r, SearchRequest{Text: sq.text, Partitions: parts, TopK: sq.topK}, "", sq)
}

func (c *compat) searchPartition(w http.ResponseWriter, r *http.Request) {
	sq, ok := searchParams(w, r)
	if !ok {
		return
	}
	c.search(w, r, SearchRequest{Text: sq.text, Partitions: []string{r.PathValue("partition")}, TopK: sq.topK}, "", sq)
}

// searchFile asks the backend for the file's chunks only, through the
// file_id filter that every backend applies against the ledger.
func (c *compat) searchFile(w http.ResponseWriter, r *http.Request) {
	sq, ok := searchParams(w, r)
	if !ok {
		return
	}
	fileID := r.PathValue("file_id")
	req := SearchRequest{Text: sq.text, Partitions: []string{r.PathValue("partition")}, TopK: sq.topK,
		Filter: map[string]string{"file_id": fileID}}
	c.search(w, r, req, fileID, sq)
}

// search answers {"documents": [{"link", "metadata", "content"}]}, the
// shape of openrag's search routers (RAGondin's later versions too). link
// points at /extract/{chunk_id}. metadata holds the user's keys, then the
// ones ragnode knows (as RAGondin's add_file set them on every chunk, plus
// score and position), which win. A similarity_threshold drops hits whose
// cosine similarity is below it, so fewer than top_k may come back.
func (c *compat) search(w http.ResponseWriter, r *http.Request, req SearchRequest, fileID string, sq searchQuery) {
	if sq.hasThresh {
		// A similarity threshold is a cosine similarity: it only means
		// something on dense scores, not on fused ranks.
		req.Mode = "dense"
	}
	req.Expr = r.URL.Query().Get("filter")
	rp, verrs := readRelatedParams(r)
	if len(verrs) > 0 {
		writeValidation(w, verrs...)
		return
	}
	hits, err := c.b.Search(r.Context(), req)
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	docs := make([]map[string]any, 0, min(len(hits), sq.topK))
	for _, h := range hits {
		if fileID != "" && h.FileID != fileID {
			continue
		}
		if sq.hasThresh && float64(h.Score) < sq.threshold {
			continue
		}
		if len(docs) == sq.topK {
			break
		}
		m := make(map[string]any, len(h.Metadata)+11)
		maps.Copy(m, h.Metadata)
		m["source"] = h.FileName
		if h.FileSize > 0 || h.Created > 0 {
			m["file_size"] = humanSize(h.FileSize)
		}
		if h.Created > 0 {
			m["created_at"] = isoTime(h.Created)
		}
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
		docs = append(docs, map[string]any{"link": extractLink(r, h.ChunkID), "metadata": m, "content": h.Text})
	}
	kept := hits[:0:0]
	for _, h := range hits {
		for _, d := range docs {
			if d["metadata"].(map[string]any)["_id"] == h.ChunkID {
				kept = append(kept, h)
				break
			}
		}
	}
	extra, err := c.expandRelated(r, rp, kept)
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	docs = append(docs, extra...)
	WriteJSON(w, http.StatusOK, map[string]any{"documents": docs})
}
