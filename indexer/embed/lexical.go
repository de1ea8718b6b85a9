package embed

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unicode"
	"unicode/utf8"
)

// DefaultLexicalDim is the dimension NewLexical uses when given 0 or less.
const DefaultLexicalDim = 384

// Lexical is a deterministic embedder that needs neither network nor model.
//
// A text is folded (case folding through the Unicode simple-fold orbit,
// Latin diacritics stripped, combining marks dropped) and split into words,
// runs of letters and digits. Its features are word unigrams, word bigrams
// and character 3-grams of each word padded with boundary markers, so that
// inflections and typos still overlap. Each feature gets weight
// kindWeight*(1+ln tf) and is added with a sign into one of Dim buckets
// chosen by a 64-bit FNV-1a hash; the result is L2-normalised, so a dot
// product is a cosine similarity. The same text always yields the same vector
// on every machine and Go version. A text with no words yields the zero
// vector.
//
// Lexical is safe for concurrent use.
type Lexical struct {
	dim int
}

// NewLexical returns a Lexical embedder of the given dimension
// (DefaultLexicalDim if dim <= 0).
func NewLexical(dim int) *Lexical {
	if dim <= 0 {
		dim = DefaultLexicalDim
	}
	return &Lexical{dim: dim}
}

// Dim returns the vector length.
func (l *Lexical) Dim() int { return l.dim }

// Name returns "lexical-<dim>": the dimension is part of the name because
// vectors of different dimensions live in different hash spaces.
func (l *Lexical) Name() string { return fmt.Sprintf("lexical-%d", l.dim) }

// Embed embeds texts, using up to GOMAXPROCS goroutines for large batches.
func (l *Lexical) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	workers := runtime.GOMAXPROCS(0)
	if workers > len(texts)/4 {
		workers = len(texts) / 4
	}
	if workers <= 1 {
		for i, t := range texts {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			out[i] = l.embedOne(t)
		}
		return out, nil
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = l.embedOne(texts[i])
			}
		}()
	}
	var err error
	for i := range texts {
		if err = ctx.Err(); err != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return out, nil
}

const (
	kindWord byte = iota + 1
	kindBigram
	kindTrigram
)

// Words carry most of the meaning; bigrams reward matching phrases; the many
// character 3-grams get a small weight so they smooth over inflections
// without drowning the word features.
var kindWeight = [...]float64{kindWord: 1.0, kindBigram: 0.6, kindTrigram: 0.25}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	// Boundary runes padding a word for 3-grams; control characters never
	// occur inside a word, so they cannot collide with real text.
	wordStart = '\x02'
	wordEnd   = '\x03'
)

type feature struct {
	count uint32
	kind  byte
}

// scratch holds per-call buffers. Features are counted in an open-addressing
// table keyed by the mixed hash: a Go map spent most of the time here.
type scratch struct {
	slots []slot
	used  []int32 // occupied slot indexes, to iterate and reset cheaply
	words [][]rune
	runes []rune
	acc   []float64
}

type slot struct {
	key uint64 // mixed feature hash; 0 marks an empty slot
	feature
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{slots: make([]slot, 8192)}
}}

func (l *Lexical) embedOne(text string) []float32 {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.reset()
	s.words = s.words[:0]
	s.runes = s.runes[:0]

	// Words are slices of one shared rune buffer; record boundaries first
	// because appending may move the buffer.
	var bounds []int
	start := -1
	for _, r := range text {
		if f, ok := foldRune(r); ok {
			if start < 0 {
				start = len(s.runes)
			}
			s.runes = append(s.runes, f)
			continue
		}
		if unicode.Is(unicode.Mn, r) && start >= 0 {
			continue // a combining mark belongs to the word it decorates
		}
		if start >= 0 {
			bounds = append(bounds, start, len(s.runes))
			start = -1
		}
	}
	if start >= 0 {
		bounds = append(bounds, start, len(s.runes))
	}
	for i := 0; i < len(bounds); i += 2 {
		s.words = append(s.words, s.runes[bounds[i]:bounds[i+1]])
	}

	for i, w := range s.words {
		h := hashRunes(hashByte(fnvOffset, kindWord), w)
		s.add(h, kindWord)
		if i > 0 {
			b := hashRunes(hashByte(fnvOffset, kindBigram), s.words[i-1])
			b = hashByte(b, 0)
			s.add(hashRunes(b, w), kindBigram)
		}
		// 3-grams over wordStart+w+wordEnd without building the padded word.
		n := len(w) + 2
		at := func(j int) rune {
			switch {
			case j == 0:
				return wordStart
			case j == n-1:
				return wordEnd
			}
			return w[j-1]
		}
		for j := 0; j+3 <= n; j++ {
			t := hashByte(fnvOffset, kindTrigram)
			t = hashRune(t, at(j))
			t = hashRune(t, at(j+1))
			t = hashRune(t, at(j+2))
			s.add(t, kindTrigram)
		}
	}

	if cap(s.acc) < l.dim {
		s.acc = make([]float64, l.dim)
	}
	acc := s.acc[:l.dim]
	clear(acc)
	for _, i := range s.used {
		h, f := s.slots[i].key, s.slots[i].feature
		v := kindWeight[f.kind] * (1 + math.Log(float64(f.count)))
		if h>>63 != 0 {
			v = -v
		}
		acc[h%uint64(l.dim)] += v
	}
	var norm float64
	for _, v := range acc {
		norm += v * v
	}
	out := make([]float32, l.dim)
	if norm == 0 {
		return out
	}
	inv := 1 / math.Sqrt(norm)
	for i, v := range acc {
		out[i] = float32(v * inv)
	}
	return out
}

