package transport

import (
	"crypto/tls"
	"net/http"
)

// NewTLSClient is NewClient over HTTPS with the given TLS config.
func NewTLSClient(addr, token string, cfg *tls.Config) *Client {
	c := NewClient(addr, token)
	c.Scheme = "https"
	c.HTTP.Transport.(*http.Transport).TLSClientConfig = cfg
	return c
}

// NewPeerTLSClient is a node's client for peers with TLS on: its node
// certificate is the credential, the peer's is checked for the node role.
func NewPeerTLSClient(addr string, m *TLSMaterial) *Client {
	return NewTLSClient(addr, "", m.PeerClientConfig())
}
