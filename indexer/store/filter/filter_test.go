package filter

import (
	"errors"
	"strings"
	"testing"
)

var doc = map[string]any{
	"file_id": "lease-7", "partition": "legal", "author": "Ana Lopez", "year": 2024.0, "pages": 12,
	"score": 0.75, "public": true, "tag": "50% off", "path": `C:\docs`,
}

func get(k string) (any, bool) { v, ok := doc[k]; return v, ok }

func TestEval(t *testing.T) {
	for _, c := range []struct {
		expr string
		want bool
	}{
		{`file_id == "lease-7"`, true},
		{`file_id == 'lease-7'`, true},
		{`file_id != "lease-7"`, false},
		{`"lease-7" == file_id`, true},
		{`metadata["author"] == "Ana Lopez"`, true},
		{`year >= 2024`, true},
		{`year > 2024`, false},
		{`pages < 12.5 and pages > 11`, true},
		{`2000 < year < 2025`, true},
		{`2000 < year <= 2024`, true},
		{`2030 > year > 2024`, false},
		{`score <= 0.75`, true},
		{`year == -1 or score > 0.5`, true},
		{`file_id in ["a", "lease-7"]`, true},
		{`file_id not in ["a", "lease-7"]`, false},
		{`year in [2023, 2024]`, true},
		{`year in []`, false},
		{`author like "Ana%"`, true},
		{`author like "%Lopez"`, true},
		{`author like "%a L%"`, true},
		{`author like "An_ Lopez"`, true},
		{`author like "Ana"`, false},
		{`tag like "50\% off"`, true},
		{`tag like "50\%"`, false},
		{`path == "C:\\docs"`, true},
		{`not (year == 2024)`, false},
		{`!(year == 2024) || public`, true},
		{`NOT public`, false},
		{`public == true AND year == 2024`, true},
		{`public && !(file_id == "x")`, true},
		{`true`, true},
		{`false or file_id == "x"`, false},
		// Missing fields and mismatched types are false, never an error.
		{`missing == "x"`, false},
		{`missing != "x"`, false},
		{`not (missing == "x")`, true},
		{`year == "2024"`, false},
		{`author > 3`, false},
		{`missing in ["x"]`, false},
		{`missing not in ["x"]`, false},
		{`year like "20%"`, false},
		{`(file_id == "a" or file_id == "lease-7") and (partition == "legal")`, true},
		{`file_id == "a" or file_id == "lease-7" and partition == "other"`, false},
	} {
		e, err := Parse(c.expr)
		if err != nil {
			t.Errorf("Parse(%s): %v", c.expr, err)
			continue
		}
		if got := e.Eval(get); got != c.want {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
		if e.String() != c.expr {
			t.Errorf("String() = %q", e.String())
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		expr string
		pos  int
		msg  string
	}{
		{``, 0, "empty expression"},
		{`   `, 0, "empty expression"},
		{`file_id ==`, 10, "expected a field or a value, got end of expression"},
		{`file_id == "x`, 11, "unterminated string"},
		{`file_id = "x"`, 8, `unexpected character '='`},
		{`(file_id == "x"`, 15, "expected ')', got end of expression"},
		{`file_id == "x")`, 14, `unexpected ")"`},
		{`file_id in "x"`, 11, `expected '[' after in, got string "x"`},
		{`file_id in ["x" "y"]`, 16, `expected ',' or ']', got string "y"`},
		{`file_id in [other]`, 12, "an in list holds literals only"},
		{`file_id like 3`, 13, "like needs a string pattern, got \"3\""},
		{`"a" == "b"`, 0, "a comparison needs a field on one side"},
		{`1 < x > 3`, 0, "a range is written literal < field < literal (or with >), both in one direction"},
		{`tags["x"] == 1`, 0, "only metadata[...] is a JSON field, not tags"},
		{`metadata[3] == 1`, 9, "a JSON path key must be a string"},
		{`file_id not like "x"`, 12, "expected 'in' after 'not'"},
		{`and == 1`, 0, `unexpected keyword "and"`},
		{`x == 1e`, 5, `bad number "1e"`},
		{`x == -y`, 5, "unexpected '-'"},
		{`3`, 0, `expected a condition, got "3"`},
	} {
		_, err := Parse(c.expr)
		var fe *Error
		if !errors.As(err, &fe) || fe.Pos != c.pos || fe.Msg != c.msg {
			t.Errorf("Parse(%q) = %v; want offset %d %q", c.expr, err, c.pos, c.msg)
		}
	}
	if _, err := Parse(strings.Repeat("(", MaxDepth+1) + "x" + strings.Repeat(")", MaxDepth+1)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep nesting: %v", err)
	}
	if _, err := Parse(strings.Repeat("not ", MaxDepth+1) + "x"); err == nil {
		t.Error("deep not chain parsed")
	}
	if _, err := Parse(strings.Repeat(" ", MaxLen+1)); err == nil {
		t.Error("overlong expression parsed")
	}
}

func TestFields(t *testing.T) {
	e, err := Parse(`a == 1 and (metadata["b c"] in [1] or not a like "x") and 1 < d < 2`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.Fields(), ","); got != "a,b c,d" {
		t.Fatalf("Fields = %s", got)
	}
}
