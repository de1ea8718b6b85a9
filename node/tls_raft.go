package node

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/transport"
)

// newTLSStreamLayer is Raft's transport with TLS on: mutual TLS where both
// sides must present a node certificate of the cluster CA (see
// transport.TLSMaterial), the handshake done before Raft sees the
// connection.
func newTLSStreamLayer(bind string, adv net.Addr, m *transport.TLSMaterial, log hclog.Logger) (*gatedStreamLayer, error) {
	cfg := m.PeerServerConfig() // picks the current pair per handshake (reloads)
	admit := func(c net.Conn) (net.Conn, error) { return tlsAdmit(c, cfg) }
	dial := func(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), m.PeerClientConfig())
		if err != nil {
			return nil, fmt.Errorf("raft TLS to %s: %w", addr, err)
		}
		return c, nil
	}
	return newGatedStreamLayer(bind, adv, log, admit, dial)
}
