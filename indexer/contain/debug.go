package contain

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"time"

	"github.com/ragnode/ragnode/indexer/loader"
)

// Documents that misbehave on purpose, for tests of the whole path (node,
// worker, child, ledger) that no real document makes quickly and
// reliably. They exist only in a child whose parent set EnvDebug in the
// environment it passed down (a test does, with t.Setenv); the node never
// does, so in a real cluster such bytes are an ordinary text file. A
// debug document starts with DebugMagic, a verb and a newline:
//
//	inflate  the rest is a gzip stream in base64 (so that the upload is
//	         text), read whole: an inflate bomb
//	sleep    never answers
//	crash    the child kills itself with SIGKILL, as the OOM killer would
const (
	EnvDebug   = "RAGNODE_PARSER_DEBUG"
	DebugMagic = "RAGNODE-PARSER-DEBUG "
)

// debugDocs is set in a child started with EnvDebug=1.
var debugDocs bool

func debugDoc(ctx context.Context, data []byte) (loader.Document, bool, error) {
	if !debugDocs || !bytes.HasPrefix(data, []byte(DebugMagic)) {
		return loader.Document{}, false, nil
	}
	verb, rest, _ := bytes.Cut(data[len(DebugMagic):], []byte("\n"))
	switch string(verb) {
	case "inflate":
		zr, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(rest)))
		if err != nil {
			return loader.Document{}, true, &DocError{Err: err}
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			return loader.Document{}, true, &DocError{Err: err}
		}
		return loader.Document{Kind: loader.TXT, Pages: []loader.Page{{Text: "inflated " + itoa(len(b)) + " bytes"}}}, true, nil
	case "sleep":
		select {
		case <-ctx.Done():
			return loader.Document{}, true, ctx.Err()
		case <-time.After(time.Hour):
		}
		return loader.Document{}, true, nil
	case "crash":
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Kill()
		}
		time.Sleep(time.Hour)
	}
	return loader.Document{}, true, &DocError{Err: errors.New("unknown debug verb " + string(verb))}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n > 0 || i == len(b) {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
