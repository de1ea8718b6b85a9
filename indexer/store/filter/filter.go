// Package filter parses and evaluates Milvus boolean expressions over a
// chunk's metadata, the "filter" of openrag's search routes, so the local
// store filters exactly as a Milvus collection would and the same string
// can be handed to Milvus unchanged.
//
// The language is the subset of Milvus's boolean expression rules that
// applies to scalar metadata: comparisons (== != < <= > >=, and the
// chained range "1 < x < 5"), "in" and "not in" over a list of literals,
// "like" with % (any run) and _ (one character), "and"/"&&", "or"/"||",
// "not"/"!", parentheses; literals are integers, floats, strings in
// double or single quotes, true and false (keywords in any case). A
// field is a name (file_id, partition, a metadata key) or a JSON path
// into the metadata, metadata["key"].
//
// Guarantees: Parse never panics and reads its input once (a recursive
// descent over at most MaxLen bytes and MaxDepth nesting), a malformed
// expression is an *Error with the byte offset, and Eval is total: a
// field that is missing or of another type makes its comparison false,
// as a null does in Milvus. Evaluation is bounded: like matches without
// backtracking, in time linear in the value and the pattern (times a
// segment's length/64 where _ sits between literals, like.go), and every
// evaluation spends from a Budget that stops it when a request's work
// exceeds a bound or its context ends. Nothing here builds a query in
// another language from user input; the expression is evaluated, or
// forwarded as the user wrote it to Milvus, which parses it itself.
package filter

import (
	"fmt"
	"strings"
)

const (
	// MaxLen bounds an expression's length in bytes.
	MaxLen = 64 << 10
	// MaxDepth bounds nesting (parentheses, not, and/or operands).
	MaxDepth = 64
)

// Error is a malformed expression.
type Error struct {
	Pos int // byte offset
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("filter: at offset %d: %s", e.Pos, e.Msg) }

// Expr is a parsed expression.
type Expr struct {
	root node
	src  string
}

// String is the expression as it was given.
func (e *Expr) String() string { return e.src }

// Fields lists the fields the expression reads, in order of first use.
func (e *Expr) Fields() []string {
	var out []string
	seen := map[string]bool{}
	walk(e.root, func(f string) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	})
	return out
}

// Eval reports whether the record with these fields matches. get returns
// a field's value (string, float64 or int kinds, bool) and whether it is
// present. Each call has a budget of its own, DefaultBudget, and a record
// over it does not match; a request evaluating many records shares one
// Budget through EvalBudget instead, which also tells why it stopped.
func (e *Expr) Eval(get func(field string) (any, bool)) bool {
	ok, _ := e.EvalBudget(nil, get)
	return ok
}

// EvalBudget is Eval spending from b (a fresh DefaultBudget when nil).
// Its only errors are a *BudgetError (errors.Is ErrBudget) and, wrapped,
// the error of b's context when that ended; b then fails every later call.
func (e *Expr) EvalBudget(b *Budget, get func(field string) (any, bool)) (bool, error) {
	if b == nil {
		b = NewBudget(nil, 0)
	}
	if err := b.record(); err != nil {
		return false, err
	}
	return e.root.eval(get, b)
}

// Parse parses a Milvus boolean expression.
func Parse(s string) (*Expr, error) {
	if len(s) > MaxLen {
		return nil, &Error{Pos: MaxLen, Msg: fmt.Sprintf("expression longer than %d bytes", MaxLen)}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().kind == tEOF {
		return nil, &Error{Pos: 0, Msg: "empty expression"}
	}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("unexpected %s", describe(t))}
	}
	return &Expr{root: n, src: s}, nil
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

// next consumes a token; the final EOF is never consumed, so peek stays
// in range whatever a caller does after an error.
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// keyword reports whether the next token is the keyword kw (any case).
func (p *parser) keyword(kw string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, kw)
}

func (p *parser) isOp(ops ...string) bool {
	t := p.peek()
	if t.kind != tOp {
		return false
	}
	for _, o := range ops {
		if t.text == o {
			return true
		}
	}
	return false
}

func (p *parser) deeper(depth int) error {
	if depth >= MaxDepth {
		return &Error{Pos: p.peek().pos, Msg: fmt.Sprintf("nested deeper than %d", MaxDepth)}
	}
	return nil
}

