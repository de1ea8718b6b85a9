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
	sb := &scopeBackend{}
	s := NewServer(sb, "")
	s.SetAuth(Auth{
		Bootstrap:  "boot",
		PeerSecret: func() string { return secret },
		Token:      func(h string) (fsm.Token, bool) { tk, ok := tokens[h]; return tk, ok },
		Log:        hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}),
	})
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
	if code := call("GET", "/v1/internal/raft-stats", "Node abc", ""); code != http.StatusServiceUnavailable {
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
		if code := call("GET", "/v1/internal/raft-stats", auth, ""); code != want {
			t.Errorf("peer route with %q: %d, want %d", auth, code, want)
		}
	}
	if !strings.Contains(logs.String(), "token=a2") || !strings.Contains(logs.String(), "route=/v1/internal/raft-stats") {
		t.Fatalf("peer refusal not logged with route and token ID:\n%s", logs.String())
	}
	// Secrets never reach the log ("boot" would match "token=bootstrap").
	for _, leaked := range []string{"rgn_admin2", "rgn_read", "not-a-token-ever", secret} {
		if strings.Contains(logs.String(), leaked) {
			t.Fatalf("a secret (%s) reached the log", leaked)
		}
	}
	// Client plane: an admin route.
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
		if code := call("POST", "/v1/drain", auth, "{}"); code != want {
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
		{"GET", "/v1/tasks", "", http.StatusOK}, // a listing, filtered to legal
		{"GET", "/v1/tasks?partition=legal&partition=hr", "", http.StatusForbidden},
		{"POST", "/v1/search", `{"text":"x","partitions":["legal"]}`, http.StatusOK},
		{"POST", "/v1/search", `{"text":"x","partitions":["legal","hr"]}`, http.StatusForbidden},
		{"POST", "/v1/search", `{"text":"x"}`, http.StatusForbidden},
		{"POST", "/v1/search", `{"text":"x","PARTITIONS":["hr"]}`, http.StatusForbidden},             // decoded as the handler decodes
		{"POST", "/v1/search", `{"partitions":["legal"],"partitions":["hr"]}`, http.StatusForbidden}, // the last duplicate wins
		{"POST", "/v1/search", `not json`, http.StatusBadRequest},
	} {
		if code := call(tc.method, tc.path, "Bearer rgn_legal", tc.body); code != tc.want {
			t.Errorf("scoped token %s %s %s: %d, want %d", tc.method, tc.path, tc.body, code, tc.want)
		}
	}
	// The caller reaches the handler, and a scoped listing is filtered.
	if code := call("POST", "/v1/drain", "Bearer rgn_admin2", "{}"); code != http.StatusOK || sb.caller.TokenID != "a2" {
		t.Fatalf("caller not passed on: %d %+v", code, sb.caller)
	}
	if code := call("GET", "/v1/tasks", "Bearer rgn_legal", ""); code != http.StatusOK || sb.listed != "legal" {
		t.Fatalf("scoped listing asked the backend for partition %q (%d), want legal", sb.listed, code)
	}
}

// scopeBackend answers the routes the cases call, and records what the
// handlers passed on.
type scopeBackend struct {
	stubBackend
	caller Caller
	listed string
}

func (b *scopeBackend) Tasks(_ context.Context, _, partition string) ([]TaskView, error) {
	b.listed = partition
	return nil, nil
}
func (*scopeBackend) Search(context.Context, SearchRequest) ([]Hit, error) { return nil, nil }
func (*scopeBackend) RaftStats() RaftStats                                 { return RaftStats{} }
func (b *scopeBackend) Drain(ctx context.Context, _ DrainRequest) error {
	b.caller, _ = CallerOf(ctx)
	return nil
}
