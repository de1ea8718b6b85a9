package transport

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// everyRouteServer mounts every surface a node mounts, over backends that
// are never called (the tests here read the route table, not answers).
func everyRouteServer() *Server {
	s := NewServer(stubBackend{}, "")
	s.MountTokens(nil)
	s.MountKeyring(nil)
	s.MountSnapshot(nil)
	s.MountCompat(nil)
	s.MountConsole(nil, http.NotFoundHandler(), false)
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/profile", "/debug/pprof/trace"} {
		s.Handle(p, http.NotFoundHandler())
	}
	return s
}

// accessOf is the access a request for method and path needs.
func accessOf(s *Server, method, path string) Access {
	_, pattern := s.mux.Handler(httptest.NewRequest(method, path, nil))
	return routeFor(pattern).Access
}

func TestRouteAccessTable(t *testing.T) {
	s := everyRouteServer()
	for _, tc := range []struct {
		method, path string
		want         Access
	}{
		{"POST", "/v1/internal/apply", AccessPeer},
		{"GET", "/v1/internal/chunk-ids", AccessPeer},
		{"PUT", "/v1/blobs", AccessPeer},
		{"GET", "/v1/blobs/abc", AccessPeer},
		{"GET", "/v1/status", AccessRead},
		{"HEAD", "/v1/members", AccessRead},
		{"GET", "/v1/tasks/t1", AccessRead},
		{"POST", "/v1/search", AccessRead},
		{"GET", "/search/partition/p", AccessRead},
		{"GET", "/extract/x", AccessRead},
		{"GET", "/v1/console/summary", AccessRead},
		{"POST", "/v1/files", AccessIndex},
		{"POST", "/v1/tasks/t1/cancel", AccessIndex},
		{"POST", "/indexer/partition/p/file/f", AccessIndex},
		{"DELETE", "/partition/p", AccessIndex},
		{"DELETE", "/indexer/task/t", AccessIndex},
		{"POST", "/v1/console/tasks/t/retry", AccessIndex},
		{"POST", "/v1/drain", AccessAdmin},
		{"POST", "/v1/leave", AccessAdmin},
		{"DELETE", "/v1/tokens/x", AccessAdmin},
		{"POST", "/v1/keyring/use", AccessAdmin},
		{"GET", "/v1/snapshot", AccessAdmin},
		{"PUT", "/v1/snapshot", AccessAdmin},
		{"PUT", "/v1/internal/snapshot", AccessPeer},
		{"GET", "/debug/pprof/heap", AccessAdmin},
		{"POST", "/v1/something-new", AccessAdmin}, // fails closed
		{"GET", "/v1/internalx", AccessAdmin},
		{"GET", "/partition/a/../../v1/tokens", AccessAdmin}, // unclean: the mux redirects
	} {
		if got := accessOf(s, tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

// Every route of the RAGondin/openrag API is a client route of a named
// level: none may fall through to the admin default by omission (the UIs
// would then need an admin token for a plain listing), and none is on the
// peer plane.
func TestCompatRoutesHaveAClientRole(t *testing.T) {
	// OpenRAG keeps these to its admins (require_admin).
	adminOnly := map[string]bool{"GET /actors/{$}": true, "POST /actors/{actor_name}/restart": true}
	for _, d := range compatRoutes {
		want := AccessRead
		if d.method() != "GET" {
			want = AccessIndex
		}
		if adminOnly[d.Pattern] {
			want = AccessAdmin
		}
		if got := routeFor(d.Pattern).Access; got != want {
			t.Errorf("%s needs %v, want %v", d.Pattern, got, want)
		}
	}
}

// Every row of the route table is a mounted route, reached by a request
// for its own shape (mounting a pattern without a row panics in handle):
// the table is the whole surface.
func TestRouteTableIsTheWholeSurface(t *testing.T) {
	s := everyRouteServer()
	param := regexp.MustCompile(`\{[^}]+\}`)
	for p := range routeTable {
		method, path := patternMethod(p)
		if method == "" {
			method = "GET"
		}
		path = param.ReplaceAllString(strings.ReplaceAll(path, "{$}", ""), "p1")
		if _, got := s.mux.Handler(httptest.NewRequest(method, path, nil)); got != p {
			t.Errorf("row %q: a request %s %s reaches %q", p, method, path, got)
		}
	}
}
