package milvus

import (
	"fmt"
	"strings"
)

// Expression building. Every string goes through quote; numbers are
// formatted by the program; field names are constants or checked
// identifiers.

// quote writes s as a Milvus string literal: double-quoted, with backslash
// and double quote escaped, and control characters written as escapes
// because Milvus unquotes literals like Go and rejects raw newlines.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func eq(field, value string) string { return field + " == " + quote(value) }

func inList(field string, values []string) string {
	qs := make([]string, len(values))
	for i, v := range values {
		qs[i] = quote(v)
	}
	return field + " in [" + strings.Join(qs, ", ") + "]"
}

func fileExpr(partition, fileID string) string {
	return and(eq(fPartition, partition), eq(fFileID, fileID))
}

// and joins non-empty conditions, each parenthesised so any operator inside
// stays inside.
func and(conds ...string) string {
	var parts []string
	for _, c := range conds {
		if c != "" {
			parts = append(parts, c)
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	for i, c := range parts {
		parts[i] = "(" + c + ")"
	}
	return strings.Join(parts, " and ")
}
