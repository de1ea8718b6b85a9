package transport

import (
	"context"
	"encoding/json"
	"net/http"
)

// KeyringRequest names a gossip key (base64, 16/24/32 bytes).
type KeyringRequest struct {
	Key string `json:"key"`
}

// KeyringAnswer is the cluster's answer to a keyring operation, gathered
// from every member by Serf's key manager.
type KeyringAnswer struct {
	Nodes     int               `json:"nodes"`     // members asked
	Responses int               `json:"responses"` // members that answered
	Errors    map[string]string `json:"errors,omitempty"`
	// Keys counts, per base64 key, the nodes holding it; Primary the
	// nodes encrypting with it.
	Keys    map[string]int `json:"keys,omitempty"`
	Primary map[string]int `json:"primary,omitempty"`
}

// KeyringBackend runs keyring operations cluster-wide.
type KeyringBackend interface {
	Keyring(ctx context.Context, op, key string) (KeyringAnswer, error)
}

// Keyring operations.
const (
	KeyringList    = "list"
	KeyringInstall = "install"
	KeyringUse     = "use"
	KeyringRemove  = "remove"
)

// MountKeyring serves /v1/keyring (admin: see routeAccess).
func (s *Server) MountKeyring(b KeyringBackend) {
	s.handleFunc("GET /v1/keyring", func(w http.ResponseWriter, r *http.Request) {
		a, err := b.Keyring(r.Context(), KeyringList, "")
		reply(w, a, err)
	})
	s.handleFunc("POST /v1/keyring/{op}", func(w http.ResponseWriter, r *http.Request) {
		op := r.PathValue("op")
		if op != KeyringInstall && op != KeyringUse && op != KeyringRemove {
			WriteError(w, invalidf("keyring operation %q: want install, use or remove", op))
			return
		}
		var req KeyringRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
			WriteError(w, invalidf("decode keyring request: %v", err))
			return
		}
		a, err := b.Keyring(r.Context(), op, req.Key)
		reply(w, a, err)
	})
}

// Keyring runs one keyring operation (op "list" takes no key).
func (c *Client) Keyring(ctx context.Context, op, key string) (KeyringAnswer, error) {
	var a KeyringAnswer
	if op == KeyringList {
		return a, c.Do(ctx, http.MethodGet, "/v1/keyring", nil, nil, &a)
	}
	return a, c.Do(ctx, http.MethodPost, "/v1/keyring/"+op, nil, jsonBody(KeyringRequest{Key: key}), &a)
}
