package indexer

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/indexer/chunk"
	"github.com/ragnode/ragnode/indexer/embed"
)

// TestChunkCapFailsTheFileOnce: a text that makes more chunks than the cap
// fails its task permanently, naming the cap, before anything is embedded
// or written.
func TestChunkCapFailsTheFileOnce(t *testing.T) {
	sink := &captureSink{}
	p, err := New(Config{Chunk: chunk.Options{Size: 64, Overlap: 0}, MaxChunks: 10}, embed.NewLexical(64), sink)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("raft leader follower quorum gossip member shard chunk vector index. ", 400)
	_, err = p.Run(context.Background(), Input{TaskID: "t", Partition: "p", FileID: "big.txt", FileName: "big.txt", Data: []byte(body), GPU: -1}, nil)
	if !errors.Is(err, ErrTooManyChunks) || !IsPermanent(err) || !strings.Contains(err.Error(), "limit per file is 10") {
		t.Fatalf("over the cap: %v", err)
	}
	if sink.recs != nil {
		t.Fatalf("%d records written for a refused file", len(sink.recs))
	}
	// Under the cap the same pipeline indexes.
	if _, err := p.Run(context.Background(), Input{TaskID: "t2", Partition: "p", FileID: "small.txt", FileName: "small.txt", Data: []byte("a short note about raft."), GPU: -1}, nil); err != nil {
		t.Fatal(err)
	}
}
