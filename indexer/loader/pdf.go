package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/klippa-app/go-pdfium"
	"github.com/klippa-app/go-pdfium/enums"
	pdferr "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
)

// ErrNoTextLayer is wrapped when a PDF has pages with images but no text at
// all and OCR is off or tesseract is missing.
var ErrNoTextLayer = errors.New("no text layer (scanned?): install tesseract or configure --converter pdf=...")

// ErrEncrypted is wrapped when a PDF needs a password.
var ErrEncrypted = errors.New("encrypted (password required)")

// ErrTimeout is wrapped when a document took longer than its time budget.
var ErrTimeout = errors.New("timed out")

// Documents above these sizes leave their instance to be discarded rather
// than reused, so that one large file does not pin its memory peak in the
// pool.
const (
	recycleBytes = 16 << 20
	recyclePages = 500
)

// pageHook, when set by a test, runs before each page is read: it lets a
// test make the engine fail (panic, kill the instance) mid-document.
var pageHook func(inst pdfium.Pdfium, page int)

func loadPDF(ctx context.Context, data []byte) (Document, error) {
	if !bytes.HasPrefix(data, []byte("%PDF-")) {
		if i := bytes.Index(data[:min(len(data), 1024)], []byte("%PDF-")); i < 0 {
			return Document{}, errorf(PDF, "not a PDF file (missing %%PDF- header)")
		}
	}
	o := options()
	dctx, cancel := context.WithTimeoutCause(ctx, o.PDFTimeout, ErrTimeout)
	defer cancel()
	var doc Document
	scanned := 0
	err := withInstance(dctx, func(inst pdfium.Pdfium) (bool, error) {
		var err error
		doc, scanned, err = pdfText(dctx, inst, data, o)
		keep := len(data) <= recycleBytes && len(doc.Pages) <= recyclePages
		return keep, err
	})
	switch {
	case ctx.Err() != nil:
		return Document{}, errorf(PDF, "%w", ctx.Err())
	case errors.Is(context.Cause(dctx), ErrTimeout):
		return Document{}, errorf(PDF, "%w after %v (document too large or too complex)", ErrTimeout, o.PDFTimeout)
	case err != nil:
		return Document{}, pdfError(err)
	}
	if scanned > 0 && strings.TrimSpace(doc.Text()) == "" {
		return Document{}, errorf(PDF, "%w", ErrNoTextLayer)
	}
	return doc, nil
}

// pdfError turns PDFium's error codes into reasons an operator can act on.
func pdfError(err error) error {
	switch {
	case errors.Is(err, pdferr.ErrPassword):
		return errorf(PDF, "%w", ErrEncrypted)
	case errors.Is(err, pdferr.ErrSecurity):
		return errorf(PDF, "encrypted with an unsupported security handler")
	case errors.Is(err, pdferr.ErrFormat):
		return errorf(PDF, "damaged or truncated file (PDFium: incorrect format)")
	case errors.Is(err, pdferr.ErrFile):
		return errorf(PDF, "damaged or truncated file (PDFium: unable to read file)")
	case errors.Is(err, pdferr.ErrPage):
		return errorf(PDF, "damaged page (PDFium: incorrect page)")
	case errors.Is(err, ErrEngine), errors.Is(err, errOCR):
		return errorf(PDF, "%w", err)
	}
	return errorf(PDF, "%w: %v", ErrEngine, err)
}

