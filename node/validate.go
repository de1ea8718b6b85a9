package node

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ragnode/ragnode/node/errs"
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
