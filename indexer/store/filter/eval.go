package filter

import "strings"

// The parsed tree. Operands are fields or literals; nodes are conditions.

type operand interface {
	value(get func(string) (any, bool)) (any, bool)
}

type fieldRef struct{ name string }

func (f fieldRef) value(get func(string) (any, bool)) (any, bool) { return get(f.name) }

type literal struct{ v any } // string, float64 or bool

func (l literal) value(func(string) (any, bool)) (any, bool) { return l.v, true }

type node interface {
	eval(get func(string) (any, bool)) bool
}

type orNode struct{ l, r node }
type andNode struct{ l, r node }
type notNode struct{ n node }
type constNode bool
type cmpNode struct {
	op   string
	l, r operand
}
type inNode struct {
	field  string
	vals   []any
	negate bool
}
type likeNode struct{ field, pattern string }

func (n orNode) eval(g func(string) (any, bool)) bool  { return n.l.eval(g) || n.r.eval(g) }
func (n andNode) eval(g func(string) (any, bool)) bool { return n.l.eval(g) && n.r.eval(g) }
func (n notNode) eval(g func(string) (any, bool)) bool { return !n.n.eval(g) }
func (n constNode) eval(func(string) (any, bool)) bool { return bool(n) }

func (n cmpNode) eval(g func(string) (any, bool)) bool {
	a, ok1 := n.l.value(g)
	b, ok2 := n.r.value(g)
	if !ok1 || !ok2 {
		return false
	}
	c, comparable := compare(a, b)
	if !comparable {
		return false
	}
	switch n.op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

func (n inNode) eval(g func(string) (any, bool)) bool {
	v, ok := g(n.field)
	if !ok {
		return false
	}
	found := false
	for _, w := range n.vals {
		if c, ok := compare(v, w); ok && c == 0 {
			found = true
			break
		}
	}
	return found != n.negate
}

func (n likeNode) eval(g func(string) (any, bool)) bool {
	v, ok := g(n.field)
	s, isStr := v.(string)
	return ok && isStr && like(s, n.pattern)
}

// compare orders two values of one kind: numbers (any Go number type),
// strings (bytewise), booleans (false < true, equality only in practice).
func compare(a, b any) (int, bool) {
	if x, ok := number(a); ok {
		y, ok := number(b)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		}
		return 1, true
	}
	return 0, false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

// like matches s against a Milvus like pattern: % is any run of
// characters, _ one character, \% and \_ themselves. Iterative with one
// backtrack point, so no pattern takes more than len(s)*len(p) steps.
func like(s, p string) bool {
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

// walk calls fn with every field a node reads.
func walk(n node, fn func(string)) {
	switch x := n.(type) {
	case orNode:
		walk(x.l, fn)
		walk(x.r, fn)
	case andNode:
		walk(x.l, fn)
		walk(x.r, fn)
	case notNode:
		walk(x.n, fn)
	case cmpNode:
		for _, o := range []operand{x.l, x.r} {
			if f, ok := o.(fieldRef); ok {
				fn(f.name)
			}
		}
	case inNode:
		fn(x.field)
	case likeNode:
		fn(x.field)
	}
}
