package transport

import "net/http"

// NewPeerClient returns a client for node-to-node calls: it sends the node
// credential (Authorization: Node <secret>), read at each request so a
// secret learnt after the client was made is used, and never a client
// token. With no secret known yet it sends nothing and the peer answers
// 401 or 503, which callers treat like any unreachable peer.
func NewPeerClient(addr string, secret func() string) *Client {
	c := NewClient(addr, "")
	c.HTTP.Transport = nodeCredential{base: c.HTTP.Transport, secret: secret}
	return c
}

type nodeCredential struct {
	base   http.RoundTripper
	secret func() string
}

func (n nodeCredential) RoundTrip(r *http.Request) (*http.Response, error) {
	if s := n.secret(); s != "" {
		// RoundTrippers must not change the caller's request.
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", NodeScheme+" "+s)
	}
	return n.base.RoundTrip(r)
}

// CloseIdleConnections reaches the pooled transport underneath: without it
// http.Client.CloseIdleConnections does nothing on a peer client, and a
// stopped node's keep-alive connections (two goroutines each, and one in
// the peer's server) outlive it until their idle timeout.
func (n nodeCredential) CloseIdleConnections() {
	if c, ok := n.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
