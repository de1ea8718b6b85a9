package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"

	"github.com/ledongthuc/pdf"
)

func loadPDF(ctx context.Context, data []byte) (Document, error) {
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return Document{}, pdfOpenError(data, err)
	}
	var doc Document
	doc.Title = pdfTitle(r)
	pages, err := pdfPages(r)
	if err != nil {
		return Document{}, errorf(PDF, "%v", err)
	}
	if len(pages) == 0 {
		return Document{}, errorf(PDF, "no pages found (damaged page tree?)")
	}
	for i, p := range pages {
		if err := ctx.Err(); err != nil {
			return Document{}, errorf(PDF, "page %d: %v", i+1, err)
		}
		text, err := pdfPageText(p)
		if err != nil {
			return Document{}, errorf(PDF, "page %d: %v", i+1, err)
		}
		doc.Pages = append(doc.Pages, Page{Number: i + 1, Text: text})
	}
	return doc, nil
}

const (
	maxPageTreeDepth = 64
	maxPageTreeNodes = 1 << 20
)

// pdfPages walks the page tree once. The library's Reader.Page rescans the
// tree for every page (quadratic on big files) and loops forever on a
// tree whose Kids point back at an ancestor; this walk is bounded.
func pdfPages(r *pdf.Reader) (pages []pdf.Page, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("damaged page tree (%v)", x)
		}
	}()
	visits := 0
	var walk func(v pdf.Value, depth int) error
	walk = func(v pdf.Value, depth int) error {
		visits++
		if depth > maxPageTreeDepth || visits > maxPageTreeNodes {
			return errors.New("damaged page tree (cycle or absurd depth)")
		}
		kids := v.Key("Kids")
		if v.Key("Type").Name() == "Pages" || kids.Kind() == pdf.Array {
			for i := 0; i < kids.Len(); i++ {
				if err := walk(kids.Index(i), depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if v.Kind() == pdf.Dict {
			pages = append(pages, pdf.Page{V: v})
		}
		return nil
	}
	root := r.Trailer().Key("Root").Key("Pages")
	if root.IsNull() {
		return nil, errors.New("missing page tree")
	}
	return pages, walk(root, 0)
}

func pdfOpenError(data []byte, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, pdf.ErrInvalidPassword) || strings.Contains(msg, "encrypt"):
		return errorf(PDF, "encrypted file, cannot read without the password (%s)", msg)
	case !bytes.HasPrefix(data, []byte("%PDF-")):
		return errorf(PDF, "not a PDF file (missing %%PDF- header)")
	case strings.Contains(msg, "missing %%EOF") || strings.Contains(msg, "missing %EOF"):
		return errorf(PDF, "truncated or damaged file (no %%%%EOF trailer at the end)")
	case strings.Contains(msg, "invalid header"):
		return errorf(PDF, "unsupported or damaged header %q", firstLine(data))
	}
	return errorf(PDF, "damaged file: %s", msg)
}

func firstLine(b []byte) string {
	b = b[:min(len(b), 16)]
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func pdfTitle(r *pdf.Reader) (title string) {
	defer func() {
		if recover() != nil {
			title = ""
		}
	}()
	t := r.Trailer().Key("Info").Key("Title").Text()
	return strings.TrimSpace(cleanGlyphs(t))
}

// pdfPageText rebuilds the page text from glyph positions. The library's
// own plain-text helpers glue words together on real files (see
// LIBNOTES.md); spacing decided from the gap between glyphs matches
// pdftotext within about 1%.
func pdfPageText(p pdf.Page) (text string, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("malformed page content (%v)", x)
		}
	}()
	return glyphsToText(p.Content().Text), nil
}

func glyphsToText(glyphs []pdf.Text) string {
	var b strings.Builder
	var prev *pdf.Text
	pendingSpace := false
	for i := range glyphs {
		g := &glyphs[i]
		s := cleanGlyphs(g.S)
		if s == "" {
			continue
		}
		if strings.TrimSpace(s) == "" {
			// Explicit space glyphs: remember them, the next glyph decides
			// whether they separate words on the same line.
			pendingSpace = true
			prev = g
			continue
		}
		if prev != nil {
			size := math.Max(math.Abs(prev.FontSize), 1)
			dy := math.Abs(g.Y - prev.Y)
			gap := g.X - (prev.X + prev.W)
			switch {
			case dy > size*1.8:
				b.WriteString("\n\n")
			case dy > size*0.5:
				b.WriteByte('\n')
			case pendingSpace || gap > 0.12*size || gap < -2*size:
				b.WriteByte(' ')
			}
		}
		b.WriteString(s)
		pendingSpace = false
		prev = g
	}
	return tidyLines(b.String())
}

// cleanGlyphs drops control and private-use characters: some TeX fonts map
// line-end or ligature glyphs into those ranges and they would pollute both
// the text and the tokenizer.
func cleanGlyphs(s string) string {
	ok := true
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Co, r) || r == unicode.ReplacementChar {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Co, r) || r == unicode.ReplacementChar:
			return -1
		}
		return r
	}, s)
}
