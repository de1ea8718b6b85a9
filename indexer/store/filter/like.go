package filter

import (
	"strings"
	"unicode/utf8"
)

// A like pattern is compiled once, at Parse, into the segments between
// its unescaped %s, and matching never backtracks. The first segment
// must match at the start, the last at the end, and each one between is
// taken at its leftmost place after the one before. Leftmost is always
// safe: a segment matches a fixed number of characters, so its leftmost
// place also ends first and leaves the most room for the rest.
//
// A segment is found by one left-to-right scan: a search for its literal
// when it has one literal at most (its _s before and after only need
// room), a bit-parallel Shift-And over the characters when _ sits between
// literals. A pattern without the latter costs O(len(s)+len(pattern));
// with it, O(len(s)×len(segment)/64) at worst. The backtracking matcher
// this replaces took 53 s on "%a%a%…" over a 60,000-character value.

// kmpOver is the anchor length above which the search is Knuth–Morris–
// Pratt rather than strings.Index: strings.Index is faster on short
// needles but, on long ones, ends in a Rabin–Karp whose fixed hash a
// crafted value can make collide at every offset.
const kmpOver = 64

type likePattern struct {
	segs []likeSeg // at least one; more when the pattern has a %
	min  int       // the fewest bytes a matching value has
}

// likeSeg is the pattern between two %s: alternating literals and runs of _.
type likeSeg struct {
	items  []likeItem
	min    int       // the fewest bytes it matches (a _ is at least one)
	anchor int       // the first literal item; -1 when none
	kmp    []int32   // the anchor's failure table, when it is longer than kmpOver
	bits   *shiftAnd // when _ sits between literals
}

type likeItem struct {
	lit   string // bytes to match; "" for a run of _
	runes int    // for a run of _: how many characters
}

