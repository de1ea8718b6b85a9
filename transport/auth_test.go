package transport

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/ragnode/ragnode/fsm"
)

func TestRouteAccessTable(t *testing.T) {
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
		{"GET", "/debug/pprof/heap", AccessAdmin},
		{"POST", "/v1/something-new", AccessAdmin}, // fails closed
		{"GET", "/v1/internalx", AccessAdmin},
	} {
		if got := RouteAccess(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestAuthorizeWithoutANode drives ServeHTTP's checks over a stub backend:
// the peer plane, role levels, partition scoping, and what is logged.
func TestAuthorizeWithoutANode(t *testing.T) {
	tokens := map[string]fsm.Token{
		HashToken("rgn_read"):   {ID: "r1", Role: fsm.RoleRead},
		HashToken("rgn_index"):  {ID: "i1", Role: fsm.RoleIndex},
		HashToken("rgn_legal"):  {ID: "l1", Role: fsm.RoleRead, Partition: "legal"},
		HashToken("rgn_admin2"): {ID: "a2", Role: fsm.RoleAdmin},
	}
	secret := ""
	var logs bytes.Buffer
	s := NewServer(scopeBackend{}, "")
	s.SetAuth(Auth{
		Bootstrap:  "boot",
		PeerSecret: func() string { return secret },
		Token:      func(h string) (fsm.Token, bool) { tk, ok := tokens[h]; return tk, ok },
		Log:        hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}),
	})
	// A handler that answers 200 stands in for each route, so only the
	// check decides.
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, found := CallerOf(r.Context()); found && c.TokenID != "" {
			w.Header().Set("X-Caller", c.TokenID)
		}
		w.WriteHeader(http.StatusOK)
	})
	for _, p := range []string{"GET /v1/internal/probe", "GET /v1/probe-read", "POST /v1/search-probe", "GET /partition-probe/"} {
		s.Handle(p, ok)
	}
	call := func(method, path, auth, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code
	}
	// Peer plane: before the secret is known, a node credential gets 503.
	if code := call("GET", "/v1/internal/probe", "Node abc", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("node credential before the secret is known: %d", code)
	}
	secret = strings.Repeat("s", 43)
	for auth, want := range map[string]int{
		"":                        http.StatusUnauthorized,
		"Node " + secret:          http.StatusOK,
		"node " + secret:          http.StatusOK,
		"Node wrong":              http.StatusUnauthorized,
		"Bearer boot":             http.StatusForbidden,
		"Bearer rgn_admin2":       http.StatusForbidden,
		"Bearer rgn_read":         http.StatusForbidden,
		"Bearer not-a-token-ever": http.StatusForbidden,
	} {
		if code := call("GET", "/v1/internal/probe", auth, ""); code != want {
			t.Errorf("peer route with %q: %d, want %d", auth, code, want)
		}
	}
	if !strings.Contains(logs.String(), "token=a2") || !strings.Contains(logs.String(), "route=/v1/internal/probe") {
		t.Fatalf("peer refusal not logged with route and token ID:\n%s", logs.String())
	}
	// Secrets never reach the log ("boot" would match "token=bootstrap").
	for _, leaked := range []string{"rgn_admin2", "rgn_read", "not-a-token-ever", secret} {
		if strings.Contains(logs.String(), leaked) {
			t.Fatalf("a secret (%s) reached the log", leaked)
		}
	}
	// Client plane (unlisted probe paths need admin).
	for auth, want := range map[string]int{
		"":                  http.StatusUnauthorized,
		"Bearer nope":       http.StatusUnauthorized,
		"Bearer rgn_read":   http.StatusForbidden,
		"Bearer rgn_index":  http.StatusForbidden,
		"Bearer rgn_admin2": http.StatusOK,
		"Bearer boot":       http.StatusOK,
		"BEARER boot":       http.StatusOK,
		"Node " + secret:    http.StatusOK,
	} {
		if code := call("GET", "/v1/probe-read", auth, ""); code != want {
			t.Errorf("admin route with %q: %d, want %d", auth, code, want)
		}
	}
	// Partition scope on a read route.
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/v1/tasks?partition=legal", "", http.StatusOK},
		{"GET", "/v1/tasks?partition=hr", "", http.StatusForbidden},
		{"GET", "/v1/tasks", "", http.StatusForbidden},
		{"POST", "/v1/search", `{"text":"x","partitions":["legal"]}`, http.StatusOK},
		{"POST", "/v1/search", `{"text":"x","partitions":["legal","hr"]}`, http.StatusForbidden},
		{"POST", "/v1/search", `{"text":"x"}`, http.StatusForbidden},
		{"POST", "/v1/search", `not json`, http.StatusForbidden},
	} {
		if code := call(tc.method, tc.path, "Bearer rgn_legal", tc.body); code != tc.want {
			t.Errorf("scoped token %s %s %s: %d, want %d", tc.method, tc.path, tc.body, code, tc.want)
		}
	}
	// The caller reaches the handler.
	req := httptest.NewRequest("GET", "/v1/probe-read", nil)
	req.Header.Set("Authorization", "Bearer rgn_admin2")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req.WithContext(context.Background()))
	if rec.Header().Get("X-Caller") != "a2" {
		t.Fatalf("caller not passed on: %q", rec.Header().Get("X-Caller"))
	}
}

// scopeBackend answers the two read routes the scoping cases call.
type scopeBackend struct{ stubBackend }

func (scopeBackend) Tasks(context.Context, string, string) ([]TaskView, error) { return nil, nil }
func (scopeBackend) Search(context.Context, SearchRequest) ([]Hit, error)      { return nil, nil }