func (s *scratch) reset() {
	for _, i := range s.used {
		s.slots[i] = slot{}
	}
	s.used = s.used[:0]
}

func (s *scratch) add(h uint64, kind byte) {
	h = mix64(h)
	if h == 0 {
		h = 1 // keep 0 free as the empty marker; one feature in 2^64 shifts
	}
	if 2*(len(s.used)+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if sl.key == h {
			sl.count++
			return
		}
		if sl.key == 0 {
			*sl = slot{key: h, feature: feature{count: 1, kind: kind}}
			s.used = append(s.used, int32(i))
			return
		}
	}
}

func (s *scratch) grow() {
	old := make([]slot, 0, len(s.used))
	for _, i := range s.used {
		old = append(old, s.slots[i])
	}
	s.slots = make([]slot, 2*len(s.slots))
	s.used = s.used[:0]
	mask := uint64(len(s.slots) - 1)
	for _, o := range old {
		i := o.key & mask
		for s.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = o
		s.used = append(s.used, int32(i))
	}
}

func hashByte(h uint64, b byte) uint64 {
	return (h ^ uint64(b)) * fnvPrime
}

func hashRune(h uint64, r rune) uint64 {
	if r < utf8.RuneSelf {
		return hashByte(h, byte(r))
	}
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], r)
	for _, b := range buf[:n] {
		h = hashByte(h, b)
	}
	return h
}

func hashRunes(h uint64, rs []rune) uint64 {
	for _, r := range rs {
		h = hashRune(h, r)
	}
	return h
}

// mix64 spreads FNV's weakly mixed high and low bits before they pick the
// bucket and the sign (the murmur3 finaliser).
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// foldRune reports whether r is part of a word and, if so, its folded form.
func foldRune(r rune) (rune, bool) {
	if r < utf8.RuneSelf {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			return r, true
		case 'A' <= r && r <= 'Z':
			return r + ('a' - 'A'), true
		}
		return 0, false
	}
	if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
		return 0, false
	}
	// The smallest member of the simple-fold orbit, lower-cased, maps every
	// case variant (including the Kelvin sign, long s, final sigma) to one
	// rune.
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	r = unicode.ToLower(min)
	if b, ok := latinBase[r]; ok {
		r = b
	}
	return r, true
}

// latinBase strips diacritics from precomposed lower-case Latin letters so
// "café" and "cafe" share features; decomposed text loses its combining
// marks in the tokenizer instead.
var latinBase = func() map[rune]rune {
	groups := map[rune]string{
		'a': "àáâãäåāăą",
		'c': "çćĉċč",
		'd': "ďđ",
		'e': "èéêëēĕėęě",
		'g': "ĝğġģ",
		'h': "ĥħ",
		'i': "ìíîïĩīĭįı",
		'j': "ĵ",
		'k': "ķ",
		'l': "ĺļľŀł",
		'n': "ñńņňŉ",
		'o': "òóôõöøōŏő",
		'r': "ŕŗř",
		's': "śŝşš",
		't': "ţťŧ",
		'u': "ùúûüũūŭůűų",
		'w': "ŵ",
		'y': "ýÿŷ",
		'z': "źżž",
	}
	m := make(map[rune]rune)
	for base, vs := range groups {
		for _, v := range vs {
			m[v] = base
		}
	}
	return m
}()
