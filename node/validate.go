package node

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/transport"
)

// maxNameLen bounds file IDs and partition names: both are written into
// every ledger entry about the file and into every chunk's metadata.
const maxNameLen = 1024

// validFileID is the one rule for file IDs on every route (CLI, bulk,
// RAGondin): not blank, valid UTF-8, no control characters (a NUL would
// split the ledger's partition/file key), bounded length.
func validFileID(id string) error { return validName("file_id", id) }

// validPartition is the same rule for partition names.
func validPartition(p string) error { return validName("partition", p) }

func validName(what, v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return errs.Errorf(errs.Invalid, "%s must not be blank", what)
	case len(v) > maxNameLen:
		return errs.Errorf(errs.Invalid, "%s is %d bytes long; the limit is %d", what, len(v), maxNameLen)
	case !utf8.ValidString(v):
		return errs.Errorf(errs.Invalid, "%s is not valid UTF-8", what)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return errs.Errorf(errs.Invalid, "%s must not contain control characters", what)
	}
	return nil
}

// maxMetadataBytes caps a file's metadata as JSON: it is copied into the
// ledger entry and into every chunk of the file, so 1 MB on a file of 500
// chunks would be 500 MB of store.
const maxMetadataBytes = 64 << 10

// validMetadata refuses metadata above the cap, naming it.
func validMetadata(meta map[string]any) error {
	if len(meta) == 0 {
		return nil
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return errs.Errorf(errs.Invalid, "metadata: %w", err)
	}
	if len(b) > maxMetadataBytes {
		return errs.Errorf(errs.TooLarge, "metadata is %d bytes as JSON; the limit is %d", len(b), maxMetadataBytes)
	}
	return nil
}

// maxTopK caps the hits one search may ask for (the compat API answers
// 422 above it, before asking).
const maxTopK = transport.MaxTopK
