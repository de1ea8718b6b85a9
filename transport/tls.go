package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// TLS for both planes.
//
// Guarantees: a peer connection (Raft, peer HTTP) is accepted only from a
// certificate the cluster CA signed that names NodeRoleName, and a node
// only talks to peers that present one, so a client certificate from the
// same CA cannot pose as a node. Reload swaps the certificate, key and CA
// at once, and only when all three load: a half-written file leaves the
// old pair serving. Connections made after a reload use the new pair;
// open ones keep theirs.

// TLSFiles names the PEM files of a node or client.
type TLSFiles struct {
	CA   string
	Cert string
	Key  string
}

type tlsPair struct {
	cert *tls.Certificate
	pool *x509.CertPool
}

// TLSMaterial is a node's CA pool and certificate, reloadable.
type TLSMaterial struct {
	files TLSFiles
	cur   atomic.Pointer[tlsPair]
}

// LoadTLS reads the files; all three are needed.
func LoadTLS(f TLSFiles) (*TLSMaterial, error) {
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return nil, errors.New("TLS needs --ca-file, --cert-file and --key-file together")
	}
	m := &TLSMaterial{files: f}
	if err := m.Reload(); err != nil {
		return nil, err
	}
	return m, nil
}

// Reload reads the files again and swaps them in if they are valid.
func (m *TLSMaterial) Reload() error {
	pool, err := loadPool(m.files.CA)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(m.files.Cert, m.files.Key)
	if err != nil {
		return fmt.Errorf("load certificate %s / key %s: %w", m.files.Cert, m.files.Key, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("parse certificate %s: %w", m.files.Cert, err)
	}
	cert.Leaf = leaf
	m.cur.Store(&tlsPair{cert: &cert, pool: pool})
	return nil
}

// Leaf returns the certificate in use (tests, status).
func (m *TLSMaterial) Leaf() *x509.Certificate { return m.cur.Load().cert.Leaf }

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// HasNodeRole reports whether a verified peer certificate names the node
// role.
func HasNodeRole(c *x509.Certificate) bool {
	return c != nil && c.VerifyHostname(NodeRoleName) == nil
}

// IsNodeConn reports whether a TLS connection's client presented a node
// certificate the CA verified.
func IsNodeConn(cs *tls.ConnectionState) bool {
	return cs != nil && len(cs.VerifiedChains) > 0 && HasNodeRole(cs.VerifiedChains[0][0])
}

// APIServerConfig is the client-and-peer HTTP listener's config: node
// certificates are verified when given (the peer plane), client
// certificates required only with verifyClients.
func (m *TLSMaterial) APIServerConfig(verifyClients bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if verifyClients {
		auth = tls.RequireAndVerifyClientCert
	}
	return m.serverConfig(auth, false)
}

// PeerServerConfig is the Raft listener's: a node certificate required.
func (m *TLSMaterial) PeerServerConfig() *tls.Config {
	return m.serverConfig(tls.RequireAndVerifyClientCert, true)
}

func (m *TLSMaterial) serverConfig(auth tls.ClientAuthType, nodeOnly bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Read per handshake, so a reload reaches new connections.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			p := m.cur.Load()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*p.cert},
				ClientCAs:    p.pool,
				ClientAuth:   auth,
			}
			if nodeOnly {
				c.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
					if len(chains) == 0 || !HasNodeRole(chains[0][0]) {
						return fmt.Errorf("peer certificate does not name %s", NodeRoleName)
					}
					return nil
				}
			}
			return c, nil
		},
	}
}

// PeerClientConfig is what a node dials peers with: its own certificate,
// and the peer's checked against the current CA and the node role name
// (not the address: a node is whoever holds a node certificate).
func (m *TLSMaterial) PeerClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return m.cur.Load().cert, nil
		},
		// The standard check would pin RootCAs at creation; this one reads
		// the current pool, so a CA rotation reaches pooled clients.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("peer presented no certificate")
			}
			opts := x509.VerifyOptions{Roots: m.cur.Load().pool, Intermediates: x509.NewCertPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return fmt.Errorf("peer certificate: %w", err)
			}
			if !HasNodeRole(cs.PeerCertificates[0]) {
				return fmt.Errorf("peer certificate does not name %s", NodeRoleName)
			}
			return nil
		},
	}
}

// ClientTLS is a CLI client's config: the cluster CA (RAGNODE_CACERT) and
// optionally a client certificate.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--client-cert and --client-key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
