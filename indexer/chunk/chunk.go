// Package chunk splits loaded documents into token-bounded, overlapping
// chunks for embedding.
//
// Guarantees of Split:
//   - Every chunk has Tokens <= Options.Size, counted by the given Tokenizer
//     on the exact chunk Text. There is no heading-prefix slack: the heading
//     path travels in Chunk.Headings, not in Text, so callers that prepend it
//     for embedding must budget for it themselves.
//   - A markdown ATX heading line ("#".."######", outside fenced code)
//     starts a new section. A chunk never spans two sections or two pages;
//     its Headings is the heading path in force where it starts and Page is
//     the page it comes from (0 for formats without pages). The heading line
//     itself is the start of the first chunk of its section. A section that
//     holds nothing but its heading is folded into the following section
//     when that one is nested under it ("# Guide" + "## Install").
//   - Inside a section, text is cut at paragraph boundaries, then lines,
//     then sentences, then words; a single word longer than a chunk is cut
//     by runes. Every word of the input is in some chunk, in order, except
//     in sections dropped for being under MinTokens (see below).
//   - Consecutive chunks of one section overlap: the next chunk starts with
//     whole words from the end of the previous one, at most Overlap tokens
//     and at most half of the previous chunk's words.
//   - A section whose whole text is under MinTokens tokens (a lone heading,
//     "TBD") is dropped, unless that would leave nothing: a document with
//     any words always yields at least one chunk (all of its small chunks
//     are kept then). A small piece of a longer section is content, not
//     noise: it is merged into the previous chunk when that stays within
//     Size, and kept as its own chunk otherwise (rare: it needs overlap off
//     or a neighbour that fills a chunk on its own).
//   - Output is deterministic; Index runs 0..n-1.
package chunk

