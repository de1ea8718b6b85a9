package loader

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// pkg is an opened OOXML package with its inflation budget.
type pkg struct {
	kind   Kind
	zr     *zip.Reader
	budget *zipBudget
}

func openZip(kind Kind, data []byte) (*pkg, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if errors.Is(err, zip.ErrFormat) {
			return nil, errorf(kind, "not a valid zip archive (truncated or damaged file): %v", err)
		}
		return nil, errorf(kind, "cannot open zip archive: %v", err)
	}
	return &pkg{kind: kind, zr: zr, budget: newZipBudget(kind)}, nil
}

// readPart inflates one part within the package's budget; ok is false when
// the part does not exist.
func (p *pkg) readPart(name string) ([]byte, bool, error) {
	for _, f := range p.zr.File {
		if f.Name != name {
			continue
		}
		b, err := p.budget.read(f)
		if err != nil {
			if isLimit(err) {
				return nil, true, err
			}
			return nil, true, errorf(p.kind, "part %s: damaged data: %v", name, err)
		}
		return b, true, nil
	}
	return nil, false, nil
}

// coreTitle reads dc:title from docProps/core.xml; a missing or broken
// properties part only loses the title.
func coreTitle(p *pkg) string {
	b, ok, err := p.readPart("docProps/core.xml")
	if !ok || err != nil {
		return ""
	}
	dec := newXMLReader(p.kind, b)
	in := false
	var t strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case xml.StartElement:
			in = v.Name.Local == "title"
		case xml.CharData:
			if in {
				t.Write(v)
			}
		case xml.EndElement:
			if v.Name.Local == "title" {
				return strings.Join(strings.Fields(t.String()), " ")
			}
		}
	}
	return ""
}

func xmlAttr(e xml.StartElement, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

var headingStyleRe = regexp.MustCompile(`(?i)^heading\s*([1-9])$`)

// docxHeadingStyles maps style IDs to heading levels using the style names
// in word/styles.xml, because localized Word writes IDs like "berschrift1"
// while the name stays "heading 1".
func docxHeadingStyles(p *pkg) map[string]int {
	levels := map[string]int{}
	b, ok, err := p.readPart("word/styles.xml")
	if !ok || err != nil {
		return levels
	}
	dec := newXMLReader(DOCX, b)
	id := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "style":
				id = xmlAttr(se, "styleId")
			case "name":
				name := xmlAttr(se, "val")
				if m := headingStyleRe.FindStringSubmatch(name); m != nil && id != "" {
					levels[id], _ = strconv.Atoi(m[1])
				} else if strings.EqualFold(name, "title") && id != "" {
					levels[id] = 1
				}
			}
		}
	}
	return levels
}

func styleLevel(id string, named map[string]int) int {
	if l, ok := named[id]; ok {
		return l
	}
	if m := headingStyleRe.FindStringSubmatch(id); m != nil {
		l, _ := strconv.Atoi(m[1])
		return l
	}
	if strings.EqualFold(id, "title") {
		return 1
	}
	return 0
}

func loadDOCX(ctx context.Context, data []byte) (Document, error) {
	p, err := openZip(DOCX, data)
	if err != nil {
		return Document{}, err
	}
	body, ok, err := p.readPart("word/document.xml")
	if err != nil {
		return Document{}, err
	}
	if !ok {
		return Document{}, errorf(DOCX, "missing word/document.xml (not a Word document)")
	}
	styles := docxHeadingStyles(p)
	text, firstHeading, err := docxText(ctx, body, styles)
	if err != nil {
		return Document{}, err
	}
	title := coreTitle(p)
	if title == "" {
		title = firstHeading
	}
	return Document{Title: title, Pages: []Page{{Text: text}}}, nil
}

