package loader

import "sort"

// kindMIME is the media type of each kind, as browsers and RAGondin's
// clients name them.
var kindMIME = map[Kind][]string{
	TXT:  {"text/plain"},
	MD:   {"text/markdown"},
	HTML: {"text/html", "application/xhtml+xml"},
	PDF:  {"application/pdf"},
	DOCX: {"application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
	PPTX: {"application/vnd.openxmlformats-officedocument.presentationml.presentation"},
	CSV:  {"text/csv"},
	JSON: {"application/json"},
	EML:  {"message/rfc822"},
	PNG:  {"image/png"},
	JPEG: {"image/jpeg"},
	TIFF: {"image/tiff"},
}

// imageExts are the extensions of the image kinds (read by OCR).
var imageExts = []string{"png", "jpg", "jpeg", "tif", "tiff"}

// Extensions lists the file extensions Detect accepts (lower case, no dot),
// sorted.
func Extensions() []string {
	out := make([]string, 0, len(extKinds)+len(imageExts))
	for ext := range extKinds {
		out = append(out, ext)
	}
	// Images are told by their content, not their name; these are the
	// names they arrive under.
	out = append(out, imageExts...)
	sort.Strings(out)
	return out
}

// MIMETypes lists the media types of the supported kinds, sorted.
func MIMETypes() []string {
	var out []string
	for _, k := range supported {
		out = append(out, kindMIME[k]...)
	}
	sort.Strings(out)
	return out
}
