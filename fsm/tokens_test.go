package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func hashOf(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func TestTokensCreateLookupRevoke(t *testing.T) {
	s := New()
	r := mustApply(t, s, 1, Command{Type: CmdCreateToken, Now: 7, Token: &Token{ID: "tk1", Hash: hashOf("s1"), Role: RoleRead, Partition: "legal"}})
	if r.Err != "" {
		t.Fatalf("create: %s", r.Err)
	}
	got, ok := s.TokenByHash(hashOf("s1"))
	if !ok || got.ID != "tk1" || got.Role != RoleRead || got.Partition != "legal" || got.Created != 7 {
		t.Fatalf("lookup: %+v %v", got, ok)
	}
	if _, ok := s.TokenByHash(hashOf("s2")); ok {
		t.Fatal("unknown secret found a token")
	}
	// Same ID or same secret again: refused as duplicates.
	for _, tk := range []*Token{{ID: "tk1", Hash: hashOf("other"), Role: RoleAdmin}, {ID: "tk2", Hash: hashOf("s1"), Role: RoleAdmin}} {
		r := mustApply(t, s, 2, Command{Type: CmdCreateToken, Token: tk})
		if !errors.Is(r.Error(), ErrDuplicate) {
			t.Fatalf("duplicate %+v: %v", tk, r.Error())
		}
	}
	if r := mustApply(t, s, 3, Command{Type: CmdRevokeToken, TokenID: "tk1"}); r.Err != "" {
		t.Fatalf("revoke: %s", r.Err)
	}
	if _, ok := s.TokenByHash(hashOf("s1")); ok {
		t.Fatal("revoked token still found")
	}
	if r := mustApply(t, s, 4, Command{Type: CmdRevokeToken, TokenID: "tk1"}); !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("second revoke: %v", r.Error())
	}
}

func TestTokensMalformedRefused(t *testing.T) {
	s := New()
	for _, tk := range []*Token{
		nil,
		{ID: "", Hash: hashOf("a"), Role: RoleRead},
		{ID: "x", Hash: "secret-in-clear", Role: RoleRead},
		{ID: "x", Hash: hashOf("a"), Role: "root"},
		{ID: strings.Repeat("x", 65), Hash: hashOf("a"), Role: RoleRead},
	} {
		r := mustApply(t, s, 1, Command{Type: CmdCreateToken, Token: tk})
		if !errors.Is(r.Error(), ErrInvalid) {
			t.Fatalf("%+v accepted: %v", tk, r.Error())
		}
	}
	if len(s.Tokens) != 0 {
		t.Fatalf("tokens after refusals: %v", s.Tokens)
	}
}

func TestPeerSecretSetOnce(t *testing.T) {
	s := New()
	if r := mustApply(t, s, 1, Command{Type: CmdPeerSecret, PeerSecret: "short"}); !errors.Is(r.Error(), ErrInvalid) {
		t.Fatalf("short secret: %v", r.Error())
	}
	a, b := strings.Repeat("a", 43), strings.Repeat("b", 43)
	if r := mustApply(t, s, 2, Command{Type: CmdPeerSecret, PeerSecret: a}); r.Err != "" || s.PeerSecret() != a {
		t.Fatalf("first secret: %v %q", r.Error(), s.PeerSecret())
	}
	if r := mustApply(t, s, 3, Command{Type: CmdPeerSecret, PeerSecret: a}); r.Err != "" {
		t.Fatalf("same secret again: %v", r.Error())
	}
	if r := mustApply(t, s, 4, Command{Type: CmdPeerSecret, PeerSecret: b}); !errors.Is(r.Error(), ErrConflict) || s.PeerSecret() != a {
		t.Fatalf("second secret: %v, kept %q", r.Error(), s.PeerSecret())
	}
}

func TestTokensSurviveSnapshotAndOldSnapshotsDecode(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdCreateToken, Token: &Token{ID: "tk1", Hash: hashOf("s1"), Role: RoleIndex}})
	mustApply(t, s, 2, Command{Type: CmdPeerSecret, PeerSecret: strings.Repeat("p", 40)})
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"s1"`) {
		t.Fatal("snapshot holds a token secret")
	}
	s2, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if tk, ok := s2.TokenByHash(hashOf("s1")); !ok || tk.Role != RoleIndex || s2.PeerSecret() != s.PeerSecret() {
		t.Fatalf("restored: %+v %v %q", tk, ok, s2.PeerSecret())
	}
	// A snapshot written before tokens existed has neither field.
	old, err := Unmarshal([]byte(`{"nodes":{},"tasks":{},"allocs":{},"files":{},"blobs":{},"settings":{},"seq":0,"finished":[],"index":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(old.Tokens) != 0 || old.PeerSecret() != "" {
		t.Fatalf("old snapshot: %+v", old.Tokens)
	}
	if r := mustApply(t, old, 4, Command{Type: CmdCreateToken, Token: &Token{ID: "tk2", Hash: hashOf("s2"), Role: RoleRead}}); r.Err != "" {
		t.Fatalf("create on an old snapshot: %s", r.Err)
	}
}
