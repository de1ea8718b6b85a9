package node

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/ragnode/ragnode/transport"
)

// TLS on a node: --ca-file, --cert-file and --key-file together turn it on
// for Raft (tls_raft.go), the peer HTTP plane (mutual TLS: the node
// certificate is the node credential) and the client API (HTTPS; client
// certificates required with --verify-incoming-clients). ReloadTLS, called
// on SIGHUP, swaps in new files without a restart.

func (c *Config) tlsOn() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

func (n *Node) loadTLS() error {
	if !n.cfg.tlsOn() {
		return nil
	}
	m, err := transport.LoadTLS(transport.TLSFiles{CA: n.cfg.CAFile, Cert: n.cfg.CertFile, Key: n.cfg.KeyFile})
	if err != nil {
		return err
	}
	if !transport.HasNodeRole(m.Leaf()) {
		return fmt.Errorf("--cert-file %s is not a node certificate (it does not name %s); make one with 'ragnode tls cert create'", n.cfg.CertFile, transport.NodeRoleName)
	}
	n.tls = m
	return nil
}

// ReloadTLS reads the certificate, key and CA files again. On an error the
// node keeps serving with the pair it had.
func (n *Node) ReloadTLS() error {
	if n.tls == nil {
		return fmt.Errorf("TLS is off on this node")
	}
	if err := n.tls.Reload(); err != nil {
		return err
	}
	if !transport.HasNodeRole(n.tls.Leaf()) {
		return fmt.Errorf("reloaded --cert-file is not a node certificate")
	}
	n.log.Info("TLS certificates reloaded", "not_after", n.tls.Leaf().NotAfter)
	return nil
}

// wrapHTTPListener puts the API behind TLS when it is on.
func (n *Node) wrapHTTPListener(ln net.Listener) net.Listener {
	if n.tls == nil {
		return ln
	}
	if n.cfg.transition().tls {
		return transport.NewTransitionListener(ln, n.tls.APIServerConfig(n.cfg.VerifyIncomingClients))
	}
	return tls.NewListener(ln, n.tls.APIServerConfig(n.cfg.VerifyIncomingClients))
}

// peerClient builds the client for one peer's API: mutual TLS with TLS
// on, else plain HTTP carrying the peer secret.
func (n *Node) peerClient(addr string) *transport.Client {
	if n.tls != nil && n.cfg.transition().tls {
		return transport.NewPeerTransitionClient(addr, n.tls, n.peerSecret)
	}
	if n.tls != nil {
		return transport.NewPeerTLSClient(addr, n.tls)
	}
	return transport.NewPeerClient(addr, n.peerSecret)
}
