package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // image.DecodeConfig for the size check
	_ "image/png"
	"os"
	"os/exec"
	"strings"

	"github.com/klippa-app/go-pdfium"
	"github.com/klippa-app/go-pdfium/requests"
)

// OCR runs the tesseract command (Debian: tesseract-ocr). It is looked up on
// PATH at each use, so installing it takes effect without a restart.

// ErrNoOCR is wrapped (together with ErrUnsupported) when an image upload
// cannot be read because OCR is off or tesseract is missing.
var ErrNoOCR = errors.New("OCR unavailable")

// errOCR marks a failed tesseract run, so that it is not mistaken for a
// failure of the PDF engine.
var errOCR = errors.New("OCR failed")

// maxOCRText bounds what one tesseract run may print.
const maxOCRText = 16 << 20

// maxOCRPixels bounds one image handed to tesseract (and one rendered PDF
// page): an A4 page at 600 dpi is 35 Mpx; tesseract's memory grows with the
// pixel count, and a crafted 100,000 x 100,000 image would exhaust the node.
const maxOCRPixels = 64 << 20

// ocrDPI lowers dpi so that a page of w x h points renders within
// maxOCRPixels (posters and engineering drawings have huge pages).
func ocrDPI(w, h float64, dpi int) int {
	px := w / 72 * float64(dpi) * h / 72 * float64(dpi)
	for dpi > 36 && px > maxOCRPixels {
		dpi = dpi * 3 / 4
		px = w / 72 * float64(dpi) * h / 72 * float64(dpi)
	}
	return dpi
}

func tesseractPath() (string, bool) {
	p, err := exec.LookPath("tesseract")
	return p, err == nil
}

func ocrEnabled(o Options) bool {
	if o.OCR == OCROff {
		return false
	}
	_, ok := tesseractPath()
	return ok
}

// ocrMissing says why OCR cannot run, naming what is missing.
func ocrMissing(o Options) string {
	if o.OCR == OCROff {
		return "OCR is off (--ocr=off)"
	}
	return "tesseract is not on PATH (install tesseract-ocr)"
}

// OCRAvailable reports whether images and scanned pages can be read now.
func OCRAvailable() bool { return ocrEnabled(options()) }

// renderGray renders a page to a binary PGM image: tesseract reads PNM
// from stdin and it costs nothing to encode, unlike PNG.
func renderGray(inst pdfium.Pdfium, page requests.Page, dpi int) ([]byte, error) {
	size, err := inst.GetPageSize(&requests.GetPageSize{Page: page})
	if err != nil {
		return nil, err
	}
	dpi = ocrDPI(size.Width, size.Height, dpi)
	r, err := inst.RenderPageInDPI(&requests.RenderPageInDPI{Page: page, DPI: dpi,
		ImageFormat: requests.RenderImageFormatGrayscale})
	if err != nil {
		return nil, err
	}
	defer r.Cleanup()
	g, ok := r.Result.RenderedImage.(*image.Gray)
	if !ok {
		return nil, fmt.Errorf("unexpected image type %T", r.Result.RenderedImage)
	}
	w, h := g.Rect.Dx(), g.Rect.Dy()
	var b bytes.Buffer
	fmt.Fprintf(&b, "P5\n%d %d\n255\n", w, h)
	b.Grow(w * h)
	for y := 0; y < h; y++ {
		off := y * g.Stride
		b.Write(g.Pix[off : off+w])
	}
	return b.Bytes(), nil
}

// ocrImage runs tesseract on an image (PNM, PNG, JPEG or TIFF, multi-page
// TIFF included) and returns its text, pages separated by form feeds.
func ocrImage(ctx context.Context, img []byte, o Options) (string, error) {
	bin, ok := tesseractPath()
	if !ok {
		return "", errors.New(ocrMissing(o))
	}
	cmd := exec.CommandContext(ctx, bin, "stdin", "stdout", "-l", o.OCRLang, "--psm", "3")
	cmd.Stdin = bytes.NewReader(img)
	// One page is one task's work; tesseract's OpenMP threads would only
	// compete with the other slots.
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	var out limitedBuffer
	var stderr bytes.Buffer
	out.max = maxOCRText
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return "", fmt.Errorf("%w: tesseract -l %s: %v: %.200s", errOCR, o.OCRLang, err, msg)
	}
	if out.over {
		return "", fmt.Errorf("%w: tesseract output larger than %d MiB", errOCR, maxOCRText>>20)
	}
	return out.String(), nil
}

type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		b.over = true
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// loadImage reads an uploaded picture through tesseract. Without OCR the
// upload is refused as unsupported, naming what is missing.
func loadImage(ctx context.Context, kind Kind, data []byte) (Document, error) {
	o := options()
	if !ocrEnabled(o) {
		return Document{}, errorf(kind, "%w: image needs OCR (%w): %s", ErrUnsupported, ErrNoOCR, ocrMissing(o))
	}
	// PNG and JPEG say their size in the header; TIFF (no decoder in the
	// standard library) relies on the time budget.
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil && int64(cfg.Width)*int64(cfg.Height) > maxOCRPixels {
		return Document{}, errorf(kind, "%w: %d x %d pixels, more than %d Mpx", ErrTooLarge, cfg.Width, cfg.Height, maxOCRPixels>>20)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, o.PDFTimeout, ErrTimeout)
	defer cancel()
	text, err := ocrImage(ctx, data, o)
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrTimeout) {
			return Document{}, errorf(kind, "OCR %w after %v", ErrTimeout, o.PDFTimeout)
		}
		// %w: a cancel stays errors.Is(err, context.Canceled).
		return Document{}, errorf(kind, "%w", err)
	}
	var doc Document
	for i, p := range strings.Split(text, "\f") {
		p = tidyLines(p)
		if p == "" && i > 0 {
			continue
		}
		doc.Pages = append(doc.Pages, Page{Number: i + 1, Text: p})
	}
	return doc, nil
}