// pdfText reads every page; scanned counts pages that have images but no
// text and could not be read by OCR.
func pdfText(ctx context.Context, inst pdfium.Pdfium, data []byte, o Options) (Document, int, error) {
	opened, err := inst.OpenDocument(&requests.OpenDocument{File: &data})
	if err != nil {
		return Document{}, 0, err
	}
	d := opened.Document
	defer inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: d})
	var doc Document
	if t, err := inst.FPDF_GetMetaText(&requests.FPDF_GetMetaText{Document: d, Tag: "Title"}); err == nil {
		doc.Title = strings.TrimSpace(cleanGlyphs(t.Value))
	}
	count, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: d})
	if err != nil {
		return Document{}, 0, err
	}
	if count.PageCount == 0 {
		return Document{}, 0, errors.Join(pdferr.ErrFormat, errors.New("no pages"))
	}
	ocr := ocrEnabled(o)
	scanned := 0
	doc.Pages = make([]Page, 0, count.PageCount)
	for i := 0; i < count.PageCount; i++ {
		if err := ctx.Err(); err != nil {
			return Document{}, 0, err
		}
		if pageHook != nil {
			pageHook(inst, i)
		}
		text, needsOCR, err := pdfPage(ctx, inst, d, i, ocr, o)
		if err != nil {
			return Document{}, 0, fmt.Errorf("page %d: %w", i+1, err)
		}
		if needsOCR {
			scanned++
		}
		doc.Pages = append(doc.Pages, Page{Number: i + 1, Text: text})
	}
	return doc, scanned, nil
}

// pdfPage returns the text of one page. A page with no text but with an
// image is OCRed when ocr is set, else reported through needsOCR.
func pdfPage(ctx context.Context, inst pdfium.Pdfium, d references.FPDF_DOCUMENT, i int, ocr bool, o Options) (text string, needsOCR bool, err error) {
	lp, err := inst.FPDF_LoadPage(&requests.FPDF_LoadPage{Document: d, Index: i})
	if err != nil {
		return "", false, err
	}
	page := requests.Page{ByReference: &lp.Page}
	defer inst.FPDF_ClosePage(&requests.FPDF_ClosePage{Page: lp.Page})
	tp, err := inst.FPDFText_LoadPage(&requests.FPDFText_LoadPage{Page: page})
	if err != nil {
		return "", false, err
	}
	n, err := inst.FPDFText_CountChars(&requests.FPDFText_CountChars{TextPage: tp.TextPage})
	if err == nil && n.Count > 0 {
		got, gerr := inst.FPDFText_GetText(&requests.FPDFText_GetText{TextPage: tp.TextPage, Count: n.Count})
		if gerr == nil {
			text = pdfiumText(got.Text)
		}
		err = gerr
	}
	_, _ = inst.FPDFText_ClosePage(&requests.FPDFText_ClosePage{TextPage: tp.TextPage})
	if err != nil || strings.TrimSpace(text) != "" {
		return text, false, err
	}
	if !pageHasImage(inst, page) {
		return "", false, nil // a blank page
	}
	if !ocr {
		return "", true, nil
	}
	img, err := renderGray(inst, page, o.OCRDPI)
	if err != nil {
		return "", false, fmt.Errorf("render for OCR: %w", err)
	}
	text, err = ocrImage(ctx, img, o)
	return text, false, err
}

func pageHasImage(inst pdfium.Pdfium, page requests.Page) bool {
	n, err := inst.FPDFPage_CountObjects(&requests.FPDFPage_CountObjects{Page: page})
	if err != nil {
		return false
	}
	for j := 0; j < n.Count; j++ {
		obj, err := inst.FPDFPage_GetObject(&requests.FPDFPage_GetObject{Page: page, Index: j})
		if err != nil {
			continue
		}
		typ, err := inst.FPDFPageObj_GetType(&requests.FPDFPageObj_GetType{PageObject: obj.PageObject})
		if err == nil && typ.Type == enums.FPDF_PAGEOBJ_IMAGE {
			return true
		}
	}
	return false
}

// pdfiumText normalises PDFium's page text: it ends lines with "\r\n" and
// marks hyphens it found at line ends with U+0002; TeX fonts may also map
// glyphs into control or private-use ranges.
func pdfiumText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\u0002", "-")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r' || r == '\f' || r == '\u00a0':
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Co, r) || r == unicode.ReplacementChar || r == '\ufffe':
			return -1
		}
		return r
	}, s)
	return tidyLines(s)
}

// cleanGlyphs drops control and private-use characters from metadata.
func cleanGlyphs(s string) string {
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
