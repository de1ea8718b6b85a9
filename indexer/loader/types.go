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
}

// Extensions lists the file extensions Detect accepts (lower case, no dot),
// sorted.
func Extensions() []string {
	out := make([]string, 0, len(extKinds))
	for ext := range extKinds {
		out = append(out, ext)
	}
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
