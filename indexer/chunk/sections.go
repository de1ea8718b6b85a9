package chunk

import (
	"strings"

	"github.com/ragnode/ragnode/indexer/loader"
)

type segment struct {
	page     int
	headings []string
	text     string
	bodyless bool // only a heading line
}

// segments cuts the document at headings and page boundaries.
func segments(doc loader.Document) []segment {
	var segs []segment
	type level struct {
		n    int
		text string
	}
	var stack []level
	path := func() []string {
		if len(stack) == 0 {
			return nil
		}
		p := make([]string, len(stack))
		for i, l := range stack {
			p[i] = l.text
		}
		return p
	}
	for _, pg := range doc.Pages {
		var cur []string
		curPath := path()
		headingLine := false
		flush := func() {
			text := strings.Join(cur, "\n")
			if strings.TrimSpace(text) != "" {
				bodyless := headingLine && strings.TrimSpace(strings.Join(cur[1:], "\n")) == ""
				segs = append(segs, segment{page: pg.Number, headings: curPath, text: text, bodyless: bodyless})
			}
			cur = cur[:0]
		}
		fence := ""
		for _, line := range strings.Split(strings.ReplaceAll(pg.Text, "\r\n", "\n"), "\n") {
			if f := fenceMarker(line); f != "" {
				switch {
				case fence == "":
					fence = f
				case strings.HasPrefix(f, fence):
					fence = ""
				}
			}
			if fence == "" {
				if n, text, ok := parseHeading(line); ok {
					flush()
					for len(stack) > 0 && stack[len(stack)-1].n >= n {
						stack = stack[:len(stack)-1]
					}
					stack = append(stack, level{n, text})
					curPath = path()
					headingLine = true
					cur = append(cur, strings.TrimSpace(line))
					continue
				}
			}
			if len(cur) == 0 {
				headingLine = false
			}
			cur = append(cur, line)
		}
		flush()
	}
	// Fold heading-only sections into a nested follower on the same page.
	out := segs[:0]
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		if s.bodyless && i+1 < len(segs) {
			next := &segs[i+1]
			if next.page == s.page && isPrefix(s.headings, next.headings) {
				next.text = s.text + "\n\n" + next.text
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

func isPrefix(a, b []string) bool {
	if len(a) >= len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func fenceMarker(line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return ""
	}
	for _, m := range []string{"```", "~~~"} {
		if strings.HasPrefix(t, m) {
			n := 0
			for n < len(t) && t[n] == m[0] {
				n++
			}
			return t[:n]
		}
	}
	return ""
}

// parseHeading recognises CommonMark ATX headings: up to three spaces of
// indent, 1-6 '#', then a space (or nothing), optional closing '#'s.
func parseHeading(line string) (int, string, bool) {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 || !strings.HasPrefix(t, "#") {
		return 0, "", false
	}
	n := 0
	for n < len(t) && t[n] == '#' {
		n++
	}
	if n > 6 || (n < len(t) && t[n] != ' ' && t[n] != '\t') {
		return 0, "", false
	}
	text := strings.TrimSpace(t[n:])
	if trimmed := strings.TrimRight(text, "#"); trimmed == "" || strings.HasSuffix(trimmed, " ") || strings.HasSuffix(trimmed, "\t") {
		text = strings.TrimSpace(trimmed)
	}
	if text == "" {
		return 0, "", false
	}
	return n, text, true
}
