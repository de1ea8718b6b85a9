package node

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ragnode/ragnode/transport"
)

func (n *Node) startHTTP() error {
	addr := net.JoinHostPort(n.cfg.Bind, strconv.Itoa(n.cfg.HTTPPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", addr, err)
	}
	n.httpLn = n.wrapHTTPListener(ln)
	n.httpAddr = net.JoinHostPort(n.cfg.advertiseIP(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	n.api = transport.NewServer(n, n.cfg.Token)
	n.api.SetAuth(n.authConfig())
	n.api.MountTokens(n)
	n.api.MountKeyring(n)
	n.api.MountSnapshot(n)
	n.api.MountCompat(n)
	n.api.SetCORSOrigins(n.cfg.CORSOrigins)
	// Config's negative "no limit" is the transport's 0.
	n.api.SetUploadLimits(max(n.cfg.UploadIdleTimeout, 0), max(n.cfg.MaxUploadsPerToken, 0))
	n.api.MountConsole(n, n.metrics.handler(), n.cfg.MetricsOpen)
	if n.cfg.Pprof {
		n.api.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
		n.api.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		n.api.Handle("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	}
	// net/http's own complaints (failed TLS handshakes above all) go to the
	// node's logger, not the process's standard one. No ReadTimeout: it
	// would bound a whole upload, and a large file on a slow link is
	// legitimate; the upload routes cut bodies that stop making progress
	// instead (--upload-idle-timeout). IdleTimeout closes keep-alive
	// connections nobody uses, which otherwise hold a descriptor forever.
	n.httpSrv = &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: n.log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true, ForceLevel: hclog.Debug})}
	return nil
}

// serveHTTP starts answering on the listener opened by startHTTP. It runs
// once Raft and Serf exist: peers (a leader's autopilot polling a node that
// is restarting) connect as soon as the port is open, and their requests
// wait in the backlog until then instead of reaching a half-built node.
func (n *Node) serveHTTP() {
	n.wg.Add(1)
	go n.watchPeerSecret()
	go func() {
		if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server", "error", err)
		}
	}()
}
