package loader

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"unicode/utf8"
)

// maxMIMEDepth bounds nested multiparts; real mail nests 3-4 levels.
const maxMIMEDepth = 16

func loadEML(ctx context.Context, data []byte) (Document, error) {
	if bytes.IndexByte(data, 0) >= 0 {
		return Document{}, errorf(EML, "binary content (NUL byte), not an e-mail message")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return Document{}, errorf(EML, "malformed message headers: %v", err)
	}
	h := textproto.MIMEHeader(msg.Header)
	if len(h) == 0 {
		return Document{}, errorf(EML, "no message headers")
	}
	if msg.Header.Get("From") == "" && msg.Header.Get("Subject") == "" && msg.Header.Get("Date") == "" {
		return Document{}, errorf(EML, "not an e-mail message (no From, Subject or Date header)")
	}
	subject := decodeHeader(msg.Header.Get("Subject"))
	var b strings.Builder
	for _, k := range []string{"Subject", "From", "To", "Cc", "Date"} {
		if v := decodeHeader(msg.Header.Get(k)); v != "" {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	b.WriteString("\n")
	var parts []string
	if err := mimeText(ctx, h, msg.Body, 0, &parts); err != nil {
		if ctx.Err() != nil {
			return Document{}, stopped(ctx, EML)
		}
		return Document{}, errorf(EML, "%v", err)
	}
	b.WriteString(strings.Join(parts, "\n\n"))
	return Document{Title: subject, Pages: []Page{{Text: strings.TrimSpace(normalizeNewlines(b.String()))}}}, nil
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(input)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(decodeCharset(charset, b)), nil
}}

// decodeHeader turns a header value into clean UTF-8. Raw 8-bit header
// bytes (old mailers write Latin-1 there) and encoded words that claim
// UTF-8 but are not (the decoder passes those through unchecked) are both
// read as Latin-1, as bodies are.
func decodeHeader(v string) string {
	v = decodeLegacy([]byte(v))
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		v = decodeLegacy([]byte(d))
	}
	return strings.Join(strings.Fields(v), " ")
}

// decodeCharset handles the charsets seen in practice without pulling in
// x/text: UTF-8/ASCII pass through, anything else that is not valid UTF-8
// is read as Latin-1.
func decodeCharset(charset string, b []byte) string {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "windows-1252", "cp1252":
		if !utf8.Valid(b) {
			return latin1(b)
		}
	}
	return decodeLegacy(b)
}

func transferDecode(h textproto.MIMEHeader, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &base64Cleaner{r: r})
	}
	return r
}

// base64Cleaner strips line breaks and spaces that mail wraps base64 with.
type base64Cleaner struct{ r io.Reader }

func (c *base64Cleaner) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		j := 0
		for _, ch := range p[:n] {
			if ch != '\r' && ch != '\n' && ch != ' ' && ch != '\t' {
				p[j] = ch
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// mimeText collects the readable text of a MIME entity: text/plain parts,
// HTML parts converted to text when an alternative has no plain version,
// attachments skipped.
//
// ctx is looked at before each part and on every read of a body, so a large
// message stops with its task.
func mimeText(ctx context.Context, h textproto.MIMEHeader, body io.Reader, depth int, out *[]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	body = ctxReader{ctx: ctx, kind: EML, r: body}
	if depth > maxMIMEDepth {
		return errors.New("MIME parts nested too deeply")
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		// RFC 2045 says to treat an unparsable type as text/plain.
		mt, params = "text/plain", map[string]string{}
	}
	if disp, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); disp == "attachment" {
		return nil
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		boundary := params["boundary"]
		if boundary == "" {
			return fmt.Errorf("%s part without a boundary", mt)
		}
		mr := multipart.NewReader(body, boundary)
		var sub []string
		var htmlAlt []string
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("damaged %s body (truncated?): %v", mt, err)
			}
			var got []string
			if err := mimeText(ctx, p.Header, p, depth+1, &got); err != nil {
				return err
			}
			pct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if mt == "multipart/alternative" && pct == "text/html" {
				htmlAlt = append(htmlAlt, got...)
				continue
			}
			sub = append(sub, got...)
		}
		if mt == "multipart/alternative" && len(sub) == 0 {
			sub = htmlAlt
		}
		*out = append(*out, sub...)
		return nil
	case mt == "text/plain" || mt == "text/html":
		raw, err := io.ReadAll(transferDecode(h, body))
		if err != nil {
			return fmt.Errorf("damaged %s part: %v", mt, err)
		}
		text := decodeCharset(params["charset"], raw)
		if mt == "text/html" {
			_, text, err = htmlToText(ctx, text)
			if err != nil {
				return fmt.Errorf("html part: %v", err)
			}
		}
		if t := strings.TrimSpace(normalizeNewlines(text)); t != "" {
			*out = append(*out, t)
		}
		return nil
	}
	return nil
}
