package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// Role tokens (transport.TokenBackend). The secret is made here, returned
// once, and only its hash goes into the ledger; revocation is a ledger
// change, so every node refuses a revoked token as soon as it applies it.

// tokenSecretPrefix marks ragnode secrets, so a leaked one is recognisable
// by secret scanners.
const tokenSecretPrefix = "rgn_"

// CreateToken implements transport.TokenBackend.
func (n *Node) CreateToken(ctx context.Context, req transport.TokenRequest) (transport.CreatedToken, error) {
	if !fsm.ValidRole(req.Role) {
		return transport.CreatedToken{}, errs.Errorf(errs.Invalid, "role %q: want read, index or admin", req.Role)
	}
	if req.Partition != "" {
		if err := validName("partition", req.Partition); err != nil {
			return transport.CreatedToken{}, err
		}
	}
	var id [8]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return transport.CreatedToken{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return transport.CreatedToken{}, err
	}
	tok := transport.CreatedToken{
		ID:        hex.EncodeToString(id[:]),
		Secret:    tokenSecretPrefix + base64.RawURLEncoding.EncodeToString(secret[:]),
		Role:      req.Role,
		Partition: req.Partition,
	}
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdCreateToken, Token: &fsm.Token{
		ID: tok.ID, Hash: transport.HashToken(tok.Secret), Role: tok.Role, Partition: tok.Partition}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return transport.CreatedToken{}, fmt.Errorf("create token: %w", err)
	}
	return tok, nil
}

// ListTokens implements transport.TokenBackend.
func (n *Node) ListTokens(ctx context.Context) ([]transport.TokenInfo, error) {
	var out []transport.TokenInfo
	n.fsm.View(func(s *fsm.State) {
		for _, t := range s.Tokens {
			out = append(out, transport.TokenInfo{ID: t.ID, Role: t.Role, Partition: t.Partition, Created: t.Created})
		}
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Created != out[j].Created {
			return out[i].Created < out[j].Created
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeToken implements transport.TokenBackend.
func (n *Node) RevokeToken(ctx context.Context, id string) error {
	var known bool
	n.fsm.View(func(s *fsm.State) { known = s.Tokens[id] != nil })
	if !known {
		return errs.Errorf(errs.NotFound, "token %s not found", id)
	}
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdRevokeToken, TokenID: id})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return nil
}
