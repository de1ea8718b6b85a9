package transport

import (
	"path"
	"slices"
	"strings"
)

// mimeExt is the extension a file of each media type ragnode parses is
// parsed as.
var mimeExt = map[string]string{
	"text/plain":            "txt",
	"text/markdown":         "md",
	"text/html":             "html",
	"application/xhtml+xml": "xhtml",
	"application/pdf":       "pdf",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   "docx",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
	"text/csv":         "csv",
	"application/json": "json",
	"message/rfc822":   "eml",
	"image/png":        "png",
	"image/jpeg":       "jpg",
	"image/tiff":       "tiff",
}

// typedName is OpenRAG's rule for an upload whose extension is not a
// supported one (validate_file_format): a supported "mimetype" in its
// metadata says how to parse it, and OpenRAG stores the file under that
// type's suffix ("report" sent as application/pdf becomes "report.pdf").
// ragnode's type detection reads the name, so the name gets the suffix.
// Any other name is returned as it is (and refused, 415, when its type is
// unknown).
func typedName(name string, meta map[string]any, info CompatInfo) string {
	mt, _ := meta["mimetype"].(string)
	if mt == "" {
		return name
	}
	if ext := strings.TrimPrefix(strings.ToLower(path.Ext(name)), "."); ext != "" && slices.Contains(info.Extensions, ext) {
		return name
	}
	mt, _, _ = strings.Cut(mt, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	ext, ok := mimeExt[mt]
	if !ok || !slices.Contains(info.MimeTypes, mt) {
		return name
	}
	return name + "." + ext
}
