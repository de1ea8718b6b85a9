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
	next := make([]int, n) // offset of the following part; n ends the list
	prev := make([]int, n)
	rank := make([]int, n) // rank of the part joined with its successor
	alive := make([]bool, n)
	h := make(pairHeap, 0, n)
	pairRank := func(k int) int {
		if nk := next[k]; nk < n {
			return rankOf(ranks, piece[k:next[nk]])
		}
		return math.MaxInt
	}
	for k := range n {
		next[k], prev[k], alive[k] = k+1, k-1, true
	}
	// next[nk] for the last part must read n: a sentinel past the end.
	next = append(next, n)
	for k := range n {
		rank[k] = pairRank(k)
		if rank[k] != math.MaxInt {
			h = append(h, pairEntry{rank[k], k})
		}
	}
	h.init()
	parts := n
	for len(h) > 0 {
		e := h.pop()
		k := e.off
		if !alive[k] || rank[k] != e.rank {
			continue
		}
		gone := next[k]
		alive[gone] = false
		next[k] = next[gone]
		if next[k] < n {
			prev[next[k]] = k
		}
		parts--
		if rank[k] = pairRank(k); rank[k] != math.MaxInt {
			h.push(pairEntry{rank[k], k})
		}
		if p := prev[k]; p >= 0 {
			if rank[p] = pairRank(p); rank[p] != math.MaxInt {
				h.push(pairEntry{rank[p], p})
			}
		}
	}
	return parts
}

type pairEntry struct{ rank, off int }

func (a pairEntry) before(b pairEntry) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.off < b.off)
}

// pairHeap is a binary min-heap written out rather than container/heap:
// boxing every entry in an interface doubled the cost of a long piece.
type pairHeap []pairEntry

func (h pairHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *pairHeap) push(e pairEntry) {
	*h = append(*h, e)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !q[i].before(q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *pairHeap) pop() pairEntry {
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
		if r := l + 1; r < len(h) && h[r].before(h[l]) {
			m = r
		}
		if !h[m].before(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
