package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

func testMaterial(t *testing.T, name string) *TLSMaterial {
	t.Helper()
	dir := t.TempDir()
	if err := CreateCA(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := CreateCert(dir, dir, CertSpec{Name: name, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Validity: time.Hour}); err != nil {
		t.Fatal(err)
	}
	m, err := LoadTLS(TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// One port, both protocols: a plaintext request is answered without TLS,
// a TLS one with it, and a node certificate on it is seen as one.
func TestTransitionListenerServesBoth(t *testing.T) {
	m := testMaterial(t, "n1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := NewTransitionListener(ln, m.APIServerConfig(false))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v node=%v", r.TLS != nil, IsNodeConn(r.TLS))
	})}
	go srv.Serve(tl)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	get := func(c *http.Client, url string) string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(http.DefaultClient, "http://"+addr+"/"); got != "tls=false node=false" {
		t.Fatalf("plain: %q", got)
	}
	peer := &http.Client{Transport: &http.Transport{TLSClientConfig: m.PeerClientConfig()}}
	if got := get(peer, "https://"+addr+"/"); got != "tls=true node=true" {
		t.Fatalf("TLS with a node certificate: %q", got)
	}
	// The transition client takes the TLS path here.
	tc := NewPeerTransitionClient(addr, m, func() string { return "" })
	resp, err := tc.HTTP.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "tls=true node=true" {
		t.Fatalf("transition client on a TLS port: %q", b)
	}
}

// DialTLSOrPlain falls back to plaintext only for a peer that does not
// speak TLS, never for one that refuses the certificate or shows a bad one.
func TestDialTLSOrPlainFallsBackOnlyForPlaintextPeers(t *testing.T) {
	m := testMaterial(t, "n1")
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "plain")
	}))
	defer plain.Close()
	ctx := context.Background()
	c, isPlain, err := DialTLSOrPlain(ctx, plain.Listener.Addr().String(), m.PeerClientConfig(), 5*time.Second)
	if err != nil || !isPlain {
		t.Fatalf("plaintext peer: plain=%v err=%v", isPlain, err)
	}
	c.Close()
	// The transition client gets its answer from the plaintext peer.
	tc := NewPeerTransitionClient(plain.Listener.Addr().String(), m, func() string { return "s" })
	resp, err := tc.HTTP.Get("https://" + plain.Listener.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "plain" {
		t.Fatalf("transition client on a plaintext peer: %q", b)
	}

	// A TLS peer whose certificate another CA signed: an error, no fallback.
	other := testMaterial(t, "n2")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(NewTransitionListener(ln, other.APIServerConfig(false)))
	defer srv.Close()
	if c, isPlain, err := DialTLSOrPlain(ctx, ln.Addr().String(), m.PeerClientConfig(), 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("a peer of another CA was accepted (plain=%v)", isPlain)
	}
	if NotSpeakingTLS(fmt.Errorf("x: %w", io.EOF)) != true || NotSpeakingTLS(fmt.Errorf("peer certificate: bad")) {
		t.Fatal("NotSpeakingTLS misclassifies")
	}
}
