package store

import "sort"

// fuse merges rankings by reciprocal rank fusion, as Milvus's RRFRanker
// and RAGondin do: a chunk scores the sum over the lists it appears in of
// 1/(rrfk + rank), rank counted from 1, so agreement between rankings
// beats a high place in only one, and raw scores of different scales
// never mix. It returns the k best, ties broken by ID.
func (l *Local) fuse(lists [][]candidate, rrfk, k int) []candidate {
	sum := map[int]float64{}
	for _, list := range lists {
		for rank, c := range list {
			sum[c.slot] += 1 / float64(rrfk+rank+1)
		}
	}
	h := topK{l: l, k: k}
	for slot, s := range sum {
		h.offer(slot, float32(s))
	}
	return h.sorted()
}

// FuseHits fuses rankings that were gathered elsewhere (one per retriever,
// each best first, each chunk once) by reciprocal rank fusion, with the same
// formula as a hybrid Search, and returns the k best with their fused score.
// A caller that searches many stores fuses once over their merged rankings.
func FuseHits(lists [][]Hit, rrfk, k int) []Hit {
	if rrfk <= 0 {
		rrfk = DefaultRRFK
	}
	sum := map[string]float64{}
	first := map[string]Hit{}
	for _, list := range lists {
		for rank, h := range list {
			sum[h.ID] += 1 / float64(rrfk+rank+1)
			if _, ok := first[h.ID]; !ok {
				first[h.ID] = h
			}
		}
	}
	out := make([]Hit, 0, len(sum))
	for id, s := range sum {
		h := first[id]
		h.Score = float32(s)
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ID < out[j].ID
	})
	if k > 0 && len(out) > k {
		out = out[:k]
	}
	return out
}
