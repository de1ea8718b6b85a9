package chunk

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

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
