package store

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
