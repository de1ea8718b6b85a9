package loader

import (
	"bytes"
	"context"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// latin1 decodes legacy 8-bit text. Windows-1252 and ISO-8859-1 agree on
// everything but 0x80-0x9f, and guessing Latin-1 beats rejecting the page.
func latin1(b []byte) string {
	rs := make([]rune, len(b))
	for i, c := range b {
		rs[i] = rune(c)
	}
	return string(rs)
}

func decodeLegacy(b []byte) string {
	b = bytes.TrimPrefix(b, bom)
	if utf8.Valid(b) {
		return string(b)
	}
	return latin1(b)
}

func loadHTML(ctx context.Context, data []byte) (Document, error) {
	if bytes.IndexByte(data, 0) >= 0 {
		return Document{}, errorf(HTML, "binary content (NUL byte), not an HTML page")
	}
	// html.Parse refuses more than 512 open elements itself, so the tree
	// walk below is bounded in depth without a cap of ours.
	var title, text string
	var err error
	if len(data) > maxTreeHTML {
		title, text, err = htmlStreamText(ctx, data)
	} else {
		title, text, err = htmlToText(ctx, decodeLegacy(data))
	}
	if ctx.Err() != nil {
		return Document{}, stopped(ctx, HTML)
	}
	if err != nil {
		return Document{}, errorf(HTML, "%v", err)
	}
	return Document{Title: title, Pages: []Page{{Text: text}}}, nil
}

// htmlToText renders an HTML page as markdown-ish text: headings become "#"
// lines, block elements become lines, and boilerplate (scripts, styles,
// navigation) is dropped.
//
// html.Parse itself cannot be stopped; pages are parsed as a tree only up
// to maxTreeHTML, which bounds that uninterruptible part. The walk looks at
// ctx every checkTokens nodes.
func htmlToText(ctx context.Context, src string) (title, text string, err error) {
	root, err := html.Parse(strings.NewReader(src))
	if err != nil {
		return "", "", err
	}
	w := &htmlWriter{ctx: ctx}
	w.walk(root)
	if w.err != nil {
		return "", "", w.err
	}
	title = strings.Join(strings.Fields(w.title), " ")
	if title == "" {
		title = w.firstH1
	}
	return title, tidyLines(w.b.String()), nil
}

type htmlWriter struct {
	ctx     context.Context
	err     error // ctx's error, once seen: the walk unwinds
	nodes   int
	b       strings.Builder
	title   string
	firstH1 string
	pre     int
}

var skipAtoms = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Nav: true, atom.Noscript: true,
	atom.Template: true, atom.Iframe: true, atom.Svg: true, atom.Object: true,
	atom.Button: true, atom.Select: true, atom.Head: false,
}

var blockAtoms = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Section: true, atom.Article: true,
	atom.Header: true, atom.Footer: true, atom.Main: true, atom.Aside: true,
	atom.Blockquote: true, atom.Pre: true, atom.Ul: true, atom.Ol: true,
	atom.Dl: true, atom.Dt: true, atom.Dd: true, atom.Table: true,
	atom.Figure: true, atom.Figcaption: true, atom.Form: true, atom.Hr: true,
	atom.Address: true, atom.Details: true, atom.Summary: true, atom.Caption: true,
}

func headingLevel(a atom.Atom) int {
	switch a {
	case atom.H1:
		return 1
	case atom.H2:
		return 2
	case atom.H3:
		return 3
	case atom.H4:
		return 4
	case atom.H5:
		return 5
	case atom.H6:
		return 6
	}
	return 0
}

func (w *htmlWriter) walk(n *html.Node) {
	if w.err != nil {
		return
	}
	if w.nodes++; w.nodes%checkTokens == 0 {
		if w.err = w.ctx.Err(); w.err != nil {
			return
		}
	}
	switch n.Type {
	case html.TextNode:
		if w.pre > 0 {
			w.b.WriteString(n.Data)
		} else {
			t := collapseSpace(n.Data)
			if cur := w.b.String(); cur == "" || strings.HasSuffix(cur, " ") || strings.HasSuffix(cur, "\n") {
				t = strings.TrimLeft(t, " ")
			}
			w.b.WriteString(t)
		}
		return
	case html.ElementNode:
	default:
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			w.walk(c)
		}
		return
	}
	a := n.DataAtom
	if skipAtoms[a] {
		return
	}
	if a == atom.Title {
		w.title += inlineText(n)
		return
	}
	if lvl := headingLevel(a); lvl > 0 {
		t := inlineText(n)
		if t != "" {
			if lvl == 1 && w.firstH1 == "" {
				w.firstH1 = t
			}
			w.b.WriteString("\n\n" + strings.Repeat("#", lvl) + " " + t + "\n\n")
		}
		return
	}
	switch a {
	case atom.Br:
		w.b.WriteString("\n")
		return
	case atom.Li:
		w.lineStart()
		w.b.WriteString("- ")
	case atom.Tr:
		cells := []string{}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.DataAtom == atom.Td || c.DataAtom == atom.Th) {
				if t := inlineText(c); t != "" {
					cells = append(cells, t)
				}
			}
		}
		if len(cells) > 0 {
			w.lineStart()
			w.b.WriteString(strings.Join(cells, " | ") + "\n")
		}
		return
	case atom.Td, atom.Th:
		w.b.WriteString(" ")
	case atom.Pre:
		w.pre++
		defer func() { w.pre-- }()
	case atom.Img:
		if alt := strings.TrimSpace(attr(n, "alt")); alt != "" {
			w.b.WriteString(" " + collapseSpace(alt) + " ")
		}
		return
	}
	block := blockAtoms[a]
	if block {
		w.b.WriteString("\n\n")
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c)
	}
	if block {
		w.b.WriteString("\n\n")
	}
	if a == atom.Li {
		w.b.WriteString("\n")
	}
}

// lineStart ends the current line unless the output is already at the
// start of one, so consecutive rows and list items stay on adjacent lines.
func (w *htmlWriter) lineStart() {
	if cur := w.b.String(); cur != "" && !strings.HasSuffix(cur, "\n") {
		w.b.WriteByte('\n')
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// inlineText is the text of a subtree on one line, minus skipped elements.
func inlineText(n *html.Node) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
			return
		}
		if n.Type == html.ElementNode {
			if skipAtoms[n.DataAtom] {
				return
			}
			if n.DataAtom == atom.Img {
				b.WriteString(attr(n, "alt"))
				b.WriteByte(' ')
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
	}
	rec(n)
	// Text nodes split inside a word ("<b>A</b>pple") get a stray space;
	// acceptable for retrieval and safer than gluing separate words.
	return strings.Join(strings.Fields(b.String()), " ")
}

func collapseSpace(s string) string {
	if s == "" {
		return s
	}
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// tidyLines trims each line and keeps at most one blank line between blocks.
func tidyLines(s string) string {
	s = normalizeNewlines(s)
	lines := strings.Split(s, "\n")
	out := make([]string, 0, len(lines))
	blank := true
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\u00a0")
		if strings.TrimSpace(l) == "" {
			if !blank {
				out = append(out, "")
			}
			blank = true
			continue
		}
		if !strings.HasPrefix(l, "  ") {
			l = strings.TrimLeft(l, " \t")
		}
		out = append(out, l)
		blank = false
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return strings.Join(out, "\n")
}
