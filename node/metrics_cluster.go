package node

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ragnode/ragnode/fsm"
)

// Ledger-derived series beyond the state counts (metrics.go): tasks by
// partition, the replication backlog and Raft contact per peer. All are
// read at scrape time from this node's ledger copy and Raft, bounded by
// partitionSeriesMax partitions and by the members.

// partitionSeriesMax bounds the partition label: the largest partitions
// by task count get their own series, the rest are summed under
// partition="_other", so a cluster with 100,000 partitions still exports
// at most (partitionSeriesMax+1) x len(fsm.TaskStates) series.
const partitionSeriesMax = 20

var (
	descPartTasks = prometheus.NewDesc("ragnode_partition_tasks", "Tasks in the ledger by partition and state (the largest partitions; the rest under _other).", []string{"partition", "state"}, nil)
	descBacklog   = prometheus.NewDesc("ragnode_replication_backlog", "Blobs or live files with fewer alive copies than the replication factor (capped by alive nodes).", []string{"kind"}, nil)
	descContact   = prometheus.NewDesc("ragnode_raft_peer_last_contact_seconds", "Time since the leader last heard from a peer (on a follower: from the leader).", []string{"peer"}, nil)
)

// partitionCounts returns per-partition counts by state, the largest
// partitionSeriesMax kept by name and the rest merged under "_other".
// The caller holds the ledger's read lock.
func partitionCounts(s *fsm.State) map[string]map[fsm.TaskState]int {
	by := map[string]map[fsm.TaskState]int{}
	size := map[string]int{}
	for _, t := range s.Tasks {
		m := by[t.Partition]
		if m == nil {
			m = map[fsm.TaskState]int{}
			by[t.Partition] = m
		}
		m[t.State]++
		size[t.Partition]++
	}
	if len(by) <= partitionSeriesMax {
		return by
	}
	parts := make([]string, 0, len(by))
	for p := range by {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool {
		if size[parts[i]] != size[parts[j]] {
			return size[parts[i]] > size[parts[j]]
		}
		return parts[i] < parts[j]
	})
	other := map[fsm.TaskState]int{}
	for _, p := range parts[partitionSeriesMax:] {
		for st, v := range by[p] {
			other[st] += v
		}
		delete(by, p)
	}
	by["_other"] = other
	return by
}

// replicationBacklog counts what the leader's repair passes would work on
// (the conditions of blobRepairs and chunkRepairs, counted rather than
// turned into jobs). The caller holds the ledger's read lock.
func (n *Node) replicationBacklog(s *fsm.State) (blobs, chunks int) {
	alive := aliveCount(s, "")
	wantBlob := min(n.cfg.Replicas, alive)
	wantChunk := min(n.cfg.Indexer.ChunkReplicas, alive)
	seen := make(map[string]bool, len(s.Blobs))
	for _, f := range s.Files {
		if h := f.Ref.Hash; h != "" && !seen[h] {
			seen[h] = true
			if b := s.Blobs[h]; b != nil && countAlive(s, b.Holders) < wantBlob {
				blobs++
			}
		}
		if f.LiveTask != "" && f.LiveChunks > 0 && len(f.ChunkHolders) > 0 && countAlive(s, f.ChunkHolders) < wantChunk {
			chunks++
		}
	}
	return blobs, chunks
}

// collectCluster sends the series above; called by ledgerCollector.
func (c ledgerCollector) collectCluster(ch chan<- prometheus.Metric, s *fsm.State, tot *ledgerTotals) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for p, counts := range tot.parts {
		for _, st := range fsm.TaskStates {
			gauge(descPartTasks, float64(counts[st]), p, string(st))
		}
	}
	gauge(descBacklog, float64(tot.blobs), "blob")
	if n.chunks != nil && n.chunks.copies() != nil {
		gauge(descBacklog, float64(tot.chunks), "chunk")
	}
	name := func(id string) string {
		if nd := s.Nodes[id]; nd != nil && nd.Name != "" {
			return nd.Name
		}
		return id
	}
	if ap := n.apState.Load(); ap != nil {
		for id, ss := range ap.Servers {
			if string(id) != n.id {
				gauge(descContact, ss.Stats.LastContact.Seconds(), name(string(id)))
			}
		}
	} else if _, lid := n.raft.LeaderWithID(); lid != "" && string(lid) != n.id {
		gauge(descContact, time.Since(n.raft.LastContact()).Seconds(), name(string(lid)))
	}
}

// countAlive is len(aliveHolders(s, holders)) without building the slice.
func countAlive(s *fsm.State, holders []string) int {
	k := 0
	for _, h := range holders {
		if nd := s.Nodes[h]; nd != nil && nd.Status == fsm.NodeAlive {
			k++
		}
	}
	return k
}