import (
	"strings"
	"unicode"
	"unicode/utf8"

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
func Split(doc loader.Document, opt Options, tok Tokenizer) []Chunk {
	opt = opt.normalized()
	if tok == nil {
		var err error
		if tok, err = NewTokenizer(); err != nil {
			tok = approxCounter{}
		}
	}
	s := splitter{opt: opt, tok: tok, maxUnit: opt.Size - opt.Overlap}
	var all, kept []Chunk
	for _, seg := range segments(doc) {
		for _, p := range s.splitSegment(seg) {
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
	return kept
}

type segment struct {
	page     int
	headings []string
	text     string
	bodyless bool // only a heading line
}

// segments cuts the document at headings and page boundaries.
func segments(doc loader.Document) []segment {
	var segs []segment
	type level struct {
		n    int
		text string
	}
	var stack []level
	path := func() []string {
		if len(stack) == 0 {
			return nil
		}
		p := make([]string, len(stack))
		for i, l := range stack {
			p[i] = l.text
		}
		return p
	}
	for _, pg := range doc.Pages {
		var cur []string
		curPath := path()
		headingLine := false
		flush := func() {
			text := strings.Join(cur, "\n")
			if strings.TrimSpace(text) != "" {
				bodyless := headingLine && strings.TrimSpace(strings.Join(cur[1:], "\n")) == ""
				segs = append(segs, segment{page: pg.Number, headings: curPath, text: text, bodyless: bodyless})
			}
			cur = cur[:0]
		}
		fence := ""
		for _, line := range strings.Split(strings.ReplaceAll(pg.Text, "\r\n", "\n"), "\n") {
			if f := fenceMarker(line); f != "" {
				switch {
				case fence == "":
					fence = f
				case strings.HasPrefix(f, fence):
					fence = ""
				}
			}
			if fence == "" {
				if n, text, ok := parseHeading(line); ok {
					flush()
					for len(stack) > 0 && stack[len(stack)-1].n >= n {
						stack = stack[:len(stack)-1]
					}
					stack = append(stack, level{n, text})
					curPath = path()
					headingLine = true
					cur = append(cur, strings.TrimSpace(line))
					continue
				}
			}
			if len(cur) == 0 {
				headingLine = false
			}
			cur = append(cur, line)
		}
		flush()
	}
	// Fold heading-only sections into a nested follower on the same page.
	out := segs[:0]
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		if s.bodyless && i+1 < len(segs) {
			next := &segs[i+1]
			if next.page == s.page && isPrefix(s.headings, next.headings) {
				next.text = s.text + "\n\n" + next.text
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

func isPrefix(a, b []string) bool {
	if len(a) >= len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func fenceMarker(line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return ""
	}
	for _, m := range []string{"```", "~~~"} {
		if strings.HasPrefix(t, m) {
			n := 0
			for n < len(t) && t[n] == m[0] {
				n++
			}
			return t[:n]
		}
	}
	return ""
}

// parseHeading recognises CommonMark ATX headings: up to three spaces of
// indent, 1-6 '#', then a space (or nothing), optional closing '#'s.
func parseHeading(line string) (int, string, bool) {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 || !strings.HasPrefix(t, "#") {
		return 0, "", false
	}
	n := 0
	for n < len(t) && t[n] == '#' {
		n++
	}
	if n > 6 || (n < len(t) && t[n] != ' ' && t[n] != '\t') {
		return 0, "", false
	}
	text := strings.TrimSpace(t[n:])
	if trimmed := strings.TrimRight(text, "#"); trimmed == "" || strings.HasSuffix(trimmed, " ") || strings.HasSuffix(trimmed, "\t") {
		text = strings.TrimSpace(trimmed)
	}
	if text == "" {
		return 0, "", false
	}
	return n, text, true
}

// unit is an indivisible piece of a section; sep is what joins it to the
// piece before it.
type unit struct {
	text   string
	sep    string
	tokens int
}

type splitter struct {
	opt     Options
	tok     Tokenizer
	maxUnit int
}

func sepCost(sep string) int {
	if strings.Contains(sep, "\n") {
		return 1
	}
	return 0
}

type piece struct {
	Chunk
	overlap string
	i, j    int  // units[i:j] after the overlap
	keep    bool // a small tail of a longer section: never dropped
}

func (s *splitter) splitSegment(seg segment) []piece {
	units := s.units(seg.text)
	var out []piece
	overlap, overlapTok := "", 0
	for i := 0; i < len(units); {
		est := overlapTok
		j := i
		for j < len(units) {
			u := units[j]
			add := u.tokens
			if j > i || overlap != "" {
				add += sepCost(u.sep)
			}
			if j > i && est+add > s.opt.Size {
				break
			}
			if j == i && overlap != "" && est+add > s.opt.Size {
				overlap, overlapTok, est = "", 0, 0
				add = u.tokens
			}
			est += add
			j++
		}
		// The estimate assumes token counts add up; BPE merges across
		// joins can break that, so the real count has the last word.
		text := render(overlap, units[i:j])
		n := s.tok.Count(text)
		for n > s.opt.Size && j-i > 1 {
			j--
			text = render(overlap, units[i:j])
			n = s.tok.Count(text)
		}
		if n > s.opt.Size && overlap != "" {
			overlap = ""
			text = render("", units[i:j])
			n = s.tok.Count(text)
		}
		if strings.TrimSpace(text) != "" {
			out = append(out, piece{
				Chunk:   Chunk{Text: text, Page: seg.page, Headings: clonePath(seg.headings), Tokens: n},
				overlap: overlap, i: i, j: j,
			})
		}
		i = j
		overlap, overlapTok = "", 0
		if i < len(units) && s.opt.Overlap > 0 {
			overlap, overlapTok = s.tail(text)
		}
	}
	// Small pieces of a longer section (a remainder at its end, a short
	// paragraph before one too big to share a chunk) are content, not
	// noise: merge each into the previous chunk when that fits, else keep
	// it. The next chunk's overlap is a tail of the merged text still.
	if len(out) > 1 {
		merged := out[:1]
		for _, p := range out[1:] {
			last := &merged[len(merged)-1]
			if p.Tokens < s.opt.MinTokens {
				text := render(last.overlap, units[last.i:p.j])
				if n := s.tok.Count(text); n <= s.opt.Size {
					last.Text, last.Tokens, last.j = text, n, p.j
					continue
				}
			}
			merged = append(merged, p)
		}
		out = merged
		for k := range out {
			out[k].keep = true
		}
	}
	return out
}

func clonePath(p []string) []string {
	if len(p) == 0 {
		return nil
	}
	return append([]string(nil), p...)
}

func render(overlap string, us []unit) string {
	var b strings.Builder
	b.WriteString(overlap)
	for k, u := range us {
		if k > 0 || overlap != "" {
			b.WriteString(u.sep)
		}
		b.WriteString(u.text)
	}
	return b.String()
}

// tail returns whole words from the end of text worth at most Overlap
// tokens and at most half of its words, so a short chunk is not repeated
// wholesale.
func (s *splitter) tail(text string) (string, int) {
	words := strings.Fields(text)
	sum := 0
	k := len(words)
	for k > len(words)-len(words)/2 {
		c := s.tok.Count(" " + words[k-1])
		if sum+c > s.opt.Overlap {
			break
		}
		sum += c
		k--
	}
	if k == len(words) {
		return "", 0
	}
	t := strings.Join(words[k:], " ")
	return t, s.tok.Count(t)
}

// units breaks a section into pieces no larger than maxUnit tokens,
// preferring the coarsest boundary that works.
func (s *splitter) units(text string) []unit {
	var us []unit
	add := func(t, sep string, n int) {
		if len(us) == 0 {
			sep = ""
		}
		us = append(us, unit{text: t, sep: sep, tokens: n})
	}
	for _, para := range paragraphs(text) {
		sep := "\n\n"
		if n := s.tok.Count(para); n <= s.maxUnit {
			add(para, sep, n)
			continue
		}
		for _, line := range strings.Split(para, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			if n := s.tok.Count(line); n <= s.maxUnit {
				add(line, sep, n)
				sep = "\n"
				continue
			}
			for _, sent := range sentences(line) {
				if n := s.tok.Count(sent); n <= s.maxUnit {
					add(sent, sep, n)
					sep = " "
					continue
				}
				for _, w := range strings.Fields(sent) {
					if n := s.tok.Count(w); n <= s.maxUnit {
						add(w, sep, n)
						sep = " "
						continue
					}
					for _, piece := range s.cutWord(w) {
						add(piece, sep, s.tok.Count(piece))
						sep = ""
					}
					sep = " "
				}
			}
			sep = "\n"
		}
	}
	return us
}

// cutWord splits a run of text with no spaces (base64, URLs, CJK) into
// pieces of at most maxUnit tokens.
func (s *splitter) cutWord(w string) []string {
	var out []string
	for w != "" {
		n := min(utf8.RuneCountInString(w), s.maxUnit)
		for {
			end := runeOffset(w, n)
			if n <= 1 || s.tok.Count(w[:end]) <= s.maxUnit {
				out = append(out, w[:end])
				w = w[end:]
				break
			}
			n = n * 3 / 4
		}
	}
	return out
}

func runeOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

// paragraphs splits on blank lines and drops empty ones.
func paragraphs(text string) []string {
	var out []string
	var cur []string
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				out = append(out, strings.Join(cur, "\n"))
				cur = cur[:0]
			}
			continue
		}
		cur = append(cur, strings.TrimRight(line, " \t"))
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, "\n"))
	}
	return out
}

// sentences splits a line after words ending in sentence punctuation
// (optionally followed by closing quotes or brackets).
func sentences(line string) []string {
	var out []string
	var cur []string
	for _, w := range strings.Fields(line) {
		cur = append(cur, w)
		if endsSentence(w) {
			out = append(out, strings.Join(cur, " "))
			cur = cur[:0]
		}
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, " "))
	}
	return out
}

func endsSentence(w string) bool {
	w = strings.TrimRightFunc(w, func(r rune) bool {
		return r == '"' || r == '\'' || r == ')' || r == ']' || r == '”' || r == '’' || r == '»'
	})
	r, _ := utf8.DecodeLastRuneInString(w)
	return r == '…' || unicode.Is(unicode.STerm, r)
}
