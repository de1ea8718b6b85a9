// Package loader turns uploaded files into plain text for indexing.
//
// Guarantees: Detect never reads beyond the head it is given and reports
// anything it cannot parse (executables, archives, unknown binaries, and
// images while OCR is unavailable) as ErrUnsupported. Load never panics, whatever the input: a panic inside a
// parser library is recovered and returned as an error. Every Load error
// starts with the kind ("pdf: ...", "docx: ...") so it can be shown to an
// operator as is. Text returned by Load is valid UTF-8 with "\n" line ends;
// headings found in structured formats (HTML, DOCX, PPTX titles) are rendered
// as markdown "#" lines so the chunker can keep a heading path. PDF pages
// and slides keep their 1-based page number. Resources are bounded per
// document: a total decompressed-size and ratio cap for zip containers, a
// nesting-depth cap for XML, HTML and JSON, a time budget for PDF and OCR.
package loader

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Kind names a supported document format.
type Kind string

// Supported kinds.
const (
	TXT  Kind = "txt"
	MD   Kind = "md"
	HTML Kind = "html"
	PDF  Kind = "pdf"
	DOCX Kind = "docx"
	PPTX Kind = "pptx"
	CSV  Kind = "csv"
	JSON Kind = "json"
	EML  Kind = "eml"
	// Images are read by OCR (tesseract) and refused without it.
	PNG  Kind = "png"
	JPEG Kind = "jpeg"
	TIFF Kind = "tiff"
)

var supported = []Kind{TXT, MD, HTML, PDF, DOCX, PPTX, CSV, JSON, EML, PNG, JPEG, TIFF}

// Supported returns the kinds Load understands, in a fixed order.
func Supported() []Kind {
	return append([]Kind(nil), supported...)
}

// ErrUnsupported is wrapped by Detect and Load for inputs they cannot handle.
var ErrUnsupported = errors.New("unsupported file type")

// Page is one page (PDF page, PPTX slide) of a document.
type Page struct {
	Number int // 1-based; 0 when the format has no pages
	Text   string
}

// Document is the text extracted from one file.
type Document struct {
	Kind  Kind
	Title string
	Pages []Page
}

// Text returns all pages joined by blank lines.
func (d Document) Text() string {
	parts := make([]string, 0, len(d.Pages))
	for _, p := range d.Pages {
		parts = append(parts, p.Text)
	}
	return strings.Join(parts, "\n\n")
}

func unsupportedError(what string) error {
	names := make([]string, len(supported))
	for i, k := range supported {
		names[i] = string(k)
	}
	return fmt.Errorf("%w: %s (supported: %s)", ErrUnsupported, what, strings.Join(names, ", "))
}

// Load parses a whole file of the given kind.
func Load(ctx context.Context, kind Kind, data []byte) (doc Document, err error) {
	defer func() {
		// Parser libraries (the PDF reader above all) panic on malformed
		// input; one bad upload must not take the indexer down.
		if r := recover(); r != nil {
			doc = Document{}
			err = fmt.Errorf("%s: malformed file (parser failed: %v)", kind, r)
		}
	}()
	if err := ctx.Err(); err != nil {
		return Document{}, fmt.Errorf("%s: %w", kind, err)
	}
	switch kind {
	case TXT, MD:
		doc, err = loadText(ctx, kind, data)
	case HTML:
		doc, err = loadHTML(ctx, data)
	case PDF:
		doc, err = loadPDF(ctx, data)
	case DOCX:
		doc, err = loadDOCX(ctx, data)
	case PPTX:
		doc, err = loadPPTX(ctx, data)
	case CSV:
		doc, err = loadCSV(ctx, data)
	case JSON:
		doc, err = loadJSON(ctx, data)
	case EML:
		doc, err = loadEML(ctx, data)
	case PNG, JPEG, TIFF:
		doc, err = loadImage(ctx, kind, data)
	default:
		return Document{}, unsupportedError(fmt.Sprintf("kind %q", string(kind)))
	}
	if err != nil {
		return Document{}, err
	}
	doc.Kind = kind
	return doc, nil
}

// errorf prefixes an error with the document kind.
func errorf(kind Kind, format string, args ...any) error {
	return fmt.Errorf(string(kind)+": "+format, args...)
}
