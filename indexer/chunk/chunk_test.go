package chunk

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/indexer/loader"
)

// mustSplit runs Split under a context that never ends.
func mustSplit(t testing.TB, doc loader.Document, opt Options, tok Tokenizer) []Chunk {
	t.Helper()
	chunks, err := Split(context.Background(), doc, opt, tok)
	if err != nil {
		t.Fatal(err)
	}
	return chunks
}

func tokenizer(t testing.TB) Tokenizer {
	t.Helper()
	tok, err := NewTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type wordInfo struct {
	page     int
	path     string
	headingW bool // word of a heading line
}

var vocab = strings.Fields("cluster node index vector shard replica leader raft embed token query chunk page model disk memory network retry batch stream")

// genDoc builds a random multi-page markdown document whose words are all
// distinct, remembering for each word its page and heading path.
func genDoc(seed int64) (loader.Document, []string, map[string]wordInfo) {
	r := rand.New(rand.NewSource(seed))
	info := map[string]wordInfo{}
	var order []string
	n := 0
	word := func(page int, path []string, heading bool) string {
		n++
		w := fmt.Sprintf("%s%d", vocab[r.Intn(len(vocab))], n)
		info[w] = wordInfo{page, strings.Join(path, "/"), heading}
		order = append(order, w)
		return w
	}
	sentence := func(page int, path []string, words int) string {
		ws := make([]string, words)
		for i := range ws {
			ws[i] = word(page, path, false)
		}
		if r.Intn(5) > 0 {
			ws[len(ws)-1] += "."
		}
		return strings.Join(ws, " ")
	}
	var doc loader.Document
	var path []string
	for p := 1; p <= 4; p++ {
		var b strings.Builder
		for sec := 0; sec < 3; sec++ {
			if r.Intn(4) > 0 {
				lvl := 1 + r.Intn(3)
				if lvl > len(path)+1 {
					lvl = len(path) + 1
				}
				path = append(path[:lvl-1:lvl-1], "")
				hw := []string{word(p, nil, true), word(p, nil, true)}
				path[lvl-1] = strings.Join(hw, " ")
				for _, w := range hw {
					i := info[w]
					i.path = strings.Join(path, "/")
					info[w] = i
				}
				fmt.Fprintf(&b, "%s %s\n", strings.Repeat("#", lvl), path[lvl-1])
				if r.Intn(2) == 0 {
					b.WriteString("\n")
				}
			}
			for para := 0; para < 1+r.Intn(5); para++ {
				switch r.Intn(6) {
				case 0: // one very long line without sentence ends
					ws := make([]string, 150+r.Intn(200))
					for i := range ws {
						ws[i] = word(p, path, false)
					}
					b.WriteString(strings.Join(ws, " "))
				case 1: // several lines
					for l := 0; l < 2+r.Intn(6); l++ {
						b.WriteString("- " + sentence(p, path, 3+r.Intn(12)) + "\n")
					}
				default:
					for s := 0; s < 1+r.Intn(12); s++ {
						b.WriteString(sentence(p, path, 2+r.Intn(25)) + " ")
					}
				}
				b.WriteString("\n\n")
			}
		}
		doc.Pages = append(doc.Pages, loader.Page{Number: p, Text: b.String()})
	}
	// "- " bullets are not words we track.
	return doc, order, info
}

func chunkWords(c Chunk) []string {
	var out []string
	for _, f := range strings.Fields(c.Text) {
		f = strings.TrimRight(strings.TrimLeft(f, "#-"), ".")
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func TestSplitProperties(t *testing.T) {
	tok := tokenizer(t)
	opts := []Options{{Size: 64, Overlap: 16}, {Size: 128, Overlap: 30, MinTokens: 3}, {}, {Size: 40, Overlap: -1}}
	for seed := int64(1); seed <= 2; seed++ {
		doc, order, info := genDoc(seed)
		for _, opt := range opts {
			name := fmt.Sprintf("seed%d/size%d/overlap%d", seed, opt.Size, opt.Overlap)
			t.Run(name, func(t *testing.T) {
				checkProperties(t, doc, order, info, opt, tok)
			})
		}
	}
}

func checkProperties(t *testing.T, doc loader.Document, order []string, info map[string]wordInfo, opt Options, tok Tokenizer) {
	chunks := mustSplit(t, doc, opt, tok)
	n := opt.normalized()
	if len(chunks) == 0 {
		t.Fatal("no chunks")
	}
	var rebuilt []string
	for i, c := range chunks {
		if c.Index != i {
			t.Fatalf("chunk %d has Index %d", i, c.Index)
		}
		if c.Tokens != tok.Count(c.Text) {
			t.Errorf("chunk %d: Tokens %d, recount %d", i, c.Tokens, tok.Count(c.Text))
		}
		if c.Tokens > n.Size {
			t.Errorf("chunk %d: %d tokens > Size %d", i, c.Tokens, n.Size)
		}
		sectionSize := 0
		for _, o := range chunks {
			if o.Page == c.Page && reflect.DeepEqual(o.Headings, c.Headings) {
				sectionSize++
			}
		}
		if c.Tokens < n.MinTokens && sectionSize == 1 {
			t.Errorf("chunk %d: %d tokens < MinTokens %d", i, c.Tokens, n.MinTokens)
		}
		ws := chunkWords(c)
		path := strings.Join(c.Headings, "/")
		for _, w := range ws {
			wi, ok := info[w]
			if !ok {
				t.Fatalf("chunk %d: unknown word %q", i, w)
			}
			if wi.page != c.Page {
				t.Errorf("chunk %d (page %d) holds word %q of page %d", i, c.Page, w, wi.page)
			}
			// Words of a folded heading-only parent section carry its
			// shorter path; every other word must match exactly.
			if wi.path != path && !(wi.headingW && strings.HasPrefix(path, wi.path+"/")) {
				t.Errorf("chunk %d (%q) holds word %q of section %q", i, path, w, wi.path)
			}
		}
		k := 0
		if i > 0 {
			prev := chunks[i-1]
			pw := chunkWords(prev)
			for k = min(len(pw), len(ws)); k > 0; k-- {
				if reflect.DeepEqual(pw[len(pw)-k:], ws[:k]) {
					break
				}
			}
			same := prev.Page == c.Page && reflect.DeepEqual(prev.Headings, c.Headings)
			if same && n.Overlap > 0 && k == 0 {
				t.Errorf("chunks %d and %d of one section do not overlap:\n%q\n%q", i-1, i, prev.Text, c.Text)
			}
			if !same && k > 0 {
				t.Errorf("chunks %d and %d of different sections overlap", i-1, i)
			}
			if k > 0 {
				if ot := tok.Count(strings.Join(ws[:k], " ")); ot > n.Overlap+2 {
					t.Errorf("chunk %d: overlap %d tokens > %d", i, ot, n.Overlap)
				}
			}
		}
		rebuilt = append(rebuilt, ws[k:]...)
	}
	if !reflect.DeepEqual(rebuilt, order) {
		for i := range min(len(rebuilt), len(order)) {
			if rebuilt[i] != order[i] {
				t.Fatalf("text lost or reordered at word %d: got %q want %q (len %d vs %d)", i, rebuilt[i], order[i], len(rebuilt), len(order))
			}
		}
		t.Fatalf("rebuilt %d words, input has %d", len(rebuilt), len(order))
	}
	if again := mustSplit(t, doc, opt, tok); !reflect.DeepEqual(again, chunks) {
		t.Fatal("Split is not deterministic")
	}
}

func TestHeadingsAndPages(t *testing.T) {
	tok := tokenizer(t)
	doc := loader.Document{Pages: []loader.Page{
		{Number: 1, Text: "# Guide\n## Install\n\nDownload the binary and unpack it somewhere.\n\n## Configure\n\nEdit the config file with care."},
		{Number: 2, Text: "More configuration notes continue on this page.\n\n# Appendix\n\n```\n# not a heading inside code\n```\nThe end of the appendix text."},
	}}
	got := mustSplit(t, doc, Options{}, tok)
	want := []struct {
		page     int
		headings []string
		prefix   string
	}{
		{1, []string{"Guide", "Install"}, "# Guide\n\n## Install\n\nDownload"},
		{1, []string{"Guide", "Configure"}, "## Configure\n\nEdit"},
		{2, []string{"Guide", "Configure"}, "More configuration"},
		{2, []string{"Appendix"}, "# Appendix\n\n```\n# not a heading"},
	}
	if len(got) != len(want) {
		for _, c := range got {
			t.Logf("%+v", c)
		}
		t.Fatalf("got %d chunks, want %d", len(got), len(want))
	}
	for i, w := range want {
		c := got[i]
		if c.Page != w.page || !reflect.DeepEqual(c.Headings, w.headings) || !strings.HasPrefix(c.Text, w.prefix) {
			t.Errorf("chunk %d = page %d %q %q; want page %d %q prefix %q", i, c.Page, c.Headings, c.Text, w.page, w.headings, w.prefix)
		}
	}
}

func TestTinyDocuments(t *testing.T) {
	tok := tokenizer(t)
	if got := mustSplit(t, loader.Document{Pages: []loader.Page{{Text: " \n\n\t "}}}, Options{}, tok); len(got) != 0 {
		t.Fatalf("whitespace doc gave %+v", got)
	}
	if got := mustSplit(t, loader.Document{}, Options{}, tok); len(got) != 0 {
		t.Fatalf("empty doc gave %+v", got)
	}
	got := mustSplit(t, loader.Document{Pages: []loader.Page{{Text: "Hello"}}}, Options{}, tok)
	if len(got) != 1 || got[0].Text != "Hello" || got[0].Tokens != 1 {
		t.Fatalf("tiny doc gave %+v", got)
	}
	// Below MinTokens chunks vanish when the document has bigger ones.
	got = mustSplit(t, loader.Document{Pages: []loader.Page{{Text: "# A\nok\n\n# B\n\nThis section has enough words to be kept as a chunk."}}}, Options{}, tok)
	if len(got) != 1 || got[0].Headings[0] != "B" || got[0].Index != 0 {
		t.Fatalf("got %+v", got)
	}
}

func TestGiantWord(t *testing.T) {
	tok := tokenizer(t)
	r := rand.New(rand.NewSource(7))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, 6000)
	for i := range b {
		b[i] = alphabet[r.Intn(len(alphabet))]
	}
	word := string(b) + "日本語のテキスト" + strings.Repeat("é", 300)
	chunks := mustSplit(t, loader.Document{Pages: []loader.Page{{Text: "before " + word + " after"}}}, Options{Size: 50, Overlap: -1}, tok)
	var all strings.Builder
	for _, c := range chunks {
		if c.Tokens > 50 {
			t.Errorf("chunk %d has %d tokens", c.Index, c.Tokens)
		}
		all.WriteString(c.Text)
	}
	if got := strings.ReplaceAll(all.String(), " ", ""); got != "before"+word+"after" {
		t.Fatalf("giant word not preserved")
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.normalized()
	if o != (Options{Size: 512, Overlap: 100, MinTokens: 5}) {
		t.Fatalf("defaults = %+v", o)
	}
	if o := (Options{Size: 10}).normalized(); o.Overlap != 5 {
		t.Fatalf("overlap not capped: %+v", o)
	}
	if o := (Options{Overlap: -1, MinTokens: -1}).normalized(); o.Overlap != 0 || o.MinTokens != 0 {
		t.Fatalf("negatives = %+v", o)
	}
}
