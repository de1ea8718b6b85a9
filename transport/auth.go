package transport

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/ragnode/ragnode/fsm"
)

// Authentication on two planes.
//
// Guarantees, once SetAuth has been called:
//   - a peer route (RouteAccess == AccessPeer) is served only to a request
//     carrying the cluster's node credential (`Authorization: Node
//     <peer secret>`); any bearer credential there gets 403, whatever its
//     role, and nothing at all gets 401;
//   - a client route needs, when a bootstrap token is configured, the
//     bootstrap token (admin), a ledger token whose role reaches the
//     route's access (403 otherwise), or the node credential (nodes forward
//     status and search calls); an unknown or revoked token gets 401;
//   - a partition-scoped token is served only on requests whose touched
//     partitions, resolved by the route table (auth_scope.go), are all its
//     own, and listings are filtered to that partition;
//   - with Auth.External (--catalog), a token ragnode does not know may be
//     an OpenRAG user: an admin, or a caller limited to its memberships,
//     each touched partition checked against its role there
//     (auth_external.go);
//   - every refusal is logged with the route and the token's ID, never a
//     secret. Secrets are compared in constant time.

// NodeScheme is the Authorization scheme of the node credential.
const NodeScheme = "Node"

// Auth is how a Server checks credentials.
type Auth struct {
	// Bootstrap is the startup --token: an admin credential. "" leaves the
	// client plane open (the peer plane is checked regardless).
	Bootstrap string
	// PeerSecret returns the cluster's node credential, "" while this
	// node does not know it yet.
	PeerSecret func() string
	// Token finds a ledger token by the hex SHA-256 of its secret.
	Token func(hash string) (fsm.Token, bool)
	Log   hclog.Logger
	// Resolve finds the partition of a task or chunk a request names, for
	// partition-scoped tokens; nil refuses such requests to them.
	Resolve ScopeResolver
	// NodeCertOnly (TLS on): the node credential is a verified node
	// certificate on the connection (tls.go); the peer secret is refused.
	NodeCertOnly bool
	// External, when set (--catalog), is asked about a bearer token that
	// is neither the bootstrap token nor a ledger token: OpenRAG's users
	// (auth_external.go). ok false leaves the token unknown (401); an error
	// means the answer cannot be known now (503, clients retry).
	External func(ctx context.Context, secret string) (c Caller, ok bool, err error)
}

// HashToken is how a token secret is stored: hex SHA-256. Secrets are 32
// random bytes, so a plain hash cannot be brute-forced.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// SetAuth turns on the two-plane checks (see Auth).
func (s *Server) SetAuth(a Auth) {
	if a.Log == nil {
		a.Log = hclog.NewNullLogger()
	}
	s.auth = &a
	s.token = a.Bootstrap
}

// Caller is who a request was authenticated as.
type Caller struct {
	Node    bool   // the node credential
	TokenID string // "bootstrap" for --token, a ledger ID, "" if open
	Role    string
	// Partition limits the caller to one partition ("" for none).
	Partition string
	// Partitions, when not nil, limits the caller to a set of partitions
	// with an OpenRAG role in each (viewer, editor, owner): an OpenRAG
	// user's memberships (auth_external.go).
	Partitions map[string]string
	// UserID is the OpenRAG user the caller acts as (0: none).
	UserID int64
}

type callerKey struct{}

// CallerOf returns the caller ServeHTTP authenticated, if any.
func CallerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// credential splits the Authorization header into scheme and value.
func credential(r *http.Request) (scheme, value string) {
	h := r.Header.Get("Authorization")
	sch, val, ok := strings.Cut(h, " ")
	if !ok {
		return "", ""
	}
	return strings.ToLower(sch), strings.TrimSpace(val)
}

