package chunk

import "math"

// shortPiece is the length up to which the plain quadratic merge (the one
// tiktoken-go runs on every piece) beats the heap's bookkeeping.
const shortPiece = 64

// bpeCount returns how many tokens byte-pair encoding makes of piece: the
// lowest-ranked adjacent pair merges first, the leftmost on ties, until no
// pair is in ranks. Pieces of one letter class are unbounded ("x" * 1e6
// is one piece), so long ones go through a heap: O(n log n), where the
// library's rescan of every pair after every merge is O(n²).
func bpeCount(piece string, ranks map[string]int) int {
	if len(piece) < 2 {
		return len(piece)
	}
	if _, ok := ranks[piece]; ok {
		return 1
	}
	if len(piece) <= shortPiece {
		return mergeShort(piece, ranks)
	}
	return mergeHeap(piece, ranks)
}

func rankOf(ranks map[string]int, s string) int {
	if r, ok := ranks[s]; ok {
		return r
	}
	return math.MaxInt
}

// mergeShort is the library's algorithm: starts[k] is where part k begins,
// rank[k] the rank of part k joined with part k+1.
func mergeShort(piece string, ranks map[string]int) int {
	var sb, rb [shortPiece + 1]int
	starts, rank := sb[:len(piece)+1], rb[:len(piece)+1]
	for i := range starts {
		starts[i] = i
	}
	pair := func(k int) int {
		if k+2 < len(starts) {
			return rankOf(ranks, piece[starts[k]:starts[k+2]])
		}
		return math.MaxInt
	}
	for k := range rank {
		rank[k] = pair(k)
	}
	for len(starts) > 2 {
		best := 0
		for k := 1; k < len(starts)-1; k++ {
			if rank[k] < rank[best] {
				best = k
			}
		}
		if rank[best] == math.MaxInt {
			break
		}
		starts = append(starts[:best+1], starts[best+2:]...)
		rank = append(rank[:best+1], rank[best+2:]...)
		rank[best] = pair(best)
		if best > 0 {
			rank[best-1] = pair(best - 1)
		}
	}
	return len(starts) - 1
}

// mergeHeap keeps the parts as a linked list over byte offsets and the
// candidate merges in a heap ordered by (rank, offset), which is the
// library's choice order. Entries go stale as parts grow; a pair's text
// only ever lengthens, and ranks are unique per text, so an entry is live
// exactly when its part is alive and still carries that rank.
func mergeHeap(piece string, ranks map[string]int) int {
	n := len(piece)
	// next[k] is the offset of the part after the one at k (n ends the
	// list, -1 marks a part merged away); rank[k] that of their union.
	next := make([]int32, n+1)
	prev := make([]int32, n)
	rank := make([]int32, n)
	for k := range n {
		next[k], prev[k] = int32(k+1), int32(k-1)
	}
	next[n] = int32(n)
	pairRank := func(k int32) int32 {
		if nk := next[k]; int(nk) < n {
			if r, ok := ranks[piece[k:next[nk]]]; ok {
				return int32(r)
			}
		}
		return noRank
	}
	h := make(pairHeap, 0, n)
	for k := range int32(n) {
		if rank[k] = pairRank(k); rank[k] != noRank {
			h = append(h, entry(rank[k], k))
		}
	}
	h.init()
	parts := n
	for len(h) > 0 {
		e := h.pop()
		r, k := int32(e>>32), int32(e)
		if next[k] < 0 || rank[k] != r {
			continue
		}
		gone := next[k]
		next[k] = next[gone]
		next[gone] = -1
		if int(next[k]) < n {
			prev[next[k]] = k
		}
		parts--
		if rank[k] = pairRank(k); rank[k] != noRank {
			h.push(entry(rank[k], k))
		}
		if p := prev[k]; p >= 0 {
			if rank[p] = pairRank(p); rank[p] != noRank {
				h.push(entry(rank[p], p))
			}
		}
	}
	return parts
}

// noRank marks a pair that is no token. cl100k has about 100k ranks, so
// int32 ranks and offsets (a piece is at most one count's text) suffice.
const noRank = math.MaxInt32

// entry packs (rank, offset) so one integer comparison orders the heap.
func entry(rank, off int32) uint64 { return uint64(rank)<<32 | uint64(uint32(off)) }

// pairHeap is a binary min-heap written out rather than container/heap:
// boxing every entry in an interface doubled the cost of a long piece.
type pairHeap []uint64

func (h pairHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *pairHeap) push(e uint64) {
	*h = append(*h, e)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[i] >= q[p] {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *pairHeap) pop() uint64 {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	*h = q[:last]
	h.down(0)
	return top
}

func (h pairHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if h[m] >= h[i] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
