package fsm

import "sort"

// queueIndex keeps queued task IDs per partition in submission order, so a
// scheduling pass reads the head of each partition without sorting the whole
// queue (tens of thousands of tasks) while Apply waits for the lock.
type queueIndex struct {
	byPart map[string][]qent
	part   map[string]string // task ID -> partition
	// size and bytes give admission control the queued bytes without a
	// scan: task ID -> file size, and the total.
	size  map[string]int64
	bytes int64
}

type qent struct {
	seq uint64
	id  string
}

func newQueueIndex() *queueIndex {
	return &queueIndex{byPart: map[string][]qent{}, part: map[string]string{}, size: map[string]int64{}}
}

func (q *queueIndex) len() int { return len(q.part) }

func (q *queueIndex) has(id string) bool {
	_, ok := q.part[id]
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
	q.part[t.ID] = t.Partition
	q.size[t.ID] = t.File.Size
	q.bytes += t.File.Size
}

func (q *queueIndex) remove(id string) {
	p, ok := q.part[id]
	if !ok {
		return
	}
	delete(q.part, id)
	q.bytes -= q.size[id]
	delete(q.size, id)
	l := q.byPart[p]
	for i := range l {
		if l[i].id == id {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(q.byPart, p)
	} else {
		q.byPart[p] = l
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
