package loader

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// extKinds maps extensions (lower case, no dot) to the text kind they name.
// Binary kinds are recognised by content, the extension only breaks ties.
var extKinds = map[string]Kind{
	"txt": TXT, "text": TXT, "log": TXT,
	"md": MD, "markdown": MD, "mdown": MD, "mkd": MD,
	"html": HTML, "htm": HTML, "xhtml": HTML,
	"pdf": PDF, "docx": DOCX, "pptx": PPTX,
	"csv": CSV, "json": JSON, "eml": EML,
}

// binaryMagic lists signatures of common formats we refuse, so that the
// error names what the file is rather than just "binary".
var binaryMagic = []struct {
	magic string
	what  string
}{
	{"GIF87a", "GIF image"},
	{"GIF89a", "GIF image"},
	{"\x7fELF", "ELF executable"},
	{"MZ", "Windows executable"},
	{"\x1f\x8b", "gzip archive"},
	{"BZh", "bzip2 archive"},
	{"\xfd7zXZ\x00", "xz archive"},
	{"7z\xbc\xaf\x27\x1c", "7z archive"},
	{"Rar!\x1a\x07", "RAR archive"},
	{"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy MS Office (OLE) file"},
	{"RIFF", "RIFF media file"},
	{"OggS", "Ogg media file"},
	{"ID3", "MP3 audio"},
	{"fLaC", "FLAC audio"},
	{"\x00\x00\x00\x0cjP  ", "JPEG 2000 image"},
	{"\xca\xfe\xba\xbe", "Java class / Mach-O file"},
	{"\xcf\xfa\xed\xfe", "Mach-O executable"},
	{"SQLite format 3\x00", "SQLite database"},
	{"\x00asm", "WebAssembly module"},
}

// imageMagic lists the pictures OCR can read.
var imageMagic = []struct {
	magic string
	kind  Kind
	what  string
}{
	{"\x89PNG\r\n\x1a\n", PNG, "PNG image"},
	{"\xff\xd8\xff", JPEG, "JPEG image"},
	{"II*\x00", TIFF, "TIFF image"},
	{"MM\x00*", TIFF, "TIFF image"},
}

// knownBinaryExts are refused even when their content happens to look like
// text, because indexing them as text would produce garbage.
var knownBinaryExts = map[string]bool{
	"png": true, "jpg": true, "jpeg": true, "gif": true, "bmp": true, "webp": true,
	"tif": true, "tiff": true, "ico": true, "svg": true, "exe": true, "dll": true,
	"so": true, "bin": true, "zip": true, "gz": true, "tgz": true, "tar": true,
	"bz2": true, "xz": true, "7z": true, "rar": true, "doc": true, "xls": true,
	"ppt": true, "xlsx": true, "mp3": true, "mp4": true, "wav": true,
	"avi": true, "mov": true, "iso": true, "dmg": true, "class": true, "jar": true,
	"o": true, "a": true, "wasm": true, "db": true, "sqlite": true,
}

// Detect decides the kind of a file from its first bytes (up to 4 KiB) and
// its name. Content wins over the extension for formats with a signature
// (PDF, DOCX, PPTX, HTML, e-mail); for plain-text formats the extension
// decides (csv/json/md), and text without a known extension is refused.
func Detect(name string, head []byte) (Kind, error) {
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(name)), ".")
	hinted, hasHint := extKinds[ext]

	if bytes.HasPrefix(head, []byte("%PDF-")) {
		return PDF, nil
	}
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
		return detectZip(ext, head)
	}
	for _, m := range imageMagic {
		if bytes.HasPrefix(head, []byte(m.magic)) {
			if o := options(); !ocrEnabled(o) {
				return "", fmt.Errorf("%w (%w: %s)", unsupportedError(m.what), ErrNoOCR, ocrMissing(o))
			}
			return m.kind, nil
		}
	}
	for _, m := range binaryMagic {
		if bytes.HasPrefix(head, []byte(m.magic)) {
			return "", unsupportedError(m.what)
		}
	}
	// A PDF may have junk before its header; readers accept up to 1 KiB.
	if i := bytes.Index(head, []byte("%PDF-")); i >= 0 && i < 1024 && hinted == PDF {
		return PDF, nil
	}
	if hasHint && (hinted == PDF || hinted == DOCX || hinted == PPTX) {
		if !looksText(head) {
			return "", unsupportedError("." + ext + " file without a valid " + strings.ToUpper(ext) + " signature")
		}
		// Text under a binary format's name (a .pdf that is a plain-text
		// export): the content decides, as the extension is only a hint.
		hinted = TXT
	}
	if !looksText(head) {
		return "", unsupportedError("binary content")
	}
	if od := openDocumentExt[ext]; od != "" {
		return "", openDocumentError(od, ext)
	}
	if knownBinaryExts[ext] {
		return "", unsupportedError("." + ext + " file")
	}

	body := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case hasHint && hinted != TXT:
		return hinted, nil
	case looksHTML(body):
		return HTML, nil
	case looksEmail(body):
		return EML, nil
	case ext == "" && looksJSON(body):
		return JSON, nil
	case hasHint || ext == "":
		return TXT, nil
	}
	return "", unsupportedError("unknown extension ." + ext)
}

