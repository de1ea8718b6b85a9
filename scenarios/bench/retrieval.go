package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"

	"github.com/ragnode/ragnode/indexer/embed"
	"github.com/ragnode/ragnode/indexer/store"
)

// benchRetrieval measures retrieval quality of the local store's search
// modes (dense with the built-in lexical embedder, BM25, hybrid RRF) on
// real prose: the package documentation of part of Go's standard library
// (testdata/godocs.txt), cut into paragraph chunks. Each query is derived
// from one sentence found in exactly one chunk, so that chunk is the known
// answer; three query sets paraphrase it more and more loosely.
func benchRetrieval(ctx context.Context, tb *benchTB) []section {
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "testdata", "godocs.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	chunks := paragraphChunks(string(data), 500, 1000)
	sets := deriveQueries(chunks, scale(60, 10))
	qdata, err := os.ReadFile(filepath.Join(filepath.Dir(file), "testdata", "godocs_questions.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	hand, err := handQueries(string(qdata), chunks)
	if err != nil {
		tb.Fatal(err)
	}
	sets = append([]querySet{hand}, sets...)

	emb := embed.NewLexical(0)
	st, err := store.OpenLocal(filepath.Join(tb.TempDir(), "chunks.db"))
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	texts := make([]string, len(chunks))
	for i, c := range chunks {
		texts[i] = c.text
	}
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		tb.Fatal(err)
	}
	recs := make([]store.Record, len(chunks))
	for i, c := range chunks {
		recs[i] = store.Record{ID: store.ChunkID("docs", c.doc, i), Partition: "docs", FileID: c.doc,
			Index: i, Text: c.text, Vector: vecs[i]}
	}
	if err := st.Upsert(ctx, recs); err != nil {
		tb.Fatal(err)
	}

	sec := section{
		Title: "Retrieval quality: dense vs BM25 vs hybrid (local store)",
		Setup: fmt.Sprintf("`go run ./scenarios/bench -only retrieval`. Corpus: package docs of %d Go standard-library packages "+
			"(scenarios/bench/testdata/godocs.txt), %d paragraph chunks of 500–1000 bytes. Dense uses the built-in lexical "+
			"embedder (%s); BM25 k1=1.2, b=0.75; hybrid is RRF with k=%d over %d candidates per list. Each query comes "+
			"from one sentence found in exactly one chunk (the answer): *hand-written* are natural questions "+
			"(testdata/godocs_questions.txt) whose answer chunk is the one holding a given passage; *keywords* keeps every other non-stop word of it, "+
			"*short* keeps the first 4 of those, *mixed* the first 6 with every other one inflected (plural/singular, -ed), *inflected* all 8 inflected.",
			countDocs(chunks), len(chunks), emb.Name(), store.DefaultRRFK, max(4*10, store.MinCandidateDepth)),
		Header: []string{"query set", "queries", "dense recall@5", "BM25 recall@5", "hybrid recall@5", "dense MRR@10", "BM25 MRR@10", "hybrid MRR@10"},
	}
	for _, set := range sets {
		row := []string{set.name, fmt.Sprint(len(set.queries))}
		var mrr []string
		for _, mode := range []store.Mode{store.ModeDense, store.ModeBM25, store.ModeHybrid} {
			hit5, rr := 0, 0.0
			for _, q := range set.queries {
				v, err := emb.Embed(ctx, []string{q.text})
				if err != nil {
					tb.Fatal(err)
				}
				hits, err := st.Search(ctx, store.Query{Vector: v[0], Text: q.text, Mode: mode, TopK: 10})
				if err != nil {
					tb.Fatal(err)
				}
				want := recs[q.chunk].ID
				for rank, h := range hits {
					if h.ID == want {
						if rank < 5 {
							hit5++
						}
						rr += 1 / float64(rank+1)
						break
					}
				}
			}
			n := float64(len(set.queries))
			row = append(row, fmt.Sprintf("%.3f", float64(hit5)/n))
			mrr = append(mrr, fmt.Sprintf("%.3f", rr/n))
		}
		sec.Rows = append(sec.Rows, append(row, mrr...))
	}
	var ex []string
	for _, set := range sets {
		if len(set.queries) > 0 {
			ex = append(ex, fmt.Sprintf("%s: %q", set.name, set.queries[0].text))
		}
	}
	sec.Notes = append(sec.Notes, "Example queries — "+strings.Join(ex, "; ")+".")
	return []section{sec}
}

// handQueries parses "question | passage" lines; each passage must occur
// in exactly one chunk, which becomes the question's answer.
func handQueries(data string, chunks []docChunk) (querySet, error) {
	set := querySet{name: "hand-written"}
	var bad []string
	for _, line := range strings.Split(data, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		q, passage, ok := strings.Cut(line, " | ")
		if !ok {
			bad = append(bad, "no ' | ': "+line)
			continue
		}
		var in []int
		for i, c := range chunks {
			if strings.Contains(c.text, passage) {
				in = append(in, i)
			}
		}
		if len(in) != 1 {
			bad = append(bad, fmt.Sprintf("%q is in %d chunks", passage, len(in)))
			continue
		}
		set.queries = append(set.queries, query{q, in[0]})
	}
	if len(bad) > 0 {
		return set, fmt.Errorf("questions: %s", strings.Join(bad, "; "))
	}
	return set, nil
}

type docChunk struct {
	doc, text string
}

// paragraphChunks splits "=== name" documents into chunks of whole
// paragraphs (blank-line separated), merged until at least lo bytes and
// kept under hi where a paragraph allows.
func paragraphChunks(data string, lo, hi int) []docChunk {
	var out []docChunk
	doc := ""
	var cur, para []string
	size := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, docChunk{doc, strings.Join(cur, "\n\n")})
		}
		cur, size = nil, 0
	}
	addPara := func() {
		p := strings.Join(para, "\n")
		para = nil
		if p == "" || doc == "" {
			return
		}
		if size > 0 && size+len(p) > hi {
			flush()
		}
		cur = append(cur, p)
		size += len(p)
		if size >= lo {
			flush()
		}
	}
	for _, line := range strings.Split(data, "\n") {
		if strings.HasPrefix(line, "#") && doc == "" { // the file's header
			continue
		}
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			flush()
			doc = name
			para = nil
			continue
		}
		if strings.TrimSpace(line) != "" {
			para = append(para, line)
			continue
		}
		addPara()
	}
	addPara()
	flush()
	return out
}

