package chunk

import (
	"unicode"
	"unicode/utf8"
)

// nextPiece returns the byte length of the cl100k pre-tokenizer piece that
// starts s (non-empty, valid UTF-8). It is the regular expression
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// written out by hand: regexp2, which tiktoken-go runs it with, costs about
// a microsecond per piece, more than the BPE itself. Each case below is one
// alternative, tried in the pattern's order with its backtracking resolved;
// the differential test and fuzz target hold it to the library's output.
func nextPiece(s string) int {
	r0, n0 := utf8.DecodeRuneInString(s)
	r1, n1 := utf8.DecodeRuneInString(s[n0:])
	if n1 == 0 {
		r1 = -1
	}
	if r0 == '\'' && r1 >= 0 {
		if n := contraction(s[n0:]); n > 0 {
			return n0 + n
		}
	}
	switch {
	case isLetter(r0):
		return n0 + runOf(s[n0:], isLetter, -1)
	case r0 != '\r' && r0 != '\n' && !isNumber(r0) && isLetter(r1):
		return n0 + n1 + runOf(s[n0+n1:], isLetter, -1)
	case isNumber(r0):
		return n0 + runOf(s[n0:], isNumber, 2)
	case r0 == ' ' && isOther(r1):
		n := n0 + n1 + runOf(s[n0+n1:], isOther, -1)
		return n + runOf(s[n:], isNewline, -1)
	case isOther(r0):
		n := n0 + runOf(s[n0:], isOther, -1)
		return n + runOf(s[n:], isNewline, -1)
	}
	// r0 is white space: \s*[\r\n]+ ends after the run's last newline;
	// otherwise \s+(?!\S) leaves the run's last rune to start the next
	// piece (" word"), unless the run ends the text or is a single rune.
	end := n0 + runOf(s[n0:], unicode.IsSpace, -1)
	lastNL, lastRune := -1, 0
	for i, r := range s[:end] {
		if r == '\r' || r == '\n' {
			lastNL = i
		}
		lastRune = i
	}
	switch {
	case lastNL >= 0:
		return lastNL + 1
	case end == len(s) || lastRune == 0:
		return end
	default:
		return lastRune
	}
}

// contraction matches (?i:s|t|re|ve|m|ll|d) at the start of s, after the
// apostrophe. regexp2 folds case with unicode.ToLower on the input, so
// that is the comparison here too.
func contraction(s string) int {
	r1, n1 := utf8.DecodeRuneInString(s)
	var want rune
	switch unicode.ToLower(r1) {
	case 's', 't', 'm', 'd':
		return n1
	case 'r', 'v':
		want = 'e'
	case 'l':
		want = 'l'
	default:
		return 0
	}
	if r2, n2 := utf8.DecodeRuneInString(s[n1:]); n2 > 0 && unicode.ToLower(r2) == want {
		return n1 + n2
	}
	return 0
}

// runOf returns the byte length of the longest prefix of s whose runes all
// satisfy in, stopping after max runes when max >= 0.
func runOf(s string, in func(rune) bool, max int) int {
	for i, r := range s {
		if max == 0 || !in(r) {
			return i
		}
		max--
	}
	return len(s)
}

func isLetter(r rune) bool  { return r >= 0 && unicode.IsLetter(r) }
func isNumber(r rune) bool  { return r >= 0 && unicode.IsNumber(r) }
func isNewline(r rune) bool { return r == '\r' || r == '\n' }

// isOther is [^\s\p{L}\p{N}]; -1 stands for the end of the text.
func isOther(r rune) bool {
	return r >= 0 && !unicode.IsSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r)
}
