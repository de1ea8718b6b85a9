package milvustest

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func testFields() map[string]*schemapb.FieldSchema {
	return map[string]*schemapb.FieldSchema{
		"id":   {Name: "id", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}},
		"n":    {Name: "n", DataType: schemapb.DataType_Int64},
		"meta": {Name: "meta", DataType: schemapb.DataType_JSON},
	}
}

func TestParseExpr(t *testing.T) {
	row := Row{"id": `a"b\c`, "n": int64(5), "meta": []byte(`{"k":"v","x":2,"q\"k":"w"}`)}
	cases := []struct {
		expr string
		want bool
	}{
		{``, true},
		{`id == "a\"b\\c"`, true},
		{`id == "a\"b\\c" and n >= 5`, true},
		{`(id == "zz") or (n > 4 && n < 6)`, true},
		{`not (n == 5)`, false},
		{`id in ["x", "a\"b\\c"]`, true},
		{`id not in ["x"]`, true},
		{`meta["k"] == "v"`, true},
		{`meta["x"] == 2`, true},
		{`meta["q\"k"] == "w"`, true},
		{`meta["missing"] == "v"`, false},
		{`meta["missing"] != "v"`, false},
		{`id > "a"`, true},
		{`n != 5`, false},
	}
	for _, c := range cases {
		p, err := parseExpr(c.expr, testFields())
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got := p(row); got != c.want {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
}

func TestParseExprErrors(t *testing.T) {
	for _, e := range []string{
		`id == "a"b"`,    // unescaped quote
		`id == "a\b\"`,   // \" ends nothing: unterminated
		`id == "a\qb"`,   // unknown escape
		"id == \"a\nb\"", // raw newline, rejected by Milvus's unquoting
		`nope == "x"`,    // unknown field
		`n == "5"`,       // type mismatch
		`id == 5`,        // type mismatch
		`meta == "x"`,    // JSON without key
		`id == "x" and`,  // dangling operator
		`(id == "x"`,     // unbalanced
		`id == "x") or (id == "y"`,
	} {
		if _, err := parseExpr(e, testFields()); err == nil {
			t.Errorf("%s: parsed, want error", e)
		}
	}
}