func countDocs(chunks []docChunk) int {
	seen := map[string]bool{}
	for _, c := range chunks {
		seen[c.doc] = true
	}
	return len(seen)
}

type query struct {
	text  string
	chunk int // index of the answer chunk
}

type querySet struct {
	name    string
	queries []query
}

// queryStop are words dropped from derived queries: too common to say
// which chunk a question is about.
var queryStop = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an and are as at be but by for if in into is it no not of on or such that the
		their then there these they this to was will with can may must should would could does do has have had its
		which when where what who how also than so one any all each other used use using see`) {
		queryStop[w] = true
	}
}

// deriveQueries picks up to n chunks, evenly spread, that hold a sentence
// of at least 8 content words found in no other chunk, and derives the
// three query sets from it.
func deriveQueries(chunks []docChunk, n int) []querySet {
	type cand struct {
		words []string
		chunk int
	}
	var cands []cand
	for i, c := range chunks {
		var best []string
		for _, s := range sentences(c.text) {
			w := contentWords(s)
			if len(w) < 8 || len(w) <= len(best) || !unique(chunks, s, i) {
				continue
			}
			best = w
		}
		if best != nil {
			cands = append(cands, cand{best, i})
		}
	}
	keywords := querySet{name: "keywords"}
	inflected := querySet{name: "inflected"}
	short := querySet{name: "short (4 words)"}
	mixed := querySet{name: "mixed (6 words, every other inflected)"}
	for j := 0; j < n && j < len(cands); j++ {
		c := cands[j*len(cands)/min(n, len(cands))]
		var kept []string
		for k := 0; k < len(c.words) && len(kept) < 8; k += 2 {
			kept = append(kept, c.words[k])
		}
		keywords.queries = append(keywords.queries, query{strings.Join(kept, " "), c.chunk})
		var infl []string
		for _, w := range kept {
			infl = append(infl, inflect(w))
		}
		inflected.queries = append(inflected.queries, query{strings.Join(infl, " "), c.chunk})
		short.queries = append(short.queries, query{strings.Join(kept[:min(4, len(kept))], " "), c.chunk})
		var mix []string
		for k, w := range kept[:min(6, len(kept))] {
			if k%2 == 1 {
				w = infl[k]
			}
			mix = append(mix, w)
		}
		mixed.queries = append(mixed.queries, query{strings.Join(mix, " "), c.chunk})
	}
	return []querySet{keywords, short, mixed, inflected}
}

// sentences splits on sentence ends, joining wrapped lines.
func sentences(text string) []string {
	text = strings.Join(strings.Fields(text), " ")
	var out []string
	for _, s := range strings.SplitAfter(text, ". ") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// contentWords lowercases s and keeps its alphabetic words of 3+ letters
// that are not in queryStop.
func contentWords(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if len(w) >= 3 && !queryStop[w] {
			out = append(out, w)
		}
	}
	return out
}

// unique reports whether sentence s occurs in chunk i only.
func unique(chunks []docChunk, s string, i int) bool {
	for j, c := range chunks {
		if j != i && strings.Contains(strings.Join(strings.Fields(c.text), " "), s) {
			return false
		}
	}
	return true
}

// inflect changes a word's inflection the way a person rephrasing a
// question might: plural to singular, verb to past tense, singular to
// plural.
func inflect(w string) string {
	switch {
	case strings.HasSuffix(w, "ies"):
		return strings.TrimSuffix(w, "ies") + "y"
	case strings.HasSuffix(w, "ss"):
		return w + "es"
	case strings.HasSuffix(w, "s"):
		return strings.TrimSuffix(w, "s")
	case strings.HasSuffix(w, "e"):
		return w + "d"
	case strings.HasSuffix(w, "ed"), strings.HasSuffix(w, "ing"):
		return w
	}
	return w + "s"
}
