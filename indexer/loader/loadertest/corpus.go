// Package loadertest builds a corpus of documents made by real producers
// (LibreOffice, groff with Ghostscript, Chromium, PDFs shipped in
// /usr/share/doc) and
// extracts reference text from them with independent tools (pdftotext,
// pandoc), so that the loaders are judged against files they did not write.
//
// Guarantee: Build never fails because a tool is missing; it returns what it
// could make and, for each file it could not, a sentence naming the missing
// tool and the Debian package that provides it.
package loadertest

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

//go:embed sources
var sources embed.FS

// File is one corpus document.
type File struct {
	Name     string // file name, e.g. "article-writer.pdf"
	Kind     string // loader kind: "pdf", "docx", "pptx", "html"
	Path     string
	Producer string // what made it
}

// tools names the Debian package of every command used here.
var tools = map[string]string{
	"soffice":   "libreoffice-writer libreoffice-impress",
	"groff":     "groff-base",
	"ps2pdf":    "ghostscript",
	"gs":        "ghostscript",
	"pdftotext": "poppler-utils",
	"pandoc":    "pandoc",
	"img2pdf":   "img2pdf",
	"tesseract": "tesseract-ocr",
	"chromium":  "chromium",
}

// Missing returns "" when every named command is on PATH, else a sentence
// naming the first missing one and its package.
func Missing(cmds ...string) string {
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Sprintf("%s not on PATH (apt-get install %s)", c, tools[c])
		}
	}
	return ""
}

// run executes a producer with a deadline; LibreOffice hangs forever on some
// broken profiles, and a test must not.
func run(dir string, env []string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %.300s", name, strings.Join(args, " "), err, out.String())
	}
	return nil
}

func writeSources(dir string) error {
	ents, err := sources.ReadDir("sources")
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, err := sources.ReadFile("sources/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Build makes the corpus in dir. skipped lists the files it could not make
// and why.
func Build(dir string) (files []File, skipped []string, err error) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, nil, err
	}
	if err := writeSources(src); err != nil {
		return nil, nil, err
	}
	add := func(name, kind, producer string) {
		files = append(files, File{Name: name, Kind: kind, Path: filepath.Join(dir, name), Producer: producer})
	}

	if m := Missing("soffice"); m != "" {
		skipped = append(skipped, "LibreOffice documents: "+m)
	} else {
		// A private profile: the default one may be locked by a desktop
		// session or another run.
		env := []string{"HOME=" + filepath.Join(dir, "lohome")}
		conv := []struct{ src, to, name, kind string }{
			{"article.html", "pdf:writer_web_pdf_Export", "article-writer.pdf", "pdf"},
			{"article.html", "docx:MS Word 2007 XML", "article-writer.docx", "docx"},
			{"letter.fodt", "pdf", "letter-writer.pdf", "pdf"},
			{"letter.fodt", "docx", "letter-writer.docx", "docx"},
			{"deck.fodp", "pdf", "deck-impress.pdf", "pdf"},
			{"deck.fodp", "pptx", "deck-impress.pptx", "pptx"},
		}
		for _, c := range conv {
			out := filepath.Join(dir, "lo-"+c.name)
			if err := os.MkdirAll(out, 0o755); err != nil {
				return nil, nil, err
			}
			if err := run(src, env, "soffice", "--headless", "--norestore", "--convert-to", c.to, "--outdir", out, c.src); err != nil {
				skipped = append(skipped, c.name+": "+err.Error())
				continue
			}
			base := strings.TrimSuffix(c.src, filepath.Ext(c.src)) + "." + c.kind
			if err := os.Rename(filepath.Join(out, base), filepath.Join(dir, c.name)); err != nil {
				skipped = append(skipped, c.name+": "+err.Error())
				continue
			}
			add(c.name, c.kind, "LibreOffice "+c.to)
		}
	}

	if m := Missing("groff", "ps2pdf"); m != "" {
		skipped = append(skipped, "manual-groff.pdf: "+m)
	} else if err := run(src, nil, "sh", "-c", "groff -Tps -man manual.man > manual.ps && ps2pdf manual.ps ../manual-groff.pdf"); err != nil {
		skipped = append(skipped, "manual-groff.pdf: "+err.Error())
	} else {
		add("manual-groff.pdf", "pdf", "groff -Tps | Ghostscript ps2pdf")
	}

	if m := Missing("chromium"); m != "" {
		skipped = append(skipped, "article-chromium.pdf: "+m)
	} else {
		// --no-sandbox: CI runs as root, where Chromium's sandbox refuses.
		out := filepath.Join(dir, "article-chromium.pdf")
		if err := run(src, []string{"HOME=" + filepath.Join(dir, "chromehome")}, "chromium", "--headless", "--no-sandbox", "--disable-gpu",
			"--no-pdf-header-footer", "--print-to-pdf="+out, "file://"+filepath.Join(src, "article.html")); err != nil {
			skipped = append(skipped, "article-chromium.pdf: "+err.Error())
		} else {
			add("article-chromium.pdf", "pdf", "Chromium --print-to-pdf")
		}
	}

	// Real-world PDFs shipped by Debian packages (a GNU Texinfo manual and
	// a DocBook spec) when they are installed.
	for _, p := range []struct{ path, pkg string }{
		{"/usr/share/doc/libtasn1-doc/libtasn1.pdf", "libtasn1-doc"},
		{"/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf", "shared-mime-info"},
	} {
		if _, err := os.Stat(p.path); err != nil {
			skipped = append(skipped, filepath.Base(p.path)+": not installed (apt-get install "+p.pkg+")")
			continue
		}
		files = append(files, File{Name: filepath.Base(p.path), Kind: "pdf", Path: p.path, Producer: p.pkg})
	}

	add("article.html", "html", "hand-written HTML")
	files[len(files)-1].Path = filepath.Join(src, "article.html")
	return files, skipped, nil
}
