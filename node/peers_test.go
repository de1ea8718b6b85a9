package node

import (
	"fmt"
	"testing"
)

func TestRendezvousIsStableAndMovesLittle(t *testing.T) {
	var cands []peer
	for i := 0; i < 5; i++ {
		cands = append(cands, peer{ID: fmt.Sprintf("n%d", i), HTTP: fmt.Sprintf("127.0.0.1:%d", 9000+i)})
	}
	moved := 0
	const keys = 400
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("file-%d", k)
		a := rendezvous(key, cands)
		// Order of the input must not matter.
		rev := []peer{cands[4], cands[3], cands[2], cands[1], cands[0]}
		b := rendezvous(key, rev)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("key %s: ranking depends on input order: %v vs %v", key, a, b)
			}
		}
		// Losing one node only moves the keys whose top choice it was.
		without := rendezvous(key, cands[:4])
		if a[0].ID != "n4" && without[0] != a[0] {
			t.Fatalf("key %s: top choice %s moved to %s when n4 left", key, a[0].ID, without[0].ID)
		}
		if a[0].ID == "n4" {
			moved++
		}
	}
	// Each node should win roughly a fifth of the keys.
	if moved < keys/10 || moved > keys*3/10 {
		t.Fatalf("n4 won %d of %d keys; want about %d", moved, keys, keys/5)
	}
}
