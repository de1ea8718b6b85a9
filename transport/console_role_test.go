package transport

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ragnode/ragnode/fsm"
)

// The console asks whoami which actions to draw: each role gets its own
// name back, the bootstrap token is admin, and a node without any token
// (an open API) serves everyone as admin. The page's buttons follow it,
// and the routes behind them refuse a weaker role regardless.
func TestConsoleWhoami(t *testing.T) {
	tokens := map[string]fsm.Token{
		HashToken("rgn_read"):  {ID: "r1", Role: fsm.RoleRead},
		HashToken("rgn_index"): {ID: "i1", Role: fsm.RoleIndex},
	}
	s := NewServer(nil, "")
	s.SetAuth(Auth{
		Bootstrap:  "boot",
		PeerSecret: func() string { return "" },
		Token:      func(h string) (fsm.Token, bool) { tk, ok := tokens[h]; return tk, ok },
	})
	s.MountConsole(&fakeConsole{}, nil, false)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	for token, want := range map[string]string{
		"rgn_read":  `{"role":"read","token_id":"r1"}`,
		"rgn_index": `{"role":"index","token_id":"i1"}`,
		"boot":      `{"role":"admin","token_id":"bootstrap"}`,
	} {
		code, body, _ := get(t, ts, "GET", "/v1/console/whoami", token)
		if code != http.StatusOK || body != want+"\n" && body != want {
			t.Errorf("whoami with %s = %d %q, want %s", token, code, body, want)
		}
	}
	if code, _, _ := get(t, ts, "GET", "/v1/console/whoami", ""); code != http.StatusUnauthorized {
		t.Errorf("whoami without a token = %d, want 401", code)
	}
	// What a read token's hidden buttons would have called.
	if code, _, _ := get(t, ts, "POST", "/v1/console/tasks/t1/retry", "rgn_read"); code != http.StatusForbidden {
		t.Errorf("retry with a read token = %d, want 403", code)
	}

	open := NewServer(nil, "")
	open.MountConsole(&fakeConsole{}, nil, false)
	ots := httptest.NewServer(open)
	t.Cleanup(ots.Close)
	if code, body, _ := get(t, ots, "GET", "/v1/console/whoami", ""); code != http.StatusOK || (body != `{"role":"admin","token_id":""}`+"\n" && body != `{"role":"admin","token_id":""}`) {
		t.Errorf("whoami on an open node = %d %q", code, body)
	}
}
