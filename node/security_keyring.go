package node

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
