package milvustest

import (
	"encoding/json"
	"math"
	"strings"
	"unicode"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// analyze turns text into the tokens Milvus's analyzer of the field would
// give (https://milvus.io/docs/analyzer-overview.md). Modelled: the
// standard tokenizer (split on anything that is not a letter or digit),
// the lowercase filter, and the stop filter with custom words plus the
// _english_ and _french_ lists (a short subset here). With no
// analyzer_params the built-in "standard" analyzer applies: standard
// tokenizer and lowercase.
func analyze(f *schemapb.FieldSchema, text string) []string {
	lower := true
	stop := map[string]bool{}
	if raw := typeParam(f, "analyzer_params"); raw != "" {
		var p struct {
			Type    string            `json:"type"`
			Filters []json.RawMessage `json:"filter"`
		}
		if json.Unmarshal([]byte(raw), &p) == nil && p.Type == "" {
			lower = false // a custom analyzer lowercases only when told
			for _, fr := range p.Filters {
				var name string
				if json.Unmarshal(fr, &name) == nil {
					lower = lower || name == "lowercase"
					continue
				}
				var sf struct {
					Type      string   `json:"type"`
					StopWords []string `json:"stop_words"`
				}
				if json.Unmarshal(fr, &sf) == nil && sf.Type == "stop" {
					for _, w := range sf.StopWords {
						switch w {
						case "_english_":
							for _, e := range englishStop {
								stop[e] = true
							}
						case "_french_":
							for _, e := range frenchStop {
								stop[e] = true
							}
						default:
							stop[w] = true
						}
					}
				}
			}
		}
	}
	var out []string
	for _, tok := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if lower {
			tok = strings.ToLower(tok)
		}
		if !stop[tok] {
			out = append(out, tok)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

var (
	englishStop = []string{"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with"}
	frenchStop  = []string{"au", "aux", "avec", "ce", "ces", "dans", "de", "des", "du", "elle", "en", "et", "il", "je", "la", "le", "les", "leur", "lui", "ma", "mais", "me", "mon", "ne", "nous", "on", "ou", "par", "pas", "pour", "qu", "que", "qui", "sa", "se", "ses", "son", "sur", "ta", "te", "tu", "un", "une", "vous"}
)

// bm25Stats are the collection-wide statistics BM25 needs.
type bm25Stats struct {
	n     int
	avgdl float64
	df    map[string]int
}

func (c *collection) bm25Stats(field string) bm25Stats {
	st := bm25Stats{df: map[string]int{}}
	total := 0
	for _, r := range c.rows {
		toks := r[field].([]string)
		st.n++
		total += len(toks)
		seen := map[string]bool{}
		for _, t := range toks {
			if !seen[t] {
				seen[t] = true
				st.df[t]++
			}
		}
	}
	if st.n > 0 {
		st.avgdl = float64(total) / float64(st.n)
	}
	return st
}

// score is BM25 as Milvus documents it (https://milvus.io/docs/full-text-search.md,
// "BM25"): sum over query terms of IDF * tf*(k1+1) / (tf + k1*(1-b+b*dl/avgdl)),
// IDF = log(1 + (N - n + 0.5)/(n + 0.5)).
func (st bm25Stats) score(query, doc []string, k1, b float64) float64 {
	tf := map[string]int{}
	for _, t := range doc {
		tf[t]++
	}
	dl := float64(len(doc))
	s := 0.0
	for _, q := range query {
		f := float64(tf[q])
		if f == 0 || st.avgdl == 0 {
			continue
		}
		n := float64(st.df[q])
		idf := math.Log(1 + (float64(st.n)-n+0.5)/(n+0.5))
		s += idf * f * (k1 + 1) / (f + k1*(1-b+b*dl/st.avgdl))
	}
	return s
}
