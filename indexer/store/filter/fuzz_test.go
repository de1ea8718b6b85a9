package filter

import (
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and whatever parses evaluates without
// panicking against a record with values of every kind and against an
// empty one.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`file_id == "x"`, `a in [1, "b", true]`, `not (x like "%a_b\%")`,
		`1 < y <= 2.5e3 || z != 'q'`, `metadata["k"] >= -3`, `((((a))))`, `a and b or !c && d || NOT e`,
		// Issue 21: 30 KB patterns that made the backtracking like take
		// 53 s over a 60,000-character value.
		`long like "` + strings.Repeat("%a", 15<<10-1) + `%b"`,
		`long like "%a` + strings.Repeat("_a", 15<<10-2) + `b%"`} {
		f.Add(s)
	}
	full := map[string]any{"a": 1.0, "b": "s", "c": true, "x": "abc", "y": 7, "k": -3.0,
		"long": strings.Repeat("a", 60000)}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		e.Eval(func(k string) (any, bool) { v, ok := full[k]; return v, ok })
		e.Eval(func(string) (any, bool) { return nil, false })
		_ = e.Fields()
	})
}
