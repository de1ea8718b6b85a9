package loader

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

var bom = []byte("\xef\xbb\xbf")

// normalizeNewlines turns CRLF and lone CR into LF so that downstream
// paragraph detection sees one convention.
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

func utf8Text(ctx context.Context, kind Kind, data []byte) (string, error) {
	data = bytes.TrimPrefix(data, bom)
	if ok, err := validUTF8(ctx, kind, data); err != nil {
		return "", err
	} else if !ok {
		return "", errorf(kind, "not valid UTF-8 (offset %d)", invalidOffset(data))
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return "", errorf(kind, "binary content (NUL byte)")
	}
	return normalizeNewlines(string(data)), nil
}

func invalidOffset(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func loadText(ctx context.Context, kind Kind, data []byte) (Document, error) {
	s, err := utf8Text(ctx, kind, data)
	if err != nil {
		return Document{}, err
	}
	doc := Document{Pages: []Page{{Text: s}}}
	if kind == MD {
		doc.Title = markdownTitle(s)
	}
	return doc, nil
}

// markdownTitle is the first level-1 ATX heading, if any.
func markdownTitle(s string) string {
	for _, line := range strings.SplitN(s, "\n", 200) {
		if t, ok := strings.CutPrefix(strings.TrimSpace(line), "# "); ok {
			return strings.TrimSpace(strings.TrimRight(t, "#"))
		}
	}
	return ""
}

func loadCSV(ctx context.Context, data []byte) (Document, error) {
	s, err := utf8Text(ctx, CSV, data)
	if err != nil {
		return Document{}, err
	}
	r := csv.NewReader(strings.NewReader(s))
	r.FieldsPerRecord = -1 // ragged exports are common; missing cells are just absent
	r.ReuseRecord = false
	header, err := r.Read()
	if err == io.EOF {
		return Document{Pages: []Page{{Text: ""}}}, nil
	}
	if err != nil {
		return Document{}, errorf(CSV, "%v", csvErr(err))
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	var b strings.Builder
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := stopped(ctx, CSV); err != nil {
				return Document{}, err
			}
		}
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Document{}, errorf(CSV, "%v", csvErr(err))
		}
		first := true
		for i, v := range rec {
			v = strings.Join(strings.Fields(v), " ")
			if v == "" {
				continue
			}
			name := ""
			if i < len(header) {
				name = header[i]
			}
			if name == "" {
				name = "column " + strconv.Itoa(i+1)
			}
			if !first {
				b.WriteString("; ")
			}
			first = false
			b.WriteString(name)
			b.WriteString(": ")
			b.WriteString(v)
		}
		if !first {
			b.WriteByte('\n')
		}
	}
	return Document{Pages: []Page{{Text: b.String()}}}, nil
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return errors.New("malformed CSV at line " + strconv.Itoa(pe.Line) + ": " + pe.Err.Error())
	}
	return err
}

func loadJSON(ctx context.Context, data []byte) (Document, error) {
	data = bytes.TrimPrefix(data, bom)
	if ok, err := validUTF8(ctx, JSON, data); err != nil {
		return Document{}, err
	} else if !ok {
		return Document{}, errorf(JSON, "not valid UTF-8 (offset %d)", invalidOffset(data))
	}
	// encoding/json's own nesting limit (10,000) is far above ours; check
	// depth first so the error names the cap rather than a syntax problem.
	if jsonTooDeep(data) {
		return Document{}, depthError(JSON)
	}
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Document{}, errorf(JSON, "invalid JSON at byte %d: %v", se.Offset, err)
		}
		return Document{}, errorf(JSON, "invalid JSON: %v", err)
	}
	text, err := flattenJSON(ctx, raw)
	if err != nil {
		return Document{}, errorf(JSON, "%w", err)
	}
	return Document{Pages: []Page{{Text: text}}}, nil
}

// jsonTooDeep scans brackets outside strings; it needs no parse, so it is
// safe on any input.
func jsonTooDeep(b []byte) bool {
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > maxDepth {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

type jsonFrame struct {
	path    string
	array   bool
	index   int
	key     string
	wantKey bool
	empty   bool
}

// flattenJSON walks the token stream rather than decoding into maps so that
// object keys keep their order in the output.
func flattenJSON(ctx context.Context, raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b strings.Builder
	var stack []*jsonFrame
	emit := func(path, value string) {
		if path == "" {
			b.WriteString(value)
		} else {
			b.WriteString(path)
			b.WriteString(": ")
			b.WriteString(value)
		}
		b.WriteByte('\n')
	}
	// current returns the path of the value about to be read.
	current := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.array {
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		}
		if f.path == "" {
			return f.key
		}
		return f.path + "." + f.key
	}
	advance := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		f.empty = false
		if f.array {
			f.index++
		} else {
			f.wantKey = true
		}
	}
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return "", err
			}
		}
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; !f.array && f.wantKey {
				if k, ok := tok.(string); ok {
					f.key = k
					f.wantKey = false
					continue
				}
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				stack = append(stack, &jsonFrame{path: current(), array: v == '[', wantKey: v == '{', empty: true})
			case '}', ']':
				f := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if f.empty {
					if f.array {
						emit(f.path, "[]")
					} else {
						emit(f.path, "{}")
					}
				}
				advance()
			}
		case string:
			emit(current(), strings.Join(strings.Fields(v), " "))
			advance()
		case json.Number:
			emit(current(), v.String())
			advance()
		case bool:
			emit(current(), strconv.FormatBool(v))
			advance()
		case nil:
			emit(current(), "null")
			advance()
		}
	}
	return b.String(), nil
}