func (p *parser) or(depth int) (node, error) {
	if err := p.deeper(depth); err != nil {
		return nil, err
	}
	l, err := p.and(depth + 1)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") || p.isOp("||") {
		p.next()
		r, err := p.and(depth + 1)
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") || p.isOp("&&") {
		p.next()
		r, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *parser) not(depth int) (node, error) {
	if err := p.deeper(depth); err != nil {
		return nil, err
	}
	if p.keyword("not") || p.isOp("!") {
		p.next()
		n, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.predicate(depth)
}

// predicate is a parenthesised expression, a boolean literal, or a
// comparison, range, in or like on a field.
func (p *parser) predicate(depth int) (node, error) {
	t := p.peek()
	if t.kind == tPunct && t.text == "(" {
		p.next()
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tPunct || c.text != ")" {
			return nil, &Error{Pos: c.pos, Msg: fmt.Sprintf("expected ')', got %s", describe(c))}
		}
		return n, nil
	}
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	switch {
	case p.keyword("in"):
		p.next()
		return p.in(left, false)
	case p.keyword("not"):
		p.next()
		if !p.keyword("in") {
			return nil, &Error{Pos: p.peek().pos, Msg: "expected 'in' after 'not'"}
		}
		p.next()
		return p.in(left, true)
	case p.keyword("like"):
		p.next()
		f, ok := left.(fieldRef)
		if !ok {
			return nil, &Error{Pos: t.pos, Msg: "like needs a field on its left"}
		}
		s := p.next()
		if s.kind != tString {
			return nil, &Error{Pos: s.pos, Msg: fmt.Sprintf("like needs a string pattern, got %s", describe(s))}
		}
		return likeNode{field: f.name, pat: compileLike(s.pat)}, nil
	case p.isOp("==", "!=", "<", "<=", ">", ">="):
		op := p.next().text
		right, err := p.operand()
		if err != nil {
			return nil, err
		}
		if p.isOp("<", "<=", ">", ">=") {
			// A range: lit op field op lit, both bounds in one direction.
			op2 := p.next().text
			hi, err := p.operand()
			if err != nil {
				return nil, err
			}
			_, okField := right.(fieldRef)
			lo, okLo := left.(literal)
			up, okHi := hi.(literal)
			if !okField || !okLo || !okHi || (op == "<" || op == "<=") != (op2 == "<" || op2 == "<=") || op == "==" || op == "!=" {
				return nil, &Error{Pos: t.pos, Msg: "a range is written literal < field < literal (or with >), both in one direction"}
			}
			return andNode{cmpNode{op: op, l: lo, r: right}, cmpNode{op: op2, l: right, r: up}}, nil
		}
		_, lf := left.(fieldRef)
		_, rf := right.(fieldRef)
		if !lf && !rf {
			return nil, &Error{Pos: t.pos, Msg: "a comparison needs a field on one side"}
		}
		return cmpNode{op: op, l: left, r: right}, nil
	}
	if l, ok := left.(literal); ok {
		if b, isBool := l.v.(bool); isBool {
			return constNode(b), nil
		}
	}
	if f, ok := left.(fieldRef); ok {
		// A bare boolean field, as Milvus allows ("is_public").
		return cmpNode{op: "==", l: f, r: literal{v: true}}, nil
	}
	return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("expected a condition, got %s", describe(t))}
}

func (p *parser) in(left operand, negate bool) (node, error) {
	f, ok := left.(fieldRef)
	if !ok {
		return nil, &Error{Pos: p.peek().pos, Msg: "in needs a field on its left"}
	}
	open := p.next()
	if open.kind != tPunct || open.text != "[" {
		return nil, &Error{Pos: open.pos, Msg: fmt.Sprintf("expected '[' after in, got %s", describe(open))}
	}
	var vals []any
	if c := p.peek(); c.kind == tPunct && c.text == "]" {
		p.next()
		return inNode{field: f.name, vals: vals, negate: negate}, nil
	}
	for {
		o, err := p.operand()
		if err != nil {
			return nil, err
		}
		l, ok := o.(literal)
		if !ok {
			return nil, &Error{Pos: p.toks[p.i-1].pos, Msg: "an in list holds literals only"}
		}
		vals = append(vals, l.v)
		c := p.next()
		if c.kind == tPunct && c.text == "]" {
			break
		}
		if c.kind != tPunct || c.text != "," {
			return nil, &Error{Pos: c.pos, Msg: fmt.Sprintf("expected ',' or ']', got %s", describe(c))}
		}
	}
	return inNode{field: f.name, vals: vals, negate: negate}, nil
}

// operand is a literal or a field.
func (p *parser) operand() (operand, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return literal{v: t.text}, nil
	case tInt, tFloat:
		return literal{v: t.num}, nil
	case tIdent:
		switch strings.ToLower(t.text) {
		case "true":
			return literal{v: true}, nil
		case "false":
			return literal{v: false}, nil
		case "and", "or", "not", "in", "like":
			return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("unexpected keyword %q", t.text)}
		}
		if b := p.peek(); b.kind == tPunct && b.text == "[" {
			// metadata["key"]: a key of the JSON field.
			p.next()
			k := p.next()
			if k.kind != tString {
				return nil, &Error{Pos: k.pos, Msg: "a JSON path key must be a string"}
			}
			if c := p.next(); c.kind != tPunct || c.text != "]" {
				return nil, &Error{Pos: c.pos, Msg: fmt.Sprintf("expected ']', got %s", describe(c))}
			}
			if !strings.EqualFold(t.text, "metadata") {
				return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("only metadata[...] is a JSON field, not %s", t.text)}
			}
			return fieldRef{name: k.text}, nil
		}
		return fieldRef{name: t.text}, nil
	}
	return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("expected a field or a value, got %s", describe(t))}
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return fmt.Sprintf("string %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}
