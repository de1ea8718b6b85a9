package contain

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ragnode/ragnode/indexer/loader"
)

// The wire between parent and child: every message is one frame, a header
// of the magic "RGP", the protocol version and the body's length (uint32,
// big-endian), then the body, one message encoded by its own gob encoder
// (so a frame never depends on an earlier one). The version lets a parent
// refuse a child of another build (a binary replaced under a running node)
// instead of misreading it.

const (
	protoVersion = 1
	headerLen    = 8
	// envChild marks a process started as a parser child; its value is the
	// protocol version the parent speaks.
	envChild = "RAGNODE_PARSER_CHILD"
	// maxRequest bounds a request the child reads: the file itself, which
	// the node's upload limit bounds far lower.
	maxRequest = 4 << 30
	// maxControl bounds the small control messages.
	maxControl = 1 << 20
)

var magic = [3]byte{'R', 'G', 'P'}

// configMsg is the parent's first frame: the limits the child applies to
// itself before it reads any document.
type configMsg struct {
	Memory uint64        // the limit (heap limit, self-watch)
	AS     uint64        // RLIMIT_AS to set (0: none)
	CPU    time.Duration // per document (0: none)
	Loader loader.Options
}

// helloMsg answers the config: the child is ready (Err empty) or says why
// it cannot be.
type helloMsg struct {
	Pid int
	Err string
}

// requestMsg is one document. The file's bytes follow the frame raw
// (DataLen of them), so the parent writes them from the slice it has
// instead of encoding a second copy.
type requestMsg struct {
	Seq      uint64
	Req      Request // Data nil
	DataLen  uint64
	Deadline int64 // unix ns; 0: none
}

// responseMsg is the loaded document or the loaders' error.
type responseMsg struct {
	Seq       uint64
	Doc       loader.Document
	Err       string
	Permanent bool
}

// errFrame marks a malformed frame or stream.
var errFrame = errors.New("parser protocol")

func writeFrame(w io.Writer, msg any) error { return writeFrameMax(w, msg, 1<<32-1) }

// writeFrameMax writes msg unless its body passes max (a *tooLargeError,
// nothing written): the child checks a document against what the parent
// will read before sending it.
func writeFrameMax(w io.Writer, msg any, max uint64) error {
	var body bytes.Buffer
	body.Write(make([]byte, headerLen))
	if err := gob.NewEncoder(&body).Encode(msg); err != nil {
		return fmt.Errorf("%w: encode %T: %v", errFrame, msg, err)
	}
	b := body.Bytes()
	n := len(b) - headerLen
	if uint64(n) > max || uint64(n) > 1<<32-1 {
		return &tooLargeError{n: uint64(n), max: max}
	}
	copy(b, magic[:])
	b[3] = protoVersion
	binary.BigEndian.PutUint32(b[4:], uint32(n))
	_, err := w.Write(b)
	return err
}

// tooLargeError is a frame whose declared length passes the reader's bound.
type tooLargeError struct{ n, max uint64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%v: frame of %d bytes, bound %d", errFrame, e.n, e.max)
}

// readFrame reads one frame into msg, refusing a body above max before
// reading it: the bound is what the reader's heap may hold for it.
func readFrame(r io.Reader, msg any, max uint64) error {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	if !bytes.Equal(h[:3], magic[:]) {
		return fmt.Errorf("%w: bad magic %q", errFrame, h[:3])
	}
	if h[3] != protoVersion {
		return fmt.Errorf("%w: version %d, this binary speaks %d", errFrame, h[3], protoVersion)
	}
	n := uint64(binary.BigEndian.Uint32(h[4:]))
	if n > max {
		return &tooLargeError{n: n, max: max}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(msg); err != nil {
		return fmt.Errorf("%w: decode %T: %v", errFrame, msg, err)
	}
	return nil
}