// compileLike compiles a pattern as the lexer leaves it: % is any run of
// characters, _ one character, and a backslash makes the next character
// literal (\% \_ \\). Literals match bytewise, _ one UTF-8 character (or
// one byte that is not valid UTF-8).
func compileLike(p string) *likePattern {
	var (
		segs  []likeSeg
		items []likeItem
		lit   []byte
	)
	flush := func() {
		if len(lit) > 0 {
			items = append(items, likeItem{lit: string(lit)})
			lit = nil
		}
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p):
			i++
			lit = append(lit, p[i])
		case c == '%':
			flush()
			segs = append(segs, newLikeSeg(items))
			items = nil
		case c == '_':
			flush()
			if n := len(items); n > 0 && items[n-1].lit == "" {
				items[n-1].runes++
			} else {
				items = append(items, likeItem{runes: 1})
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	segs = append(segs, newLikeSeg(items))
	// %% is %, so empty segments between two %s say nothing; the first and
	// the last stay, whatever they hold, for their anchoring.
	out := &likePattern{segs: segs[:1]}
	for i := 1; i < len(segs); i++ {
		if len(segs[i].items) > 0 || i == len(segs)-1 {
			out.segs = append(out.segs, segs[i])
		}
	}
	for _, s := range out.segs {
		out.min += s.min
	}
	return out
}

func newLikeSeg(items []likeItem) likeSeg {
	g := likeSeg{items: items, anchor: -1}
	lits := 0
	for i, it := range items {
		g.min += len(it.lit) + it.runes
		if it.lit != "" {
			lits++
			if g.anchor < 0 {
				g.anchor = i
			}
		}
	}
	switch {
	case lits > 1:
		g.bits = newShiftAnd(items)
	case g.anchor >= 0 && len(items[g.anchor].lit) > kmpOver:
		g.kmp = kmpTable(items[g.anchor].lit)
	}
	return g
}

func kmpTable(p string) []int32 {
	t := make([]int32, len(p))
	k := int32(0)
	for i := 1; i < len(p); i++ {
		for k > 0 && p[i] != p[k] {
			k = t[k-1]
		}
		if p[i] == p[k] {
			k++
		}
		t[i] = k
	}
	return t
}

// match reports whether all of s matches the pattern.
func (p *likePattern) match(s string, b *Budget) (bool, error) {
	if len(s) < p.min {
		return false, nil
	}
	end, ok, err := matchAt(p.segs[0].items, s, 0, b)
	if !ok || err != nil {
		return false, err
	}
	if len(p.segs) == 1 {
		return end == len(s), nil
	}
	start, ok, err := p.segs[len(p.segs)-1].matchEnd(s, b)
	if !ok || err != nil || start < end {
		return false, err
	}
	for i := 1; i < len(p.segs)-1; i++ {
		if end, ok, err = p.segs[i].find(s[:start], end, b); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// matchAt matches items at s[i:] and returns where the match ends.
func matchAt(items []likeItem, s string, i int, b *Budget) (int, bool, error) {
	for _, it := range items {
		if it.lit != "" {
			if err := b.charge(len(it.lit)); err != nil {
				return 0, false, err
			}
			if !strings.HasPrefix(s[i:], it.lit) {
				return 0, false, nil
			}
			i += len(it.lit)
			continue
		}
		if err := b.charge(it.runes); err != nil {
			return 0, false, err
		}
		var ok bool
		if i, ok = skipRunes(s, i, it.runes); !ok {
			return 0, false, nil
		}
	}
	return i, true, nil
}

// matchEnd matches the segment at the end of s and returns where it starts.
func (g *likeSeg) matchEnd(s string, b *Budget) (int, bool, error) {
	j := len(s)
	for k := len(g.items) - 1; k >= 0; k-- {
		it := g.items[k]
		if it.lit != "" {
			if err := b.charge(len(it.lit)); err != nil {
				return 0, false, err
			}
			if !strings.HasSuffix(s[:j], it.lit) {
				return 0, false, nil
			}
			j -= len(it.lit)
			continue
		}
		if err := b.charge(it.runes); err != nil {
			return 0, false, err
		}
		for n := 0; n < it.runes; n++ {
			if j == 0 {
				return 0, false, nil
			}
			_, size := utf8.DecodeLastRuneInString(s[:j])
			j -= size
		}
	}
	return j, true, nil
}

// find matches the segment at its leftmost place in s at or after from
// and returns where that match ends.
func (g *likeSeg) find(s string, from int, b *Budget) (int, bool, error) {
	if err := b.charge(compareBase); err != nil {
		return 0, false, err
	}
	switch {
	case g.anchor < 0:
		return matchAt(g.items, s, from, b)
	case g.bits != nil:
		return g.bits.find(s, from, b)
	}
	// One literal, with runs of _ around it. Those before only need room:
	// the literal starts no sooner than that many characters on, and any
	// later place leaves it. Those after need room too, which a later
	// place has less of, so the literal's first place decides.
	p0 := from
	if g.anchor == 1 {
		if err := b.charge(g.items[0].runes); err != nil {
			return 0, false, err
		}
		var ok bool
		if p0, ok = skipRunes(s, from, g.items[0].runes); !ok {
			return 0, false, nil
		}
	}
	lit := g.items[g.anchor].lit
	var q int
	if g.kmp == nil {
		i := strings.Index(s[p0:], lit)
		if i < 0 {
			return 0, false, b.charge(len(s) - p0)
		}
		if err := b.charge(i + len(lit)); err != nil {
			return 0, false, err
		}
		q = p0 + i
	} else {
		var err error
		if q, err = kmpIndex(s, p0, lit, g.kmp, b); q < 0 || err != nil {
			return 0, false, err
		}
	}
	return matchAt(g.items[g.anchor+1:], s, q+len(lit), b)
}

// kmpIndex is strings.Index(s[from:], p)+from by Knuth–Morris–Pratt,
// which no value can make slower than linear; -1 when p is not there.
func kmpIndex(s string, from int, p string, t []int32, b *Budget) (int, error) {
	k, charged := int32(0), from
	for i := from; i < len(s); i++ {
		for k > 0 && s[i] != p[k] {
			k = t[k-1]
		}
		if s[i] == p[k] {
			k++
		}
		if int(k) == len(p) {
			return i + 1 - len(p), b.charge(i + 1 - charged)
		}
		if i-charged >= ctxEveryWork {
			if err := b.charge(i - charged); err != nil {
				return -1, err
			}
			charged = i
		}
	}
	return -1, b.charge(len(s) - charged)
}

// shiftAnd finds a segment by the Shift-And algorithm: bit j of the
// state says the last j+1 characters read match the segment's first j+1,
// so one pass over the value, a few word operations per character,
// finds the first place the whole segment matches. _ is a position every
// character matches.
type shiftAnd struct {
	n     int      // the segment's length in characters
	words int      // uint64s in a state
	wild  []uint64 // the positions of _
	// A character's positions: as a mask when it has many (at most 64 such
	// characters, as a segment of n characters has n positions), else as
	// a list, so the masks never take more than about n words whatever
	// the alphabet.
	dense  map[rune][]uint64
	sparse map[rune][]int32
}

func newShiftAnd(items []likeItem) *shiftAnd {
	pos := map[rune][]int32{}
	var wild []int32
	n := 0
	for _, it := range items {
		for k := 0; k < it.runes; k++ {
			wild = append(wild, int32(n))
			n++
		}
		for i := 0; i < len(it.lit); {
			r, size := utf8.DecodeRuneInString(it.lit[i:])
			pos[r] = append(pos[r], int32(n))
			n++
			i += size
		}
	}
	sa := &shiftAnd{n: n, words: (n + 63) / 64, dense: map[rune][]uint64{}, sparse: map[rune][]int32{}}
	sa.wild = sa.mask(wild)
	for r, ps := range pos {
		if len(ps) >= sa.words {
			sa.dense[r] = sa.mask(ps)
		} else {
			sa.sparse[r] = ps
		}
	}
	return sa
}

func (sa *shiftAnd) mask(ps []int32) []uint64 {
	m := make([]uint64, sa.words)
	for _, p := range ps {
		m[p/64] |= 1 << (p % 64)
	}
	return m
}

// find returns where the first match in s at or after from ends: the
// leftmost, as every match is n characters long.
func (sa *shiftAnd) find(s string, from int, b *Budget) (int, bool, error) {
	d := make([]uint64, sa.words)
	var set []int32
	last, lastBit := (sa.n-1)/64, uint64(1)<<((sa.n-1)%64)
	top := 0 // d[w] is zero for every w > top
	for i := from; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		i += size
		// A state advances one position a character, so only the words
		// up to one past the highest nonzero one can change.
		hi := min(top+1, sa.words-1)
		if err := b.charge(hi + 1); err != nil {
			return 0, false, err
		}
		// Positions of r from the list, read from the old state before
		// it is overwritten: position p matches if p-1 did (p == 0 always
		// may start).
		set = set[:0]
		for _, p := range sa.sparse[r] {
			if p == 0 || d[(p-1)/64]>>((p-1)%64)&1 != 0 {
				set = append(set, p)
			}
		}
		m := sa.dense[r]
		carry := uint64(1)
		top = 0
		for w := 0; w <= hi; w++ {
			old := d[w]
			next := old<<1 | carry
			carry = old >> 63
			allow := sa.wild[w]
			if m != nil {
				allow |= m[w]
			}
			if d[w] = next & allow; d[w] != 0 {
				top = w
			}
		}
		for _, p := range set {
			d[p/64] |= 1 << (p % 64)
			top = max(top, int(p/64))
		}
		if d[last]&lastBit != 0 {
			return i, true, nil
		}
	}
	return 0, false, nil
}

// skipRunes advances i by n characters of s.
func skipRunes(s string, i, n int) (int, bool) {
	for ; n > 0; n-- {
		if i >= len(s) {
			return 0, false
		}
		if s[i] < utf8.RuneSelf {
			i++
		} else {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
	}
	return i, true
}
