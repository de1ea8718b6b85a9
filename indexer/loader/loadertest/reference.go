package loadertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Reference extracts the text of f with a tool independent of the loaders:
// pdftotext for PDF, pandoc for DOCX and HTML. pandoc 2.17 (Debian
// bookworm) has no PPTX reader, so a PPTX is printed to PDF by LibreOffice
// and read by pdftotext. tmp holds intermediate files.
func Reference(f File, tmp string) (string, error) {
	switch f.Kind {
	case "pdf":
		if m := Missing("pdftotext"); m != "" {
			return "", fmt.Errorf("%s", m)
		}
		return output("pdftotext", "-enc", "UTF-8", f.Path, "-")
	case "docx", "html":
		if m := Missing("pandoc"); m != "" {
			return "", fmt.Errorf("%s", m)
		}
		return output("pandoc", "-t", "plain", "--wrap=none", f.Path)
	case "pptx":
		if m := Missing("soffice", "pdftotext"); m != "" {
			return "", fmt.Errorf("%s", m)
		}
		out := filepath.Join(tmp, "ref-"+f.Name)
		if err := os.MkdirAll(out, 0o755); err != nil {
			return "", err
		}
		env := []string{"HOME=" + filepath.Join(tmp, "lohome")}
		if err := run(out, env, "soffice", "--headless", "--norestore", "--convert-to", "pdf", "--outdir", out, f.Path); err != nil {
			return "", err
		}
		pdf := filepath.Join(out, strings.TrimSuffix(f.Name, ".pptx")+".pdf")
		return output("pdftotext", "-enc", "UTF-8", pdf, "-")
	}
	return "", fmt.Errorf("no reference extractor for %s", f.Kind)
}

func output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %.300s", name, err, stderr.String())
	}
	return string(b), nil
}

var wordRe = regexp.MustCompile(`[\p{L}\p{N}\p{M}_]+`)

// Words counts the word tokens (Unicode \w+, lower-cased) of s.
func Words(s string) map[string]int {
	m := map[string]int{}
	for _, w := range wordRe.FindAllString(strings.ToLower(s), -1) {
		m[w]++
	}
	return m
}

// Recall is the share of ref's word tokens, with multiplicity, that got
// also has.
func Recall(ref, got string) float64 {
	r, g := Words(ref), Words(got)
	total, found := 0, 0
	for w, n := range r {
		total += n
		found += min(n, g[w])
	}
	if total == 0 {
		return 1
	}
	return float64(found) / float64(total)
}

// Missed returns up to n of ref's words that got lacks (for failure
// messages).
func Missed(ref, got string, n int) []string {
	r, g := Words(ref), Words(got)
	var out []string
	for w, c := range r {
		if c > g[w] && len(out) < n {
			out = append(out, fmt.Sprintf("%s(%d/%d)", w, g[w], c))
		}
	}
	return out
}

// Artefacts returns the characters of got that ref never contains and that
// appear more than limit times: glyphs a broken font mapping produced.
// Whitespace and markdown markers the loaders add ('#', '|', '-') are
// not counted.
func Artefacts(ref, got string, limit int) map[rune]int {
	seen := map[rune]bool{}
	for _, r := range ref {
		seen[r] = true
	}
	counts := map[rune]int{}
	for _, r := range got {
		if !seen[r] && !unicode.IsSpace(r) && !strings.ContainsRune("#|-", r) {
			counts[r]++
		}
	}
	for r, n := range counts {
		if n <= limit {
			delete(counts, r)
		}
	}
	return counts
}
