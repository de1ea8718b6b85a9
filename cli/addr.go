package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ragnode/ragnode/node"
)

// parseAddr reads --addr as an operator writes it: HOST:PORT, a bare host
// (the default HTTP port), or a URL as a browser or the Ray dashboard shows
// it (http://host:port/, https://host). It returns HOST:PORT and whether
// the URL asked for HTTPS.
func parseAddr(addr string) (hostport string, https bool, err error) {
	a := strings.TrimSpace(addr)
	bad := func(why string) (string, bool, error) {
		return "", false, fmt.Errorf("--addr %q: %s; want HOST, HOST:PORT or http://HOST:PORT (the node's HTTP port, %d by default)", addr, why, node.DefaultHTTPPort)
	}
	if a == "" {
		return bad("empty")
	}
	if strings.Contains(a, "://") {
		u, err := url.Parse(a)
		if err != nil {
			return bad("not a URL")
		}
		switch u.Scheme {
		case "http":
		case "https":
			https = true
		default:
			return bad(fmt.Sprintf("scheme %q is not http or https", u.Scheme))
		}
		if p := strings.TrimRight(u.Path, "/"); p != "" || u.RawQuery != "" {
			return bad("a path or query is not taken: give the node, the commands know their paths")
		}
		if u.User != nil {
			return bad("credentials in the URL are not taken: use --token")
		}
		a = u.Host
		if a == "" {
			return bad("no host")
		}
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		// No port: a bare name or address, IPv6 with or without brackets.
		host = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		if host == "" || strings.ContainsAny(host, "/ ") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
			return bad("not a host")
		}
		port = strconv.Itoa(node.DefaultHTTPPort)
	}
	if host == "" {
		return bad("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad(fmt.Sprintf("port %q is not a number from 1 to 65535", port))
	}
	return net.JoinHostPort(host, port), https, nil
}

// httpsConfig is the TLS configuration of an https:// --addr without
// --ca-file: the system's roots, as a browser would check it.
func httpsConfig() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }

// explainRT turns the errors of talking to something that is not an HTTP
// server (a node's Raft or Serf port, most often) into what happened,
// instead of a bare EOF.
type explainRT struct {
	rt   http.RoundTripper
	addr string
}

func (e explainRT) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := e.rt.RoundTrip(r)
	if err != nil && notHTTP(err) {
		return nil, fmt.Errorf("it answers, but not in HTTP (%v): %s", err, portHint(e.addr))
	}
	return resp, err
}

// notHTTP reports errors that mean the peer accepted the connection but
// does not speak HTTP: it hung up on the request or answered something
// else.
func notHTTP(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "malformed HTTP") || strings.Contains(s, "connection reset by peer")
}

// portHint names what the port probably is: a node's other ports are
// the usual mistake, and the defaults say which one.
func portHint(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	what := "most likely a node's Raft or Serf port (--raft-port, --serf-port)"
	switch port {
	case strconv.Itoa(node.DefaultRaftPort):
		what = "port " + port + " is a node's Raft port by default"
	case strconv.Itoa(node.DefaultSerfPort):
		what = "port " + port + " is a node's Serf (gossip) port by default"
	}
	return fmt.Sprintf("%s; --addr takes a node's HTTP port (--http-port, %d by default)", what, node.DefaultHTTPPort)
}
