package loader

import (
	"bytes"
	"context"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxTreeHTML is the largest page rendered from a parse tree. The tree
// costs about twenty times the page in memory (a 50 MB page grew the
// process by ~960 MB), so larger pages are rendered from the token stream
// in memory proportional to their text. The stream renderer knows the
// same elements as the tree walk but not HTML's implied end tags, so it is
// kept for pages where memory matters more than those details.
const maxTreeHTML = 8 << 20

// streamWriter renders tokens as htmlWriter renders nodes.
type streamWriter struct {
	out     strings.Builder
	title   strings.Builder
	firstH1 string
	skip    []atom.Atom // open skipped elements
	inTitle bool
	pre     int
	heading int
	head    strings.Builder
	inRow   bool
	inCell  bool
	cell    strings.Builder
	cells   []string
	last    byte
}

func (w *streamWriter) write(s string) {
	if s == "" {
		return
	}
	w.out.WriteString(s)
	w.last = s[len(s)-1]
}

func (w *streamWriter) lineStart() {
	if w.out.Len() > 0 && w.last != '\n' {
		w.write("\n")
	}
}

func (w *streamWriter) text(s string) {
	switch {
	case w.inTitle:
		w.title.WriteString(s)
	case w.heading > 0:
		w.head.WriteString(s)
	case w.inCell:
		w.cell.WriteString(s)
	case w.inRow:
	case w.pre > 0:
		w.write(s)
	default:
		t := collapseSpace(s)
		if w.out.Len() == 0 || w.last == ' ' || w.last == '\n' {
			t = strings.TrimLeft(t, " ")
		}
		w.write(t)
	}
}

func (w *streamWriter) endCell() {
	if w.inCell {
		if t := strings.Join(strings.Fields(w.cell.String()), " "); t != "" {
			w.cells = append(w.cells, t)
		}
		w.cell.Reset()
		w.inCell = false
	}
}

func (w *streamWriter) start(a atom.Atom, tok html.Token) {
	if skipAtoms[a] {
		if tok.Type == html.StartTagToken {
			w.skip = append(w.skip, a)
		}
		return
	}
	if lvl := headingLevel(a); lvl > 0 {
		w.heading = lvl
		w.head.Reset()
		return
	}
	switch a {
	case atom.Title:
		w.inTitle = true
	case atom.Br:
		w.write("\n")
	case atom.Li:
		w.lineStart()
		w.write("- ")
	case atom.Tr:
		w.inRow, w.cells = true, w.cells[:0]
	case atom.Td, atom.Th:
		w.endCell()
		w.inCell = w.inRow
	case atom.Pre:
		w.pre++
	case atom.Img:
		for _, at := range tok.Attr {
			if at.Key == "alt" && strings.TrimSpace(at.Val) != "" {
				w.text(" " + collapseSpace(strings.TrimSpace(at.Val)) + " ")
			}
		}
	}
	if blockAtoms[a] && !w.inRow {
		w.write("\n\n")
	}
}

func (w *streamWriter) end(a atom.Atom) {
	if lvl := headingLevel(a); lvl > 0 && w.heading > 0 {
		if t := strings.Join(strings.Fields(w.head.String()), " "); t != "" {
			if w.heading == 1 && w.firstH1 == "" {
				w.firstH1 = t
			}
			w.write("\n\n" + strings.Repeat("#", w.heading) + " " + t + "\n\n")
		}
		w.heading = 0
		return
	}
	switch a {
	case atom.Title:
		w.inTitle = false
	case atom.Li:
		w.write("\n")
	case atom.Td, atom.Th:
		w.endCell()
	case atom.Tr:
		w.endCell()
		if len(w.cells) > 0 {
			w.lineStart()
			w.write(strings.Join(w.cells, " | ") + "\n")
		}
		w.inRow = false
	case atom.Pre:
		if w.pre > 0 {
			w.pre--
		}
	}
	if blockAtoms[a] && !w.inRow {
		w.write("\n\n")
	}
}

// htmlStreamText renders a large page from its token stream.
func htmlStreamText(ctx context.Context, data []byte) (title, text string, err error) {
	data = bytes.TrimPrefix(data, bom)
	if ok, err := validUTF8(ctx, HTML, data); err != nil {
		return "", "", err
	} else if !ok {
		data = latin1Bytes(data)
	}
	z := html.NewTokenizer(bytes.NewReader(data))
	w := &streamWriter{}
	for n := 0; ; n++ {
		if n%checkTokens == 0 {
			if err := ctx.Err(); err != nil {
				return "", "", err
			}
		}
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() != io.EOF {
				return "", "", z.Err()
			}
			break
		}
		tok := z.Token()
		if len(w.skip) > 0 {
			if tt == html.StartTagToken && tok.DataAtom == w.skip[len(w.skip)-1] {
				w.skip = append(w.skip, tok.DataAtom)
			} else if tt == html.EndTagToken && tok.DataAtom == w.skip[len(w.skip)-1] {
				w.skip = w.skip[:len(w.skip)-1]
			}
			continue
		}
		switch tt {
		case html.TextToken:
			w.text(tok.Data)
		case html.StartTagToken, html.SelfClosingTagToken:
			w.start(tok.DataAtom, tok)
		case html.EndTagToken:
			w.end(tok.DataAtom)
		}
	}
	title = strings.Join(strings.Fields(w.title.String()), " ")
	if title == "" {
		title = w.firstH1
	}
	return title, tidyLines(w.out.String()), nil
}

// latin1Bytes is latin1 for large inputs: UTF-8 bytes, not a rune slice
// four times the input.
func latin1Bytes(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}
