// Package chunk splits loaded documents into token-bounded, overlapping
// chunks for embedding.
//
// Guarantees of Split:
//   - Every chunk has Tokens <= Options.Size, counted by the given Tokenizer
//     on the exact chunk Text, except a chunk of one rune that alone counts
//     more (an emoji at Size 1). There is no heading-prefix slack: the
//     heading path travels in Chunk.Headings, not in Text, so callers that
//     prepend it for embedding must budget for it themselves.
//   - A markdown ATX heading line ("#".."######", outside fenced code)
//     starts a new section. A chunk never spans two sections or two pages;
//     its Headings is the heading path in force where it starts and Page is
//     the page it comes from (0 for formats without pages). The heading line
//     itself is the start of the first chunk of its section. A section that
//     holds nothing but its heading is folded into the following section
//     when that one is nested under it ("# Guide" + "## Install").
//   - Inside a section, text is cut at paragraph boundaries, then lines,
//     then sentences, then words; a single word longer than a chunk is cut
//     by runes into pieces that fill a chunk each (the last piece may share
//     its chunk with what follows). Every word of the input is in some
//     chunk, in order, except in sections dropped for being under MinTokens
//     (see below).
//   - Consecutive chunks of one section overlap: the next chunk starts with
//     whole words from the end of the previous one, at most Overlap tokens
//     and at most half of the previous chunk's words. A chunk that the
//     overlap would push over Size (a piece of a cut word) goes without.
//   - A section whose whole text is under MinTokens tokens (a lone heading,
//     "TBD") is dropped, unless that would leave nothing: a document with
//     any words always yields at least one chunk (all of its small chunks
//     are kept then). A small piece of a longer section is content, not
//     noise: it is merged into the previous chunk when that stays within
//     Size, and kept as its own chunk otherwise (rare: it needs overlap off
//     or a neighbour that fills a chunk on its own).
//   - Output is deterministic; Index runs 0..n-1.
//   - Work is linear in the document's size whatever its shape, and a
//     cancelled context stops Split within one token count.
package chunk

import (
	"context"

	"github.com/ragnode/ragnode/indexer/loader"
)

// Options controls chunk sizes, in tokens. Zero fields take the defaults;
// a negative Overlap disables overlap and a negative MinTokens keeps every
// non-empty chunk.
type Options struct {
	Size      int // target (and maximum) tokens per chunk, default 512
	Overlap   int // tokens repeated from the previous chunk, default 100, capped at Size/2
	MinTokens int // drop chunks smaller than this, default 5
}

// Chunk is one piece of a document.
type Chunk struct {
	Index    int
	Text     string
	Page     int
	Headings []string
	Tokens   int
}

func (o Options) normalized() Options {
	if o.Size <= 0 {
		o.Size = 512
	}
	switch {
	case o.Overlap == 0:
		o.Overlap = 100
	case o.Overlap < 0:
		o.Overlap = 0
	}
	o.Overlap = min(o.Overlap, o.Size/2)
	switch {
	case o.MinTokens == 0:
		o.MinTokens = 5
	case o.MinTokens < 0:
		o.MinTokens = 0
	}
	return o
}

// Split cuts doc into chunks. A nil tok uses NewTokenizer, falling back to
// an estimate of one token per four bytes if the BPE ranks cannot load.
//
// Its work is linear in the size of doc whatever the text's shape (one
// 20 MB word, a line of digits), and it checks ctx before every token
// count, so a cancelled Split returns within milliseconds with an error
// wrapping ErrStopped and ctx.Err().
func Split(ctx context.Context, doc loader.Document, opt Options, tok Tokenizer) ([]Chunk, error) {
	opt = opt.normalized()
	if tok == nil {
		var err error
		if tok, err = NewTokenizer(); err != nil {
			tok = approxCounter{}
		}
	}
	s := newSplitter(ctx, opt, tok)
	var all, kept []Chunk
	for _, seg := range segments(doc) {
		pieces, err := s.splitSegment(seg)
		if err != nil {
			return nil, err
		}
		for _, p := range pieces {
			all = append(all, p.Chunk)
			if p.keep || p.Tokens >= opt.MinTokens {
				kept = append(kept, p.Chunk)
			}
		}
	}
	if len(kept) == 0 {
		kept = all
	}
	for i := range kept {
		kept[i].Index = i
	}
	return kept, nil
}
