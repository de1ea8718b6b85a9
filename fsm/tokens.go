package fsm

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// Credentials in the ledger.
//
// Guarantees: the ledger holds a role token's SHA-256 hash, never its
// secret, so a snapshot or a log copy gives no usable client credential;
// a token ID and a hash each name at most one token; a revoked token is
// gone from every node's copy as soon as that node applies the revocation.
// The peer secret (the nodes' credential on the peer HTTP plane) is set
// once per cluster, by the first leader, and never changes afterwards.

// Role token roles, weakest first.
const (
	RoleRead  = "read"
	RoleIndex = "index"
	RoleAdmin = "admin"
)

// ValidRole reports whether r is one of the three roles.
func ValidRole(r string) bool { return r == RoleRead || r == RoleIndex || r == RoleAdmin }

// Token is a role token as the ledger keeps it.
type Token struct {
	ID string `json:"id"`
	// Hash is the hex SHA-256 of the secret.
	Hash string `json:"hash"`
	Role string `json:"role"`
	// Partition limits the token to one partition ("": all).
	Partition string `json:"partition,omitempty"`
	Created   int64  `json:"created"`
}

// MetaPeerSecret is the State.Meta key of the cluster's peer secret.
const MetaPeerSecret = "peer_secret"

// PeerSecret returns the cluster's peer secret, "" until the first leader
// has recorded one.
func (s *State) PeerSecret() string { return s.Meta[MetaPeerSecret] }

// TokenByHash finds the token whose secret hashes to hash. The comparison
// runs over every token in constant time per token, so the answer's timing
// does not tell how much of a guessed hash matched.
func (s *State) TokenByHash(hash string) (Token, bool) {
	var found *Token
	for _, t := range s.Tokens {
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) == 1 {
			found = t
		}
	}
	if found == nil {
		return Token{}, false
	}
	return *found, true
}

// applySecurity applies the credential commands.
func (s *State) applySecurity(c Command) Result {
	switch c.Type {
	case CmdCreateToken:
		t := c.Token
		if t == nil {
			return rejectf(CodeInvalid, "create_token without a token")
		}
		if err := checkToken(t); err != nil {
			return rejectf(CodeInvalid, "create_token: %v", err)
		}
		if s.Tokens[t.ID] != nil {
			return rejectf(CodeDuplicate, "token %s exists", t.ID)
		}
		if _, ok := s.TokenByHash(t.Hash); ok {
			return rejectf(CodeDuplicate, "a token with this secret exists")
		}
		if s.Tokens == nil {
			s.Tokens = map[string]*Token{}
		}
		cp := *t
		cp.Created = c.Now
		s.Tokens[t.ID] = &cp
		return Result{Applied: 1}
	case CmdRevokeToken:
		if s.Tokens[c.TokenID] == nil {
			return rejectf(CodeConflict, "unknown token %s", c.TokenID)
		}
		delete(s.Tokens, c.TokenID)
		return Result{Applied: 1}
	case CmdPeerSecret:
		switch have := s.Meta[MetaPeerSecret]; {
		case len(c.PeerSecret) < 32:
			return rejectf(CodeInvalid, "peer_secret shorter than 32 characters")
		case have == c.PeerSecret:
			return Result{}
		case have != "":
			// Two leaders racing at bootstrap: the first one recorded wins
			// and every node converges on it.
			return rejectf(CodeConflict, "the cluster already has a peer secret")
		}
		if s.Meta == nil {
			s.Meta = map[string]string{}
		}
		s.Meta[MetaPeerSecret] = c.PeerSecret
		return Result{Applied: 1}
	}
	return rejectf(CodeInvalid, "unknown security command %q", c.Type)
}

func checkToken(t *Token) error {
	if t.ID == "" || len(t.ID) > 64 {
		return fmt.Errorf("token ID must be 1 to 64 characters")
	}
	if b, err := hex.DecodeString(t.Hash); err != nil || len(b) != 32 {
		return fmt.Errorf("token hash must be 64 hex digits (SHA-256)")
	}
	if !ValidRole(t.Role) {
		return fmt.Errorf("role %q: want read, index or admin", t.Role)
	}
	if len(t.Partition) > 1024 {
		return fmt.Errorf("partition over 1024 bytes")
	}
	return nil
}

// checkTokenInvariants: every token is keyed by its own ID, well formed,
// and no two share a hash.
func (s *State) checkTokenInvariants() error {
	hashes := map[string]string{}
	for id, t := range s.Tokens {
		if t == nil || t.ID != id {
			return fmt.Errorf("token entry %s does not carry its own ID", id)
		}
		if err := checkToken(t); err != nil {
			return fmt.Errorf("token %s: %v", id, err)
		}
		if other, ok := hashes[t.Hash]; ok {
			return fmt.Errorf("tokens %s and %s share a hash", id, other)
		}
		hashes[t.Hash] = id
	}
	return nil
}
