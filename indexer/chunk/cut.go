package chunk

import "unicode/utf8"

// cutWord hard-cuts a run of text with no spaces (base64, URLs, CJK, a
// one-line CSV) into pieces of at most Size tokens, each as long as the
// budget allows, so such a run fills its chunks. Only a single rune that
// alone is over Size (an emoji at Size 1) makes a piece over budget.
func (s *splitter) cutWord(w string) ([]unit, error) {
	var out []unit
	guess := s.opt.Size // bytes: a first probe that surely fits
	for w != "" {
		end, n, err := s.longestFit(w, guess)
		if err != nil {
			return nil, err
		}
		out = append(out, unit{text: w[:end], tokens: n})
		w, guess = w[end:], end
	}
	return out, nil
}

// longestFit returns the longest rune-aligned prefix of w within Size
// tokens, and its count; at least one rune. It assumes counts grow with
// the prefix, which BPE does to within a token.
//
// It probes prefix counts inside a shrinking bracket (lo fits, hi is over):
// first guess (the previous piece's length: on uniform text the answer,
// confirmed by one more probe), then where the last probe's bytes per
// token says the budget ends, with a bisection every fourth probe so the
// worst case stays logarithmic. No probe is longer than Size*tokBytes
// bytes, so cutting a word is linear in its length.
func (s *splitter) longestFit(w string, guess int) (int, int, error) {
	limit := alignDown(w, min(len(w), s.budgetBytes(s.opt.Size)))
	if limit == 0 {
		limit = firstRune(w)
	}
	lo, loN, hi := 0, 0, limit+1
	g := alignDown(w, min(max(guess, 1), limit))
	if g == 0 {
		g = firstRune(w)
	}
	for probe := 0; ; probe++ {
		if err := s.stopped(); err != nil {
			return 0, 0, err
		}
		n := s.tok.Count(w[:g])
		if n <= s.opt.Size {
			lo, loN = g, n
		} else {
			hi = g
		}
		next := lo + firstRune(w[lo:])
		if lo == limit || next >= hi {
			break
		}
		t := int(min(float64(g)*float64(s.opt.Size)/float64(max(n, 1)), float64(limit)))
		if probe%4 == 3 && hi <= limit {
			t = lo + (hi-lo)/2
		}
		g = max(alignDown(w, min(t, hi-1)), next)
	}
	if lo == 0 {
		// Not even one rune fits: it goes alone, over budget.
		end := firstRune(w)
		return end, s.tok.Count(w[:end]), nil
	}
	return lo, loN, nil
}

// alignDown moves i back to the start of the rune it falls in.
func alignDown(w string, i int) int {
	for i > 0 && i < len(w) && !utf8.RuneStart(w[i]) {
		i--
	}
	return i
}

func firstRune(w string) int {
	_, n := utf8.DecodeRuneInString(w)
	return n
}
