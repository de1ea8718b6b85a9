package fsm

import "sort"

// queueIndex keeps queued task IDs per partition in submission order, so a
// scheduling pass reads the head of each partition without sorting the whole
// queue (tens of thousands of tasks) while Apply waits for the lock.
type queueIndex struct {
	byPart map[string][]qent
	meta   map[string]qmeta // task ID -> where it sits
	// bytes is the queued tasks' total file size, for admission control.
	bytes int64
}

type qent struct {
	seq uint64
	id  string
}

type qmeta struct {
	partition string
	seq       uint64
	size      int64
}

func newQueueIndex() *queueIndex {
	return &queueIndex{byPart: map[string][]qent{}, meta: map[string]qmeta{}}
}

func (q *queueIndex) len() int { return len(q.meta) }

func (q *queueIndex) has(id string) bool {
	_, ok := q.meta[id]
	return ok
}

func (q *queueIndex) add(t *Task) {
	if q.has(t.ID) {
		return
	}
	l := q.byPart[t.Partition]
	// New submissions carry the highest seq so far: appending is the common case.
	i := len(l)
	if i > 0 && l[i-1].seq > t.Seq {
		i = sort.Search(len(l), func(j int) bool { return l[j].seq > t.Seq })
	}
	l = append(l, qent{})
	copy(l[i+1:], l[i:])
	l[i] = qent{seq: t.Seq, id: t.ID}
	q.byPart[t.Partition] = l
	q.meta[t.ID] = qmeta{partition: t.Partition, seq: t.Seq, size: t.File.Size}
	q.bytes += t.File.Size
}

// remove finds the entry by its seq (the list is sorted by it) and drops
// it; the head, which is what scheduling and chaining take, goes without
// copying the rest, so draining a partition of 100k tasks stays linear.
func (q *queueIndex) remove(id string) {
	m, ok := q.meta[id]
	if !ok {
		return
	}
	delete(q.meta, id)
	q.bytes -= m.size
	l := q.byPart[m.partition]
	i := sort.Search(len(l), func(j int) bool { return l[j].seq >= m.seq })
	for i < len(l) && l[i].id != id { // equal seqs: scan the few ties
		i++
	}
	switch {
	case i >= len(l):
		return
	case i == 0:
		l = l[1:]
	default:
		l = append(l[:i], l[i+1:]...)
	}
	if len(l) == 0 {
		delete(q.byPart, m.partition)
	} else {
		q.byPart[m.partition] = l
	}
}

// QueuedBytes is the total file size of the queued tasks.
func (s *State) QueuedBytes() int64 { return s.queue.bytes }

// QueuedIn is the number of queued tasks of one partition.
func (s *State) QueuedIn(partition string) int { return len(s.queue.byPart[partition]) }

// QueuedHeads returns up to k of the oldest queued tasks of every partition
// (all of them when k <= 0), ordered by submission. A scheduler that can place
// at most k tasks needs nothing beyond these.
func (s *State) QueuedHeads(k int) []*Task {
	var out []*Task
	for _, l := range s.queue.byPart {
		n := len(l)
		if k > 0 && n > k {
			n = k
		}
		for _, e := range l[:n] {
			out = append(out, s.Tasks[e.id])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}
