package chunk

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// units breaks a section into pieces no larger than maxUnit tokens,
// preferring the coarsest boundary that works; only a word too long for a
// chunk is cut, by runes, into pieces of up to Size tokens. Every byte of
// text is counted at most once per level (paragraph, line, sentence, word)
// and no text is counted that its length already rules out, so the work
// is linear in len(text) and each count is bounded by the budget.
func (s *splitter) units(text string) ([]unit, error) {
	var us []unit
	add := func(t, sep string, n int) {
		if len(us) == 0 {
			sep = ""
		}
		us = append(us, unit{text: t, sep: sep, tokens: n})
	}
	for _, para := range paragraphs(text) {
		sep := "\n\n"
		n, ok, err := s.fits(para, s.maxUnit)
		if err != nil {
			return nil, err
		}
		if ok {
			add(para, sep, n)
			continue
		}
		for _, line := range strings.Split(para, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			n, ok, err := s.fits(line, s.maxUnit)
			if err != nil {
				return nil, err
			}
			if ok {
				add(line, sep, n)
				sep = "\n"
				continue
			}
			for _, sent := range sentences(line) {
				n, ok, err := s.fits(sent, s.maxUnit)
				if err != nil {
					return nil, err
				}
				if ok {
					add(sent, sep, n)
					sep = " "
					continue
				}
				for _, w := range strings.Fields(sent) {
					n, ok, err := s.fits(w, s.maxUnit)
					if err != nil {
						return nil, err
					}
					if ok {
						add(w, sep, n)
						sep = " "
						continue
					}
					pieces, err := s.cutWord(w)
					if err != nil {
						return nil, err
					}
					for _, p := range pieces {
						add(p.text, sep, p.tokens)
						sep = ""
					}
					sep = " "
				}
			}
			sep = "\n"
		}
	}
	return us, nil
}

// fits counts text when its length leaves it a chance to be within budget:
// no token covers more than tokBytes bytes, so a longer text is over
// without counting, and a count is never asked of more than
// budget*tokBytes bytes, however long the text. Every count goes through
// here, so this is also where a cancelled Split notices.
func (s *splitter) fits(text string, budget int) (int, bool, error) {
	if err := s.stopped(); err != nil {
		return 0, false, err
	}
	if len(text) > s.budgetBytes(budget) {
		return 0, false, nil
	}
	n := s.tok.Count(text)
	return n, n <= budget, nil
}

// budgetBytes is the most bytes budget tokens can cover, saturating so an
// absurd Size cannot overflow into "nothing fits".
func (s *splitter) budgetBytes(budget int) int {
	if budget > math.MaxInt/s.tokBytes {
		return math.MaxInt
	}
	return budget * s.tokBytes
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
