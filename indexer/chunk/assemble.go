package chunk

import (
	"context"
	"strings"
)

// unit is an indivisible piece of a section; sep is what joins it to the
// piece before it.
type unit struct {
	text   string
	sep    string
	tokens int
}

type splitter struct {
	opt      Options
	tok      Tokenizer
	maxUnit  int
	tokBytes int // most bytes one token covers
	ctx      context.Context
	done     <-chan struct{}
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

func (s *splitter) splitSegment(seg segment) ([]piece, error) {
	units, err := s.units(seg.text)
	if err != nil {
		return nil, err
	}
	var out []piece
	overlap, overlapTok := "", 0
	for i := 0; i < len(units); {
		if err := s.stopped(); err != nil {
			return nil, err
		}
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
		n := units[i].tokens
		if j-i > 1 || overlap != "" {
			n = s.tok.Count(text)
		}
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
			if err := s.stopped(); err != nil {
				return nil, err
			}
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
	return out, nil
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