func docxText(ctx context.Context, body []byte, styles map[string]int) (string, string, error) {
	dec := newXMLReader(DOCX, body)
	var out strings.Builder
	var para strings.Builder
	level := 0
	inText := false
	// Table state: cells of the current row; nested tables flatten into
	// their enclosing cell.
	tableDepth := 0
	var row []string
	var cell strings.Builder
	firstHeading := ""
	for n := 0; ; n++ {
		if n%8192 == 0 {
			if err := stopped(ctx, DOCX); err != nil {
				return "", "", err
			}
		}
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if isLimit(err) {
			return "", "", err
		}
		if err != nil {
			return "", "", errorf(DOCX, "damaged word/document.xml: %v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			switch v.Name.Local {
			case "p":
				para.Reset()
				level = 0
			case "pStyle":
				level = styleLevel(xmlAttr(v, "val"), styles)
			case "outlineLvl":
				if l, err := strconv.Atoi(xmlAttr(v, "val")); err == nil && l < 9 && level == 0 {
					level = l + 1
				}
			case "t":
				inText = true
			case "tab":
				para.WriteByte(' ')
			case "br", "cr":
				para.WriteByte(' ')
			case "tbl":
				tableDepth++
			case "tr":
				if tableDepth == 1 {
					row = row[:0]
				}
			case "tc":
				if tableDepth == 1 {
					cell.Reset()
				}
			}
		case xml.CharData:
			if inText {
				para.Write(v)
			}
		case xml.EndElement:
			switch v.Name.Local {
			case "t":
				inText = false
			case "p":
				t := strings.Join(strings.Fields(para.String()), " ")
				if t == "" {
					continue
				}
				if tableDepth > 0 {
					if cell.Len() > 0 {
						cell.WriteByte(' ')
					}
					cell.WriteString(t)
					continue
				}
				if level > 0 {
					level = min(level, 6)
					if firstHeading == "" {
						firstHeading = t
					}
					out.WriteString("\n" + strings.Repeat("#", level) + " " + t + "\n\n")
				} else {
					out.WriteString(t + "\n\n")
				}
			case "tc":
				if tableDepth == 1 {
					if c := strings.TrimSpace(cell.String()); c != "" {
						row = append(row, c)
					}
				}
			case "tr":
				if tableDepth == 1 && len(row) > 0 {
					out.WriteString(strings.Join(row, " | ") + "\n")
				}
			case "tbl":
				tableDepth--
				if tableDepth == 0 {
					out.WriteString("\n")
				}
			}
		}
	}
	return tidyLines(out.String()), firstHeading, nil
}

var slideRe = regexp.MustCompile(`^ppt/slides/slide([0-9]+)\.xml$`)

func loadPPTX(ctx context.Context, data []byte) (Document, error) {
	p, err := openZip(PPTX, data)
	if err != nil {
		return Document{}, err
	}
	type slide struct {
		n    int
		file *zip.File
	}
	var slides []slide
	for _, f := range p.zr.File {
		if m := slideRe.FindStringSubmatch(f.Name); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil {
				continue
			}
			slides = append(slides, slide{n, f})
		}
	}
	if len(slides) == 0 {
		return Document{}, errorf(PPTX, "no slides found (missing ppt/slides/slideN.xml)")
	}
	// slide10 must follow slide9; the zip order and lexical order do not.
	sort.Slice(slides, func(i, j int) bool { return slides[i].n < slides[j].n })
	doc := Document{Title: coreTitle(p)}
	// Inflate every slide before parsing any, so that a deck over the
	// package budget fails before the parsing work, not after.
	parts := make([][]byte, len(slides))
	for i, s := range slides {
		if err := stopped(ctx, PPTX); err != nil {
			return Document{}, err
		}
		b, _, err := p.readPart(s.file.Name)
		if err != nil {
			return Document{}, err
		}
		parts[i] = b
	}
	for i, s := range slides {
		if err := stopped(ctx, PPTX); err != nil {
			return Document{}, err
		}
		text, title, err := slideText(ctx, parts[i])
		parts[i] = nil
		if isLimit(err) || ctx.Err() != nil {
			return Document{}, err
		}
		if err != nil {
			return Document{}, errorf(PPTX, "slide %d: damaged XML: %v", s.n, err)
		}
		if doc.Title == "" {
			doc.Title = title
		}
		doc.Pages = append(doc.Pages, Page{Number: i + 1, Text: text})
	}
	return doc, nil
}

// slideText renders a slide; the text of its title placeholder becomes a
// "#" heading so chunks carry the slide title in their heading path.
func slideText(ctx context.Context, b []byte) (string, string, error) {
	dec := newXMLReader(PPTX, b)
	var out, para, titleText strings.Builder
	inText, isTitle := false, false
	spDepth := 0
	for n := 1; ; n++ {
		// One slide can hold most of the package's budget.
		if n%8192 == 0 {
			if err := stopped(ctx, PPTX); err != nil {
				return "", "", err
			}
		}
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", err
		}
		switch v := tok.(type) {
		case xml.StartElement:
			switch v.Name.Local {
			case "sp":
				spDepth++
				if spDepth == 1 {
					isTitle = false
				}
			case "ph":
				if t := xmlAttr(v, "type"); t == "title" || t == "ctrTitle" {
					isTitle = true
				}
			case "p":
				para.Reset()
			case "t":
				inText = true
			case "br":
				para.WriteByte(' ')
			}
		case xml.CharData:
			if inText {
				para.Write(v)
			}
		case xml.EndElement:
			switch v.Name.Local {
			case "t":
				inText = false
			case "p":
				t := strings.Join(strings.Fields(para.String()), " ")
				if t == "" {
					continue
				}
				if isTitle {
					if titleText.Len() > 0 {
						titleText.WriteByte(' ')
					}
					titleText.WriteString(t)
				} else {
					out.WriteString(t + "\n")
				}
			case "sp":
				spDepth--
				if spDepth == 0 {
					isTitle = false
				}
			}
		}
	}
	title := titleText.String()
	text := tidyLines(out.String())
	if title != "" {
		text = "# " + title + "\n\n" + text
	}
	return strings.TrimSpace(text), title, nil
}
