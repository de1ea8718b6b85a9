package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// TokenRequest asks for a new role token.
type TokenRequest struct {
	Role      string `json:"role"`
	Partition string `json:"partition,omitempty"`
}

// CreatedToken is the one answer that ever carries a token's secret.
type CreatedToken struct {
	ID        string `json:"id"`
	Secret    string `json:"secret"`
	Role      string `json:"role"`
	Partition string `json:"partition,omitempty"`
}

// TokenInfo describes a token without its secret or hash.
type TokenInfo struct {
	ID        string `json:"id"`
	Role      string `json:"role"`
	Partition string `json:"partition,omitempty"`
	Created   int64  `json:"created"` // Unix nanoseconds
}

// TokenBackend manages role tokens (admin routes).
type TokenBackend interface {
	CreateToken(ctx context.Context, req TokenRequest) (CreatedToken, error)
	ListTokens(ctx context.Context) ([]TokenInfo, error)
	RevokeToken(ctx context.Context, id string) error
}

// MountTokens serves /v1/tokens (admin: see routeAccess).
func (s *Server) MountTokens(b TokenBackend) {
	s.handleFunc("POST /v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			WriteError(w, invalidf("decode token request: %v", err))
			return
		}
		tok, err := b.CreateToken(r.Context(), req)
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusCreated, tok)
	})
	s.handleFunc("GET /v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		ts, err := b.ListTokens(r.Context())
		if ts == nil {
			ts = []TokenInfo{}
		}
		reply(w, ts, err)
	})
	s.handleFunc("DELETE /v1/tokens/{id}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"revoked": r.PathValue("id")}, b.RevokeToken(r.Context(), r.PathValue("id")))
	})
}

// CreateToken makes a role token; the answer holds its secret, once.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (CreatedToken, error) {
	var t CreatedToken
	return t, c.Do(ctx, http.MethodPost, "/v1/tokens", nil, jsonBody(req), &t)
}

// ListTokens lists the role tokens (no secrets).
func (c *Client) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	var ts []TokenInfo
	return ts, c.Do(ctx, http.MethodGet, "/v1/tokens", nil, nil, &ts)
}

// RevokeToken deletes a role token everywhere.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
}
