package milvustest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

type predicate func(Row) bool

type token struct {
	kind byte // 'i' identifier/keyword, 's' string, 'n' number, 'o' operator or punctuation, 0 end
	text string
	str  string  // unquoted value of a string
	num  float64 // value of a number
}

func tokenize(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			j := i + 1
			for ; j < len(src) && src[j] != '"'; j++ {
				if src[j] == '\\' {
					j++
				}
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string literal at offset %d", i)
			}
			raw := src[i : j+1]
			// Milvus unquotes literals the way Go does; an unescaped quote
			// or backslash from a careless client fails here or ends the
			// literal early, as it would there.
			v, err := strconv.Unquote(raw)
			if err != nil {
				return nil, fmt.Errorf("invalid string literal %s: %v", raw, err)
			}
			toks = append(toks, token{kind: 's', text: raw, str: v})
			i = j + 1
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.' || src[j] == 'e' || src[j] == 'E') {
				j++
			}
			v, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil {
				return nil, fmt.Errorf("invalid number %q", src[i:j])
			}
			toks = append(toks, token{kind: 'n', text: src[i:j], num: v})
			i = j
		// $ starts only $meta, the dynamic field's name
		// (https://milvus.io/docs/enable-dynamic-field.md).
		case c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(src) && (src[j] == '_' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, token{kind: 'i', text: src[i:j]})
			i = j
		default:
			op := ""
			for _, o := range []string{"==", "!=", ">=", "<=", "&&", "||", ">", "<", "!", "(", ")", "[", "]", ","} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("unexpected character %q at offset %d", c, i)
			}
			toks = append(toks, token{kind: 'o', text: op})
			i += len(op)
		}
	}
	return append(toks, token{}), nil
}

type parser struct {
	toks   []token
	pos    int
	fields map[string]*schemapb.FieldSchema
}

// parseExpr compiles a boolean filter expression over the collection's
// fields. An empty expression matches every row.
func parseExpr(src string, fields map[string]*schemapb.FieldSchema) (predicate, error) {
	if strings.TrimSpace(src) == "" {
		return func(Row) bool { return true }, nil
	}
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, fields: fields}
	pred, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != 0 {
		return nil, fmt.Errorf("unexpected %q after expression", t.text)
	}
	return pred, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token { t := p.toks[p.pos]; p.pos++; return t }

func (p *parser) accept(words ...string) bool {
	t := p.peek()
	if t.kind != 'i' && t.kind != 'o' {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(t.text, w) {
			p.pos++
			return true
		}
	}
	return false
}

func (p *parser) expect(text string) error {
	if t := p.next(); t.text != text || t.kind == 's' {
		return fmt.Errorf("expected %q, found %q", text, t.text)
	}
	return nil
}

func (p *parser) or() (predicate, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.accept("or", "||") {
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(r Row) bool { return l(r) || right(r) }
	}
	return left, nil
}

func (p *parser) and() (predicate, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.accept("and", "&&") {
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(r Row) bool { return l(r) && right(r) }
	}
	return left, nil
}

func (p *parser) unary() (predicate, error) {
	if p.accept("not", "!") {
		inner, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(r Row) bool { return !inner(r) }, nil
	}
	if p.accept("(") {
		inner, err := p.or()
		if err != nil {
			return nil, err
		}
		return inner, p.expect(")")
	}
	return p.comparison()
}

