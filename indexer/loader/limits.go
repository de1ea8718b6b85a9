package loader

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
)

// Limits that keep one hostile document from exhausting the node. They are
// per document, whatever its parts: a bomb split over many entries meets
// the same total as one big entry.
const (
	// maxZipTotal bounds the bytes inflated from one DOCX/PPTX, all parts
	// read together (64 MiB of XML is thousands of pages).
	maxZipTotal = 64 << 20
	// maxZipRatio bounds inflated/compressed size of an entry once it has
	// produced more than zipRatioFloor bytes; XML from office suites stays
	// well under 50x, bombs are at 1000x.
	maxZipRatio   = 100
	zipRatioFloor = 1 << 20
	// maxDepth bounds element/array nesting in XML and JSON (x/net/html
	// has the same cap of its own): real
	// documents stay under a few dozen levels, and a parser's stack (ours
	// or the library's) grows with depth.
	maxDepth = 512
)

// ErrTooLarge is wrapped when a document exceeds a size, ratio or depth cap.
var ErrTooLarge = errors.New("exceeds a resource limit")

// zipBudget counts the bytes inflated from one archive.
type zipBudget struct {
	kind Kind
	left int64
}

func newZipBudget(kind Kind) *zipBudget {
	return &zipBudget{kind: kind, left: maxZipTotal}
}

func (b *zipBudget) totalError() error {
	return errorf(b.kind, "%w: more than %d MiB inflated from one archive (zip bomb?)", ErrTooLarge, maxZipTotal>>20)
}

// read inflates one entry within the budget.
func (b *zipBudget) read(f *zip.File) ([]byte, error) {
	// Declared sizes can lie (budgetReader enforces the real ones), but an
	// honest bomb is refused before a single byte is inflated. Only parts
	// we read count: media in the package do not.
	if f.UncompressedSize64 > uint64(b.left) {
		return nil, b.totalError()
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	r := &budgetReader{r: rc, b: b, compressed: int64(f.CompressedSize64), name: f.Name}
	return io.ReadAll(r)
}

type budgetReader struct {
	r          io.Reader
	b          *zipBudget
	compressed int64
	read       int64
	name       string
}

var errBudget = errors.New("budget")

func (r *budgetReader) Read(p []byte) (int, error) {
	if int64(len(p)) > r.b.left+1 {
		p = p[:r.b.left+1]
	}
	n, err := r.r.Read(p)
	r.read += int64(n)
	r.b.left -= int64(n)
	if r.b.left < 0 {
		return n, r.b.totalError()
	}
	if r.read > zipRatioFloor && r.read > maxZipRatio*max(r.compressed, 1) {
		return n, errorf(r.b.kind, "%w: part %s inflates more than %dx (zip bomb?)", ErrTooLarge, r.name, maxZipRatio)
	}
	return n, err
}

// depthError is the error for documents nested deeper than maxDepth.
func depthError(kind Kind) error {
	return errorf(kind, "%w: nesting deeper than %d levels", ErrTooLarge, maxDepth)
}

// isLimit tells whether err is one of this file's cap errors, which carry
// their own kind prefix and must not be wrapped again.
func isLimit(err error) bool { return errors.Is(err, ErrTooLarge) }

// xmlReader is an xml.Decoder that refuses to nest deeper than maxDepth.
type xmlReader struct {
	dec   *xml.Decoder
	kind  Kind
	depth int
}

func newXMLReader(kind Kind, b []byte) *xmlReader {
	return &xmlReader{dec: xml.NewDecoder(bytes.NewReader(b)), kind: kind}
}

func (x *xmlReader) Token() (xml.Token, error) {
	tok, err := x.dec.Token()
	switch tok.(type) {
	case xml.StartElement:
		x.depth++
		if x.depth > maxDepth {
			return nil, depthError(x.kind)
		}
	case xml.EndElement:
		x.depth--
	}
	return tok, err
}
