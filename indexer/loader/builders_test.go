package loader

import (
	"archive/zip"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// pdfEscape escapes a PDF literal string.
func pdfEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
	return r.Replace(s)
}

type pdfOpts struct {
	title   string
	encrypt bool
	cyclic  bool // page tree whose Kids include the tree itself
}

// buildPDF writes a minimal but well-formed PDF 1.4: one Courier page per
// element of pages (lines split on "\n"), a Widths array so glyph positions
// are real, an Info title and a correct xref table.
func buildPDF(t testing.TB, pages []string, o pdfOpts) []byte {
	t.Helper()
	var objs []string
	add := func(s string) int { objs = append(objs, s); return len(objs) }
	catalog := add("") // filled later
	pagesObj := add("")
	widths := strings.TrimSpace(strings.Repeat("600 ", 126-32+1))
	font := add(fmt.Sprintf("<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding /FirstChar 32 /LastChar 126 /Widths [%s] >>", widths))
	var kids []string
	for _, p := range pages {
		var cs strings.Builder
		cs.WriteString("BT /F1 12 Tf 14 TL 72 720 Td\n")
		for i, line := range strings.Split(p, "\n") {
			if i > 0 {
				cs.WriteString("T*\n")
			}
			fmt.Fprintf(&cs, "(%s) Tj\n", pdfEscape(line))
		}
		cs.WriteString("ET")
		content := add(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", cs.Len(), cs.String()))
		page := add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>", pagesObj, font, content))
		kids = append(kids, fmt.Sprintf("%d 0 R", page))
	}
	objs[catalog-1] = fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pagesObj)
	if o.cyclic {
		kids = append([]string{fmt.Sprintf("%d 0 R", pagesObj)}, kids...)
	}
	objs[pagesObj-1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(kids))
	info := add(fmt.Sprintf("<< /Title (%s) /Producer (ragnode test) >>", pdfEscape(o.title)))
	enc := 0
	if o.encrypt {
		// Standard handler, RC4 40-bit, with O/U values no empty user
		// password can match: the reader must ask for a password.
		enc = add("<< /Filter /Standard /V 1 /R 2 /Length 40 /P -44 /O <" + strings.Repeat("ab", 32) + "> /U <" + strings.Repeat("cd", 32) + "> >>")
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	trailer := fmt.Sprintf("/Size %d /Root %d 0 R /Info %d 0 R", len(objs)+1, catalog, info)
	if enc > 0 {
		trailer += fmt.Sprintf(" /Encrypt %d 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>]", enc)
	}
	fmt.Fprintf(&b, "trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n", trailer, xref)
	return b.Bytes()
}

type part struct{ name, body string }

func buildZip(t testing.TB, parts ...part) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, p := range parts {
		w, err := zw.Create(p.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(p.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const contentTypes = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`

func coreXML(title string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>` + title + `</dc:title></cp:coreProperties>`
}

const wNS = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`

func wPara(style, text string) string {
	ppr := ""
	if style != "" {
		ppr = `<w:pPr><w:pStyle w:val="` + style + `"/></w:pPr>`
	}
	// Split the text into two runs to prove runs are concatenated.
	h := len(text) / 2
	for h > 0 && h < len(text) && text[h-1] != ' ' {
		h--
	}
	return `<w:p>` + ppr + `<w:r><w:t xml:space="preserve">` + text[:h] + `</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>` + text[h:] + `</w:t></w:r></w:p>`
}

func buildDOCX(t testing.TB) []byte {
	body := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document ` + wNS + `><w:body>` +
		wPara("Title", "Quarterly Report") +
		wPara("Heading1", "Introduction") +
		wPara("", "The fleet grew by twelve percent this quarter.") +
		wPara("Berschrift2", "Regional numbers") +
		`<w:tbl><w:tr><w:tc>` + wPara("", "Region") + `</w:tc><w:tc>` + wPara("", "Units") + `</w:tc></w:tr>` +
		`<w:tr><w:tc>` + wPara("", "North") + `</w:tc><w:tc>` + wPara("", "420") + `</w:tc></w:tr></w:tbl>` +
		wPara("", "Closing remarks & thanks.") +
		`</w:body></w:document>`
	styles := `<?xml version="1.0"?><w:styles ` + wNS + `><w:style w:type="paragraph" w:styleId="Berschrift2"><w:name w:val="heading 2"/></w:style></w:styles>`
	return buildZip(t,
		part{"[Content_Types].xml", contentTypes},
		part{"word/document.xml", strings.ReplaceAll(body, "&", "&amp;")},
		part{"word/styles.xml", styles},
		part{"docProps/core.xml", coreXML("Q3 Report")},
	)
}

const pNS = `xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"`

func slideXML(title string, bullets ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><p:sld ` + pNS + `><p:cSld><p:spTree>`)
	b.WriteString(`<p:sp><p:nvSpPr><p:cNvPr id="2" name="Title"/><p:cNvSpPr/><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>` + title + `</a:t></a:r></a:p></p:txBody></p:sp>`)
	b.WriteString(`<p:sp><p:nvSpPr><p:cNvPr id="3" name="Body"/><p:cNvSpPr/><p:nvPr><p:ph idx="1"/></p:nvPr></p:nvSpPr><p:txBody>`)
	for _, x := range bullets {
		b.WriteString(`<a:p><a:r><a:t>` + x + `</a:t></a:r></a:p>`)
	}
	b.WriteString(`</p:txBody></p:sp></p:spTree></p:cSld></p:sld>`)
	return b.String()
}

func buildPPTX(t testing.TB) []byte {
	parts := []part{{"[Content_Types].xml", contentTypes}, {"ppt/presentation.xml", `<p:presentation ` + pNS + `/>`}}
	// Written out of order, with slide10 to catch lexical sorting.
	for _, n := range []int{2, 10, 1, 3, 4, 5, 6, 7, 8, 9} {
		parts = append(parts, part{fmt.Sprintf("ppt/slides/slide%d.xml", n), slideXML(fmt.Sprintf("Slide title %d", n), fmt.Sprintf("Bullet alpha %d", n), fmt.Sprintf("Bullet beta %d", n))})
	}
	parts = append(parts, part{"ppt/slides/_rels/slide1.xml.rels", `<Relationships/>`})
	return buildZip(t, parts...)
}

const sampleHTML = `<!DOCTYPE html>
<html><head><title>Cluster  Guide</title><style>body{color:red}</style>
<script>var secret = "do not index";</script></head>
<body><nav><a href="/">Home</a> | <a href="/x">Navigation junk</a></nav>
<h1>Installing ragnode</h1>
<p>First, download the
   binary.</p>
<h2>Requirements</h2>
<ul><li>Linux kernel 5.x</li><li>One <b>GPU</b> optional</li></ul>
<table><tr><th>Port</th><th>Use</th></tr><tr><td>7000</td><td>Raft</td></tr></table>
<p>Line one<br>Line two</p>
</body></html>`

const sampleEML = "From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.com>\r\n" +
	"Subject: =?UTF-8?Q?Caf=C3=A9_meeting?=\r\n" +
	"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n" +
	"\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=\"inner\"\r\n" +
	"\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Let's meet at the caf=C3=A9 at noon.\r\n" +
	"--inner\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"\r\n" +
	"<p>HTML version should be skipped</p>\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: text/plain\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"U2Vjb25kIHBhcnQgaW4g\r\nYmFzZTY0Lg==\r\n" +
	"--outer\r\n" +
	"Content-Type: application/pdf\r\n" +
	"Content-Disposition: attachment; filename=x.pdf\r\n" +
	"\r\n" +
	"JVBERi0xLjQK\r\n" +
	"--outer--\r\n"

const htmlOnlyEML = "From: a@example.com\nSubject: Only html\nContent-Type: text/html; charset=iso-8859-1\n\n<html><body><h1>News</h1><p>Caf\xe9 open</p></body></html>\n"