// operand resolves a field reference, with an optional JSON key.
func (p *parser) operand() (func(Row) (any, bool), *schemapb.FieldSchema, error) {
	t := p.next()
	if t.kind != 'i' {
		return nil, nil, fmt.Errorf("expected a field name, found %q", t.text)
	}
	f := p.fields[t.text]
	if f == nil {
		// A name outside the schema is a key of the dynamic field
		// (https://milvus.io/docs/enable-dynamic-field.md: "filter by
		// dynamic field keys directly").
		meta := p.fields[metaField]
		if meta == nil {
			return nil, nil, fmt.Errorf("field %s not exist", t.text)
		}
		return jsonKey(metaField, t.text), meta, nil
	}
	name := f.Name
	if p.accept("[") {
		k := p.next()
		if k.kind != 's' {
			return nil, nil, fmt.Errorf("expected a string key after %s[, found %q", name, k.text)
		}
		if err := p.expect("]"); err != nil {
			return nil, nil, err
		}
		if f.DataType != schemapb.DataType_JSON {
			return nil, nil, fmt.Errorf("field %s is not JSON and cannot be indexed", name)
		}
		return jsonKey(name, k.str), f, nil
	}
	switch f.DataType {
	case schemapb.DataType_JSON, schemapb.DataType_FloatVector, schemapb.DataType_BinaryVector:
		return nil, nil, fmt.Errorf("field %s of type %s cannot be compared directly", name, f.DataType)
	}
	return func(r Row) (any, bool) {
		v, ok := r[name]
		if i, isInt := v.(int64); isInt {
			return float64(i), ok
		}
		return v, ok
	}, nil, nil
}

// literal reads a literal and checks it against the field type (nil for
// a JSON key, which takes any type).
func (p *parser) literal(f *schemapb.FieldSchema, field string) (any, error) {
	t := p.next()
	var v any
	switch {
	case t.kind == 's':
		v = t.str
	case t.kind == 'n':
		v = t.num
	case t.kind == 'i' && (strings.EqualFold(t.text, "true") || strings.EqualFold(t.text, "false")):
		v = strings.EqualFold(t.text, "true")
	default:
		return nil, fmt.Errorf("expected a literal, found %q", t.text)
	}
	if f == nil {
		return v, nil
	}
	okType := false
	switch f.DataType {
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		_, okType = v.(string)
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32, schemapb.DataType_Int64:
		n, isNum := v.(float64)
		okType = isNum && n == float64(int64(n)) && !strings.ContainsAny(t.text, ".eE")
	case schemapb.DataType_Float, schemapb.DataType_Double:
		_, okType = v.(float64)
	case schemapb.DataType_Bool:
		_, okType = v.(bool)
	}
	if !okType {
		return nil, fmt.Errorf("cannot compare field %s of type %s with %s", field, f.DataType, t.text)
	}
	return v, nil
}

func (p *parser) comparison() (predicate, error) {
	start := p.peek().text
	get, jsonField, err := p.operand()
	if err != nil {
		return nil, err
	}
	var typeField *schemapb.FieldSchema
	if jsonField == nil {
		typeField = p.fields[start]
	}
	negate := p.accept("not")
	if p.accept("in") {
		if err := p.expect("["); err != nil {
			return nil, err
		}
		var set []any
		for {
			v, err := p.literal(typeField, start)
			if err != nil {
				return nil, err
			}
			set = append(set, v)
			if p.accept("]") {
				break
			}
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		return func(r Row) bool {
			v, ok := get(r)
			if !ok {
				return false
			}
			for _, s := range set {
				if c, comparable := compare(v, s); comparable && c == 0 {
					return !negate
				}
			}
			return negate
		}, nil
	}
	if negate {
		return nil, fmt.Errorf("expected \"in\" after \"not\"")
	}
	op := p.next()
	switch op.text {
	case "==", "!=", "<", "<=", ">", ">=":
	default:
		return nil, fmt.Errorf("expected a comparison operator, found %q", op.text)
	}
	lit, err := p.literal(typeField, start)
	if err != nil {
		return nil, err
	}
	return func(r Row) bool {
		v, ok := get(r)
		if !ok {
			return false
		}
		c, comparable := compare(v, lit)
		if !comparable {
			return false
		}
		switch op.text {
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
		}
		return c >= 0
	}, nil
}

// compare orders a against b when they have the same kind.
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return strings.Compare(x, y), ok
	case float64:
		y, ok := b.(float64)
		switch {
		case !ok:
			return 0, false
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		if x == y {
			return 0, true
		}
		return 1, true // only == and != are meaningful for booleans
	}
	return 0, false
}

// jsonKey reads a key of a JSON field (https://milvus.io/docs/use-json-fields.md).
func jsonKey(field, key string) func(Row) (any, bool) {
	return func(r Row) (any, bool) {
		raw, _ := r[field].([]byte)
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return nil, false
		}
		v, ok := m[key]
		return v, ok
	}
}
