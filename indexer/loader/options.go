package loader

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
)

// OCRMode says whether pages without a text layer are read by tesseract.
type OCRMode string

// OCR modes.
const (
	// OCRAuto uses tesseract when it is on PATH and refuses scanned
	// documents and images (naming what is missing) when it is not.
	OCRAuto OCRMode = "auto"
	// OCROff never runs tesseract, even when it is installed.
	OCROff OCRMode = "off"
)

// PDFInterrupt says how a running PDF document can be stopped.
type PDFInterrupt string

// PDF interrupt modes.
const (
	// PDFInterruptInstruction (the default) lets a cancel or timeout stop
	// the engine inside a page: wazero checks for it at every function
	// entry and loop, which roughly doubles the extraction time.
	PDFInterruptInstruction PDFInterrupt = "instruction"
	// PDFInterruptPage checks only between pages. A cancel still stops a
	// document at the next page (pages take milliseconds), but a single
	// page that runs away cannot be stopped: its runner is abandoned with
	// its slot (and this engine instance) kept busy until the page ends.
	PDFInterruptPage PDFInterrupt = "page"
)

// ParsePDFInterrupt validates a --pdf-interrupt flag value ("" means
// instruction).
func ParsePDFInterrupt(s string) (PDFInterrupt, error) {
	switch m := PDFInterrupt(strings.ToLower(strings.TrimSpace(s))); m {
	case "", PDFInterruptInstruction:
		return PDFInterruptInstruction, nil
	case PDFInterruptPage:
		return PDFInterruptPage, nil
	}
	return "", fmt.Errorf("--pdf-interrupt %q: want instruction or page", s)
}

// Options tune the loaders for the whole process. The zero value is usable:
// every field has a default.
type Options struct {
	// PDFSlots is the number of PDF documents read at once (PDFium
	// WebAssembly instances). Set it to the node's task slots. Default:
	// GOMAXPROCS. Only the first start of the engine uses it.
	PDFSlots int
	// PDFTimeout bounds one PDF document (text and OCR). Default 5 minutes.
	PDFTimeout time.Duration
	// OCR: auto (default) or off.
	OCR OCRMode
	// OCRLang is tesseract's -l value, e.g. "eng" or "eng+deu". Default "eng".
	OCRLang string
	// OCRDPI is the resolution pages are rendered at for OCR. Default 300.
	OCRDPI int
	// CompileCacheDir, when set, keeps wazero's compiled PDFium module on
	// disk so that the next process starts in well under a second instead
	// of paying the ~4 s compilation again.
	CompileCacheDir string
	// Prestart starts the PDF engine in the background at Configure, so
	// that the first PDF task does not wait for the compilation. Off, the
	// engine starts at the first PDF (tests and tools that never read one
	// pay nothing).
	Prestart bool
	// PDFInterrupt: instruction (default) or page. Only the first start of
	// the engine uses it.
	PDFInterrupt PDFInterrupt
}

func (o Options) withDefaults() Options {
	if o.PDFSlots <= 0 {
		o.PDFSlots = runtime.GOMAXPROCS(0)
	}
	if o.PDFTimeout <= 0 {
		o.PDFTimeout = 5 * time.Minute
	}
	if o.OCR == "" {
		o.OCR = OCRAuto
	}
	if o.OCRLang == "" {
		o.OCRLang = "eng"
	}
	if o.PDFInterrupt == "" {
		o.PDFInterrupt = PDFInterruptInstruction
	}
	if o.OCRDPI <= 0 {
		o.OCRDPI = 300
	}
	return o
}

var (
	optMu   sync.Mutex
	current = Options{}.withDefaults()
)

// Configure sets the process-wide options and, with Prestart, starts the
// PDF engine in the background. Call it once at process start; later calls
// update the OCR and timeout settings but cannot resize an engine that has
// already started (it is compiled and sized once per process).
func Configure(o Options) {
	o = o.withDefaults()
	optMu.Lock()
	current = o
	optMu.Unlock()
	if o.Prestart {
		go func() { _, _ = engine() }()
	}
}

func options() Options {
	optMu.Lock()
	defer optMu.Unlock()
	return current
}

// ParseOCRMode validates a --ocr flag value ("" means auto).
func ParseOCRMode(s string) (OCRMode, error) {
	switch m := OCRMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", OCRAuto:
		return OCRAuto, nil
	case OCROff:
		return OCROff, nil
	}
	return "", fmt.Errorf("--ocr %q: want auto or off", s)
}