// detectZip tells OOXML packages apart by the part names visible in the
// local file headers at the start of the archive.
func detectZip(ext string, head []byte) (Kind, error) {
	switch {
	case bytes.Contains(head, []byte("word/")):
		return DOCX, nil
	case bytes.Contains(head, []byte("ppt/")):
		return PPTX, nil
	case bytes.Contains(head, []byte("xl/")):
		return "", unsupportedError("XLSX spreadsheet")
	}
	// Writers may put large parts first so the telling names fall past the
	// head; trust the extension then, Load validates the parts anyway.
	switch ext {
	case "docx":
		return DOCX, nil
	case "pptx":
		return PPTX, nil
	}
	// OpenDocument packages start with an uncompressed "mimetype" part
	// naming what they are (ODF 1.2 part 3, 3.3).
	if i := bytes.Index(head, []byte("mimetypeapplication/vnd.oasis.opendocument.")); i >= 0 {
		sub := head[i+len("mimetypeapplication/vnd.oasis.opendocument."):]
		for what, e := range openDocumentKinds {
			if bytes.HasPrefix(sub, []byte(what)) {
				return "", openDocumentError(what, e)
			}
		}
		return "", openDocumentError("document", ext)
	}
	if od := openDocumentExt[ext]; od != "" {
		return "", openDocumentError(od, ext)
	}
	return "", unsupportedError("zip archive")
}

// openDocumentKinds maps an OpenDocument media subtype to its extension;
// openDocumentExt is the reverse.
var (
	openDocumentKinds = map[string]string{"text": "odt", "spreadsheet": "ods", "presentation": "odp", "graphics": "odg"}
	openDocumentExt   = map[string]string{"odt": "text", "ods": "spreadsheet", "odp": "presentation", "odg": "graphics"}
)

// openDocumentError names the OpenDocument kind and the ways to index it:
// the built-in loaders read the Office Open XML formats, not ODF.
func openDocumentError(what, ext string) error {
	if ext == "" {
		ext = "od*"
	}
	return unsupportedError(fmt.Sprintf("OpenDocument %s (.%s) is not read by the built-in loaders: "+
		"convert it first (soffice --headless --convert-to docx), or start the nodes with --converter %s='pandoc {in} -t markdown -o {out}'", what, ext, ext))
}

func looksText(head []byte) bool {
	if bytes.IndexByte(head, 0) >= 0 {
		return false
	}
	// The head may cut a multi-byte rune; only the last 3 bytes may be partial.
	b := head
	for i := 0; i < 3 && len(b) > 0 && !utf8.Valid(b); i++ {
		b = b[:len(b)-1]
	}
	if utf8.Valid(b) {
		return true
	}
	// Legacy 8-bit text (Latin-1 HTML/e-mail) has no NULs and few control
	// bytes; accept it and let Load decide.
	ctrl := 0
	for _, c := range head {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' {
			ctrl++
		}
	}
	return ctrl*100 < len(head)
}

func looksHTML(b []byte) bool {
	n := min(len(b), 512)
	l := bytes.ToLower(b[:n])
	for _, p := range []string{"<!doctype html", "<html", "<head", "<body"} {
		if bytes.HasPrefix(l, []byte(p)) {
			return true
		}
	}
	if bytes.HasPrefix(l, []byte("<?xml")) && bytes.Contains(l, []byte("<html")) {
		return true
	}
	return false
}

// looksEmail wants at least two RFC 5322 header lines in the first block,
// one of them a header every message has.
func looksEmail(b []byte) bool {
	end := bytes.Index(b, []byte("\n\n"))
	if end < 0 {
		end = bytes.Index(b, []byte("\r\n\r\n"))
	}
	if end < 0 {
		return false
	}
	known := 0
	strong := false
	for _, line := range strings.Split(string(b[:end]), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		i := strings.IndexByte(line, ':')
		if i <= 0 || strings.ContainsAny(line[:i], " \t") {
			return false
		}
		switch strings.ToLower(line[:i]) {
		case "from", "date", "message-id", "received", "return-path", "mime-version":
			strong = true
			known++
		case "to", "subject", "cc", "content-type", "reply-to":
			known++
		}
	}
	return strong && known >= 2
}

func looksJSON(b []byte) bool {
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') {
		return false
	}
	if json.Valid(b) {
		return true
	}
	// A truncated head is not valid JSON; accept it if the decoder got past
	// the first few tokens without a syntax error.
	dec := json.NewDecoder(bytes.NewReader(b))
	for i := 0; i < 8; i++ {
		if _, err := dec.Token(); err != nil {
			return i > 2 && len(b) >= 4000
		}
	}
	return true
}
