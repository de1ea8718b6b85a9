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
	eval(g func(string) (any, bool), b *Budget) (bool, error)
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
type likeNode struct {
	field string
	pat   *likePattern
}

func (n orNode) eval(g func(string) (any, bool), b *Budget) (bool, error) {
	if l, err := n.l.eval(g, b); l || err != nil {
		return l, err
	}
	return n.r.eval(g, b)
}

func (n andNode) eval(g func(string) (any, bool), b *Budget) (bool, error) {
	if l, err := n.l.eval(g, b); !l || err != nil {
		return false, err
	}
	return n.r.eval(g, b)
}

func (n notNode) eval(g func(string) (any, bool), b *Budget) (bool, error) {
	v, err := n.n.eval(g, b)
	return !v && err == nil, err
}

func (n constNode) eval(func(string) (any, bool), *Budget) (bool, error) { return bool(n), nil }

func (n cmpNode) eval(g func(string) (any, bool), b *Budget) (bool, error) {
	a, ok1 := n.l.value(g)
	v, ok2 := n.r.value(g)
	if err := b.charge(readCost); err != nil || !ok1 || !ok2 {
		return false, err
	}
	if err := b.charge(compareCost(a, v)); err != nil {
		return false, err
	}
	c, comparable := compare(a, v)
	if !comparable {
		return false, nil
	}
	switch n.op {
	case "==":
		return c == 0, nil
	case "!=":
		return c != 0, nil
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	case ">=":
		return c >= 0, nil
	}
	return false, nil
}

func (n inNode) eval(g func(string) (any, bool), b *Budget) (bool, error) {
	v, ok := g(n.field)
	if err := b.charge(readCost); err != nil || !ok {
		return false, err
	}
	found := false
	for _, w := range n.vals {
		if err := b.charge(compareCost(v, w)); err != nil {
			return false, err
		}
		if c, ok := compare(v, w); ok && c == 0 {
			found = true
			break
		}
	}
	return found != n.negate, nil
}

func (n likeNode) eval(g func(string) (any, bool), b *Budget) (bool, error) {
	if err := b.charge(readCost); err != nil {
		return false, err
	}
	v, ok := g(n.field)
	s, isStr := v.(string)
	if !ok || !isStr {
		return false, nil
	}
	return n.pat.match(s, b)
}

// Work is counted in units of about a byte compared, which is also about
// a nanosecond; a field read and a comparison cost what they take in
// time, so an expression of many cheap tests is bounded like one long
// match.
const (
	recordCost  = 16 // an evaluation's setup
	readCost    = 16 // a field read through the caller's getter
	compareBase = 4  // a comparison or a search, before the bytes it scans
)

// compareCost is the work of comparing a with b.
func compareCost(a, b any) int {
	x, ok1 := a.(string)
	y, ok2 := b.(string)
	if ok1 && ok2 {
		return compareBase + min(len(x), len(y))
	}
	return compareBase
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
