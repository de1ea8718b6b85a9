package filter

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tInt
	tFloat
	tOp    // == != < <= > >= && || !
	tPunct // ( ) [ ] ,
)

type token struct {
	kind tokKind
	text string // identifier, operator or punctuation; a string's value
	pat  string // a string's value with \% and \_ kept escaped (like patterns)
	num  float64
	pos  int // byte offset in the expression
}

// lex splits an expression into tokens. Strings are double- or
// single-quoted with backslash escapes (\" \' \\ \n \t \% \_); keywords
// (and, or, not, in, like, true, false) are identifiers the parser reads
// case-insensitively, as Milvus does for AND/OR/NOT.
func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			val, pat, n, err := lexString(s, i)
			if err != nil {
				return nil, err
			}
			out = append(out, token{kind: tString, text: val, pat: pat, pos: i})
			i += n
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9'):
			j := i
			isFloat := false
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				((s[j] == '+' || s[j] == '-') && j > i && (s[j-1] == 'e' || s[j-1] == 'E'))) {
				if s[j] == '.' || s[j] == 'e' || s[j] == 'E' {
					isFloat = true
				}
				j++
			}
			f, err := strconv.ParseFloat(s[i:j], 64)
			if err != nil {
				return nil, &Error{Pos: i, Msg: fmt.Sprintf("bad number %q", s[i:j])}
			}
			k := tInt
			if isFloat {
				k = tFloat
			}
			out = append(out, token{kind: k, text: s[i:j], num: f, pos: i})
			i = j
		case c == '_' || c < utf8.RuneSelf && unicode.IsLetter(rune(c)):
			j := i
			for j < len(s) && (s[j] == '_' || s[j] < utf8.RuneSelf && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])))) {
				j++
			}
			out = append(out, token{kind: tIdent, text: s[i:j], pos: i})
			i = j
		default:
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "==", "!=", "<=", ">=", "&&", "||":
				out = append(out, token{kind: tOp, text: two, pos: i})
				i += 2
				continue
			}
			switch c {
			case '<', '>', '!':
				out = append(out, token{kind: tOp, text: string(c), pos: i})
			case '(', ')', '[', ']', ',':
				out = append(out, token{kind: tPunct, text: string(c), pos: i})
			case '-':
				// A sign belongs to the number after it.
				if i+1 < len(s) && (s[i+1] >= '0' && s[i+1] <= '9' || s[i+1] == '.') {
					toks, err := lex(s[i+1:])
					if err != nil {
						return nil, shift(err, i+1)
					}
					if len(toks) > 0 && (toks[0].kind == tInt || toks[0].kind == tFloat) {
						t := toks[0]
						t.num, t.text, t.pos = -t.num, "-"+t.text, i
						out = append(out, t)
						i += 1 + len(toks[0].text)
						continue
					}
				}
				return nil, &Error{Pos: i, Msg: "unexpected '-'"}
			default:
				r, _ := utf8.DecodeRuneInString(s[i:])
				return nil, &Error{Pos: i, Msg: fmt.Sprintf("unexpected character %q", r)}
			}
			i++
		}
	}
	return append(out, token{kind: tEOF, pos: len(s)}), nil
}

func shift(err error, by int) error {
	if e, ok := err.(*Error); ok {
		return &Error{Pos: e.Pos + by, Msg: e.Msg}
	}
	return err
}

// lexString reads a quoted string at s[i]; it returns the value, the
// value with \% and \_ still escaped (for like), and the bytes consumed.
func lexString(s string, i int) (string, string, int, error) {
	q := s[i]
	var b, pat strings.Builder
	for j := i + 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == q:
			return b.String(), pat.String(), j - i + 1, nil
		case c == '\\':
			if j+1 >= len(s) {
				return "", "", 0, &Error{Pos: j, Msg: "unfinished escape"}
			}
			j++
			e := s[j]
			switch e {
			case 'n':
				e = '\n'
			case 't':
				e = '\t'
			case '%', '_', '\\':
				pat.WriteByte('\\')
			}
			b.WriteByte(e)
			pat.WriteByte(e)
		default:
			b.WriteByte(c)
			pat.WriteByte(c)
		}
	}
	return "", "", 0, &Error{Pos: i, Msg: "unterminated string"}
}
