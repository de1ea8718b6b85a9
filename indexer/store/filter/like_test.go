package filter

import (
	"context"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// likeRef is the backtracking matcher like.go replaced, kept as the
// reference for what like means: same answers, only slower.
func likeRef(s, p string) bool {
	pr, sr := []rune(p), []rune(s)
	type item struct {
		r       rune
		literal bool
	}
	var pat []item
	for i := 0; i < len(pr); i++ {
		if pr[i] == '\\' && i+1 < len(pr) {
			i++
			pat = append(pat, item{pr[i], true})
			continue
		}
		pat = append(pat, item{pr[i], false})
	}
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(sr) {
		switch {
		case pi < len(pat) && !pat[pi].literal && pat[pi].r == '%':
			star, mark = pi, si
			pi++
		case pi < len(pat) && (pat[pi].literal && pat[pi].r == sr[si] || !pat[pi].literal && (pat[pi].r == '_' || pat[pi].r == sr[si])):
			si++
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && !pat[pi].literal && pat[pi].r == '%' {
		pi++
	}
	return pi == len(pat)
}

func likeMatch(t testing.TB, s, p string, b *Budget) bool {
	t.Helper()
	if b == nil {
		b = NewBudget(context.Background(), 0)
	}
	ok, err := compileLike(p).match(s, b)
	if err != nil {
		t.Fatalf("like(%q, %q): %v", s, p, err)
	}
	return ok
}

// The segment matcher answers as the backtracking one on every small
// pattern and value over an alphabet that exercises %, _, escapes, long
// anchors and multibyte characters.
func TestLikeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	patAlpha := []string{"a", "b", "%", "_", `\%`, `\_`, `\\`, "é", "ab", "%", "_"}
	valAlpha := []string{"a", "b", "%", "_", `\`, "é", "€"}
	for n := 0; n < 200000; n++ {
		var p, s strings.Builder
		for i := rng.Intn(8); i > 0; i-- {
			p.WriteString(patAlpha[rng.Intn(len(patAlpha))])
		}
		for i := rng.Intn(10); i > 0; i-- {
			s.WriteString(valAlpha[rng.Intn(len(valAlpha))])
		}
		if got, want := likeMatch(t, s.String(), p.String(), nil), likeRef(s.String(), p.String()); got != want {
			t.Fatalf("like(%q, %q) = %v; the reference says %v", s.String(), p.String(), got, want)
		}
	}
	// Segments longer than a word of Shift-And state, over a small
	// alphabet so that they do match now and then.
	for n := 0; n < 3000; n++ {
		var p, s strings.Builder
		p.WriteString([]string{"%", "%", "_%", "a"}[rng.Intn(4)])
		for i := 60 + rng.Intn(140); i > 0; i-- {
			if rng.Intn(100) == 0 {
				p.WriteByte('%')
			}
			p.WriteString([]string{"a", "b", "_", "a", "é"}[rng.Intn(5)])
		}
		p.WriteString([]string{"%", "%", "%_", "b"}[rng.Intn(4)])
		for i := 100 + rng.Intn(300); i > 0; i-- {
			s.WriteString([]string{"a", "a", "b", "é"}[rng.Intn(4)])
		}
		if rng.Intn(2) == 0 { // plant a match
			s.WriteString(strings.NewReplacer("%", "", "_", "é").Replace(p.String()))
			s.WriteString("ab")
		}
		if got, want := likeMatch(t, s.String(), p.String(), nil), likeRef(s.String(), p.String()); got != want {
			t.Fatalf("like(%q, %q) = %v; the reference says %v", s.String(), p.String(), got, want)
		}
	}
	// Anchors over kmpOver bytes take the Knuth–Morris–Pratt path.
	long := strings.Repeat("ab", kmpOver)
	for _, c := range []struct {
		s, p string
	}{
		{"x" + long + "y", "%" + long + "%"},
		{"x" + long + "y", "%" + long + "_"},
		{"x" + long + "y", "%" + long + "__"},
		{long + "a" + long, "%" + long + "_" + long + "%"},
		{long + "a" + long + "b", "%" + long + "_" + long},
		{strings.Repeat("ab", 3*kmpOver), "%" + long + "a%" + long + "%"},
		{strings.Repeat("ab", 3*kmpOver), "%" + long + "b" + long + "%"},
		{strings.Repeat("ab", 2*kmpOver), "_%" + long + "a" + long[:len(long)-2] + "%"},
	} {
		if got, want := likeMatch(t, c.s, c.p, nil), likeRef(c.s, c.p); got != want {
			t.Errorf("like(%q, %q) = %v; the reference says %v", c.s, c.p, got, want)
		}
	}
}

// FuzzLike compares with the reference on valid UTF-8 (the reference
// reads invalid bytes as U+FFFD, like.go as the bytes they are).
func FuzzLike(f *testing.F) {
	f.Add("abcabd", "%ab_%d")
	f.Add("50% off", `50\% %`)
	f.Add("ééa", "_%a")
	f.Fuzz(func(t *testing.T, s, p string) {
		if len(s) > 64 || len(p) > 32 || !utf8.ValidString(s) || !utf8.ValidString(p) {
			return
		}
		if got, want := likeMatch(t, s, p, nil), likeRef(s, p); got != want {
			t.Fatalf("like(%q, %q) = %v; the reference says %v", s, p, got, want)
		}
	})
}

// within fails the test if fn has not returned by the deadline, generous
// enough for a loaded CI machine under -race: it catches a return of the
// quadratic matcher (53 s on the reported case), not a slowdown.
func within(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %v", d)
	}
}

// The case: patterns of 30 KB against a 64 KiB value, in shapes
// that made the backtracking matcher quadratic, cost work linear in their
// sizes and give the right answer.
func TestLikePathologicalIsLinear(t *testing.T) {
	val := strings.Repeat("a", 64<<10)
	const m = 30 << 10
	for _, c := range []struct {
		name, pat string
		want      bool
	}{
		{"many % then a miss", strings.Repeat("%a", m/2-1) + "%b", false},
		{"many % all matching", strings.Repeat("%a", m/2), true},
		{"many % ending in a literal", strings.Repeat("a%", m/2-1) + "a", true},
		{"one long literal missing", "%" + strings.Repeat("a", m-3) + "b%", false},
		{"one long literal present", "%" + strings.Repeat("a", m-2) + "%", true},
		{"long literal anchored at both ends", strings.Repeat("a", m/2) + "%" + strings.Repeat("a", m/2), true},
		{"many _%", strings.Repeat("_%", m/2), true},
		{"more _ than characters", strings.Repeat("_", 64<<10+1), false},
		{"escaped % between", strings.Repeat(`%a\%`, m/4), false},
		{"short segments that almost match", strings.Repeat("%aaaaaaab", m/9), false},
		{"short segments with _ that almost match", strings.Repeat("%a_a_a_b", m/8), false},
		{"short segments with _ that match", strings.Repeat("%a_a_a_a", m/8), true},
		{"_ around one literal", "%" + strings.Repeat("_", m/2) + "b" + strings.Repeat("_", m/2) + "%", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewBudget(context.Background(), 0)
			var got bool
			var err error
			within(t, 30*time.Second, func() { got, err = compileLike(c.pat).match(val, b) })
			if err != nil || got != c.want {
				t.Fatalf("= %v, %v; want %v", got, err, c.want)
			}
			if bound := int64(4 * (len(val) + len(c.pat))); b.Used() > bound {
				t.Errorf("spent %d units of work; linear would be under %d", b.Used(), bound)
			}
		})
	}
	// Through the parser, as a search sends it.
	e, err := Parse(`note like "` + strings.Repeat("%a", m/2-1) + `%b"`)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBudget(context.Background(), 0)
	within(t, 30*time.Second, func() {
		if ok, err := e.EvalBudget(b, func(string) (any, bool) { return val, true }); ok || err != nil {
			t.Errorf("= %v, %v", ok, err)
		}
	})
}

// A long segment with _ between literals costs O(len(s)×len(segment)/64):
// within the default budget even at the sizes of the issue, but a smaller
// budget stops it, with an error naming the limit.
func TestLikeOverBudget(t *testing.T) {
	val := strings.Repeat("a", 64<<10)
	pat := "%a" + strings.Repeat("_a", 15<<10) + "b%"
	b := NewBudget(context.Background(), 0)
	var got bool
	var err error
	within(t, 30*time.Second, func() { got, err = compileLike(pat).match(val, b) })
	if got || err != nil {
		t.Fatalf("= %v, %v", got, err)
	}
	if bound := int64(len(val)) * int64(len(pat)/64+2); b.Used() > bound {
		t.Errorf("spent %d; Shift-And is under %d", b.Used(), bound)
	}

	b = NewBudget(context.Background(), 1<<20)
	within(t, 30*time.Second, func() { _, err = compileLike(pat).match(val, b) })
	var be *BudgetError
	if !errors.Is(err, ErrBudget) || !errors.As(err, &be) || be.Limit != 1<<20 {
		t.Fatalf("err = %v; want a BudgetError of 1 MiB", err)
	}
	if !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("message does not name the limit: %s", err)
	}
	if b.Used() > 1<<20+int64(len(pat)/64+2) {
		t.Errorf("spent %d, well past the limit", b.Used())
	}
	// Spent is spent: the next record fails at once, without work.
	e, _ := Parse(`x == "y"`)
	if _, err := e.EvalBudget(b, func(string) (any, bool) { return "y", true }); !errors.Is(err, ErrBudget) {
		t.Errorf("after the budget ran out: %v", err)
	}
}

// One budget spans a request's records: cheap ones add up too.
func TestBudgetSpansRecords(t *testing.T) {
	e, err := Parse(`author == "Ana Lopez" or tag in ["a", "b", "50% off"]`)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBudget(context.Background(), 10000)
	n := 0
	for ; n < 10000; n++ {
		ok, err := e.EvalBudget(b, get)
		if err != nil {
			if !errors.Is(err, ErrBudget) {
				t.Fatalf("record %d: %v", n, err)
			}
			break
		}
		if !ok {
			t.Fatalf("record %d did not match", n)
		}
	}
	if n == 0 || n == 10000 {
		t.Fatalf("stopped after %d records; want some, not all", n)
	}
	// A default budget has room for ordinary filters over many records.
	b = NewBudget(nil, 0)
	for i := 0; i < 100000; i++ {
		if _, err := e.EvalBudget(b, get); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

// A request's context ends evaluation: before a record, and inside a long
// like.
func TestBudgetCancelled(t *testing.T) {
	e, err := Parse(`author like "Ana%"`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.EvalBudget(NewBudget(ctx, 0), get); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}

	// The client goes away while the value is read; the matcher, with
	// budget to spare, notices at its next check rather than spending it.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	e, err = Parse(`note like "%a` + strings.Repeat("_a", 15<<10) + `b%"`)
	if err != nil {
		t.Fatal(err)
	}
	val := strings.Repeat("a", 64<<10)
	b := NewBudget(ctx, 0)
	within(t, 30*time.Second, func() {
		_, err = e.EvalBudget(b, func(string) (any, bool) { cancel(); return val, true })
	})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrBudget) {
		t.Fatalf("cancelled during: %v", err)
	}
	if b.Used() > 2*ctxEveryWork+int64(len(val)) {
		t.Errorf("spent %d after the cancel; the context is checked every %d", b.Used(), ctxEveryWork)
	}
}
