package store

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTokenBytes drops longer tokens (base64 blobs, hashes), as the standard
// tokenizers of Lucene and Milvus do at 255.
const maxTokenBytes = 255

// englishStopWords is Lucene's English stop set, the list Milvus's
// "_english_" stop filter uses.
var englishStopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be but by for if in into is it no not of on or
		such that the their then there these they this to was will with`) {
		m[w] = true
	}
	return m
}()

// analyze tokenizes text the way OpenRAG's Milvus BM25 analyzer does
// (standard tokenizer, lowercase filter, English stop words), calling emit
// for each surviving token in order.
//
// The tokenizer approximates Unicode word segmentation (UAX #29): a word is
// a run of letters, digits, marks and connector punctuation ("_"); an
// apostrophe or a period between two letters, and a period or comma between
// two digits, stay inside the word ("don't", "e.g", "3.14", "1,000"). Han
// and Hiragana characters are one token each, since those scripts put no
// spaces between words.
func analyze(text string, emit func(tok string)) {
	start := -1 // byte offset of the current word, -1 outside one
	var prev rune
	flush := func(end int) {
		if start >= 0 {
			tok := text[start:end]
			start = -1
			if len(tok) > maxTokenBytes {
				return
			}
			tok = strings.ToLower(tok)
			if !englishStopWords[tok] {
				emit(tok)
			}
		}
	}
	for i := 0; i < len(text); {
		r, w := utf8.DecodeRuneInString(text[i:])
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana):
			flush(i)
			start = i
			flush(i + w)
		case isWordRune(r):
			if start < 0 {
				start = i
			}
		case start >= 0 && i+w < len(text) && joins(prev, r, text[i+w:]):
			// Stays inside the word; the next rune continues it.
		default:
			flush(i)
		}
		prev = r
		i += w
	}
	flush(len(text))
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || unicode.Is(unicode.Pc, r)
}

// joins reports whether mid, between the word rune prev and the start of
// rest, stays inside a word: an apostrophe between letters, a period
// between letters or between digits, a comma between digits.
func joins(prev, mid rune, rest string) bool {
	next, _ := utf8.DecodeRuneInString(rest)
	letters := unicode.IsLetter(prev) && unicode.IsLetter(next)
	digits := unicode.IsDigit(prev) && unicode.IsDigit(next)
	switch mid {
	case '\'', '\u2019':
		return letters
	case '.':
		return letters || digits
	case ',':
		return digits
	}
	return false
}
