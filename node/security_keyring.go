package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/transport"
)

// loadKeyringFile reads the keyring Serf writes after a keyring change
// (a JSON list of base64 keys, the primary first). No file: no keys.
func loadKeyringFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read gossip keyring %s: %w", path, err)
	}
	var enc []string
	if err := json.Unmarshal(b, &enc); err != nil {
		return nil, fmt.Errorf("gossip keyring %s: %w", path, err)
	}
	keys := make([][]byte, 0, len(enc))
	for _, e := range enc {
		k, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("gossip keyring %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Keyring implements transport.KeyringBackend through Serf's key manager:
// each operation is a Serf query every member answers, so a rotation is
// install (everywhere) → use → remove, and no node is cut off at any step
// (every node decrypts with any installed key, and the Raft handshake
// accepts any installed key too). Serf writes the result to the keyring
// file, which a restart reads before --gossip-key.
func (n *Node) Keyring(ctx context.Context, op, key string) (transport.KeyringAnswer, error) {
	if n.keyring == nil {
		return transport.KeyringAnswer{}, errs.New(errs.Conflict, "gossip encryption is off on this node: start every node with --gossip-key or --join-secret first")
	}
	if op != transport.KeyringList {
		b, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			return transport.KeyringAnswer{}, errs.Errorf(errs.Invalid, "key is not base64: %v", err)
		}
		if l := len(b); l != 16 && l != 24 && l != 32 {
			return transport.KeyringAnswer{}, errs.Errorf(errs.Invalid, "key must decode to 16, 24 or 32 bytes, got %d", l)
		}
	}
	km := n.serf.KeyManager()
	var resp *serf.KeyResponse
	var err error
	switch op {
	case transport.KeyringList:
		resp, err = km.ListKeys()
	case transport.KeyringInstall:
		resp, err = km.InstallKey(key)
	case transport.KeyringUse:
		resp, err = km.UseKey(key)
	case transport.KeyringRemove:
		resp, err = km.RemoveKey(key)
	default:
		return transport.KeyringAnswer{}, errs.Errorf(errs.Invalid, "keyring operation %q", op)
	}
	a := transport.KeyringAnswer{}
	if resp != nil {
		a = transport.KeyringAnswer{Nodes: resp.NumNodes, Responses: resp.NumResp, Keys: resp.Keys, Primary: resp.PrimaryKeys}
		if len(resp.Messages) > 0 {
			a.Errors = resp.Messages
		}
	}
	if err != nil {
		// Serf's own refusals (removing the primary key, using a key not
		// installed) come back per node; the message says which.
		return a, errs.Errorf(errs.Conflict, "keyring %s: %v %v", op, err, a.Errors)
	}
	return a, nil
}