// authorize checks r and answers the refusal itself; it returns the
// request to serve (with its Caller) or nil.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) *http.Request {
	a := s.auth
	_, pattern := s.mux.Handler(r)
	need := routeFor(pattern).Access
	scheme, val := credential(r)
	// r.TLS is set only on a TLS listener; a verified node certificate is
	// the node credential there, in a move to TLS (NodeCertOnly off) too.
	isNode := IsNodeConn(r.TLS)
	if a.NodeCertOnly && !isNode && scheme == strings.ToLower(NodeScheme) {
		s.refuse(w, r, http.StatusUnauthorized, need, "", "with TLS on, a node proves itself by its certificate")
		return nil
	}
	if !isNode && scheme == strings.ToLower(NodeScheme) {
		secret := a.PeerSecret()
		if secret == "" {
			// A node that has not yet replicated the ledger cannot tell a
			// peer from a stranger; 503 makes a forwarding peer retry.
			s.refuse(w, r, http.StatusServiceUnavailable, need, "", "this node does not know the cluster's node credential yet")
			return nil
		}
		if subtle.ConstantTimeCompare([]byte(val), []byte(secret)) != 1 {
			s.refuse(w, r, http.StatusUnauthorized, need, "", "invalid node credential")
			return nil
		}
		isNode = true
	}
	if need == AccessPeer {
		switch {
		case isNode:
			return withCaller(r, Caller{Node: true})
		case scheme == "":
			s.refuse(w, r, http.StatusUnauthorized, need, "", "peer route: node credential required")
		default:
			s.refuse(w, r, http.StatusForbidden, need, s.tokenID(scheme, val), "peer route: client credentials are not accepted")
		}
		return nil
	}
	if isNode {
		return withCaller(r, Caller{Node: true})
	}
	if a.Bootstrap == "" && strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
		// Profiles show memory contents and cost CPU: never open.
		s.refuse(w, r, http.StatusForbidden, need, "", "/debug/pprof needs an admin token: start the node with --token")
		return nil
	}
	if s.isPublic(r) || s.consoleOpen(r) || a.Bootstrap == "" {
		return r
	}
	if scheme != "bearer" || val == "" {
		s.writeUnauthorized(w, r)
		a.Log.Warn("request refused", "method", r.Method, "route", r.URL.Path, "token", "", "reason", "no bearer token")
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(val), []byte(a.Bootstrap)) == 1 {
		return withCaller(r, Caller{TokenID: "bootstrap", Role: fsm.RoleAdmin})
	}
	tok, ok := a.Token(HashToken(val))
	if !ok && a.External != nil {
		return s.authorizeExternal(w, r, need, val)
	}
	if !ok {
		s.writeUnauthorized(w, r)
		a.Log.Warn("request refused", "method", r.Method, "route", r.URL.Path, "token", "", "reason", "unknown or revoked token")
		return nil
	}
	if roleAccess(tok.Role) < need {
		s.refuse(w, r, http.StatusForbidden, need, tok.ID, "token role "+tok.Role+" cannot call a route that needs "+need.String())
		return nil
	}
	// The partition check runs in the route's handler chain (scoped), where
	// the router has decoded the path values it names.
	return withCaller(r, Caller{TokenID: tok.ID, Role: tok.Role, Partition: tok.Partition})
}

func withCaller(r *http.Request, c Caller) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
}

// tokenID names a presented bearer token for a log line: its ledger ID,
// "bootstrap", or "unknown" (the secret itself never).
func (s *Server) tokenID(scheme, val string) string {
	if scheme != "bearer" || val == "" {
		return ""
	}
	if s.auth.Bootstrap != "" && subtle.ConstantTimeCompare([]byte(val), []byte(s.auth.Bootstrap)) == 1 {
		return "bootstrap"
	}
	if t, ok := s.auth.Token(HashToken(val)); ok {
		return t.ID
	}
	return "unknown"
}

// refuse logs and answers a refusal in the route's error format.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, need Access, tokenID, why string) {
	s.auth.Log.Warn("request refused", "method", r.Method, "route", r.URL.Path, "needs", need.String(), "token", tokenID, "status", code, "reason", why)
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ragnode"`)
	}
	if s.compat && !strings.HasPrefix(r.URL.Path, "/v1/") && !strings.HasPrefix(r.URL.Path, "/debug/") {
		writeDetail(w, code, "%s", why)
		return
	}
	WriteJSON(w, code, ErrorBody{Error: why})
}
