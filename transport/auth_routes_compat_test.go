package transport

import (
	"regexp"
	"strings"
	"testing"
)

// Every route of the RAGondin/openrag API is a client route of a named
// level: none may fall through to the admin default by omission (the UIs
// would then need an admin token for a plain listing), and none is on the
// peer plane.
func TestCompatRoutesHaveAClientRole(t *testing.T) {
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, d := range compatRoutes {
		method, pattern, _ := strings.Cut(d.Pattern, " ")
		path := d.Path
		if path == "" {
			path = pattern
		}
		path = strings.ReplaceAll(path, "{$}", "")
		path = param.ReplaceAllString(path, "p1")
		got := RouteAccess(method, path)
		want := AccessRead
		if method != "GET" {
			want = AccessIndex
		}
		if got != want {
			t.Errorf("%s %s needs %v, want %v", method, path, got, want)
		}
	}
}
