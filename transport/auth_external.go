package transport

import (
	"context"
	"net/http"
	"strings"
)

// OpenRAG's users (--catalog): a bearer token that is not ragnode's is
// looked up in OpenRAG's users table by Auth.External, which answers with
// the Caller it is. An OpenRAG admin is a ragnode admin. Any other user is
// limited to the partitions of its memberships, each with its OpenRAG
// role, which the route table's scope check resolves like a scoped
// token's single partition (auth_scope.go): viewer reads, editor indexes,
// owner also deletes the partition (routes whose scope is Owned). As in
// OpenRAG, a partition that does not exist yet may be named (an upload
// creates it, owned by the caller); one that exists without a membership
// is forbidden. Such users call the OpenRAG API only: ragnode's /v1 API,
// console and metrics are refused to them.

// OpenRAG's membership roles, weakest first.
const (
	RoleViewer = "viewer"
	RoleEditor = "editor"
	RoleOwner  = "owner"
)

// membershipRank orders OpenRAG's roles; 0 is no role.
func membershipRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleEditor:
		return 2
	case RoleOwner:
		return 3
	}
	return 0
}

// requiredRole is the OpenRAG role a route needs in the partitions it
// touches.
func requiredRole(rt Route) string {
	switch {
	case rt.Scope.owner:
		return RoleOwner
	case rt.Access >= AccessIndex:
		return RoleEditor
	}
	return RoleViewer
}

// authorizeExternal finishes authorize for a token ragnode does not know.
func (s *Server) authorizeExternal(w http.ResponseWriter, r *http.Request, need Access, secret string) *http.Request {
	a := s.auth
	c, ok, err := a.External(r.Context(), secret)
	switch {
	case err != nil:
		s.refuse(w, r, http.StatusServiceUnavailable, need, "", "cannot check the token against OpenRAG's users now: "+err.Error())
		return nil
	case !ok:
		s.writeUnauthorized(w, r)
		a.Log.Warn("request refused", "method", r.Method, "route", r.URL.Path, "token", "", "reason", "unknown or revoked token")
		return nil
	}
	if roleAccess(c.Role) < need {
		// OpenRAG's require_admin wording.
		s.refuse(w, r, http.StatusForbidden, need, c.TokenID, "Admin privileges required")
		return nil
	}
	if c.Role != "admin" && !openRAGPath(r.URL.Path) {
		s.refuse(w, r, http.StatusForbidden, need, c.TokenID, "OpenRAG users may call the OpenRAG API only")
		return nil
	}
	return withCaller(r, c)
}

// openRAGPath reports a path of the OpenRAG-compatible API.
func openRAGPath(p string) bool {
	for _, prefix := range []string{"/v1/", "/ui", "/debug/", "/metrics"} {
		if strings.HasPrefix(p, prefix) {
			return false
		}
	}
	return p != "/"
}

// InScope reports whether the request's caller may see partition p:
// always for an unlimited caller, else p must be its partition or one of
// its memberships. Listing routes filter with it.
func InScope(ctx context.Context, p string) bool {
	c, _ := CallerOf(ctx)
	switch {
	case c.Partitions != nil:
		_, ok := c.Partitions[p]
		return ok
	case c.Partition != "":
		return p == c.Partition
	}
	return true
}

// callerRole is the caller's OpenRAG role in partition p, "" for a
// caller without memberships.
func callerRole(ctx context.Context, p string) string {
	c, _ := CallerOf(ctx)
	return c.Partitions[p]
}

// partitionChecker is the optional ScopeResolver method that tells an
// existing partition from a new one.
type partitionChecker interface {
	PartitionExists(ctx context.Context, name string) (bool, error)
}

// membershipRefusal says why a caller limited to memberships may not make
// this request on partition p ("" when it may), in OpenRAG's words
// (ensure_partition_role). A resolver that cannot tell whether p exists
// makes an unknown partition forbidden.
func (s *Server) membershipRefusal(ctx context.Context, c Caller, rt Route, p string) (string, error) {
	role, ok := c.Partitions[p]
	if !ok {
		exists := true
		if pc, ok := s.resolver().(partitionChecker); ok {
			var err error
			if exists, err = pc.PartitionExists(ctx, p); err != nil {
				return "", err
			}
		}
		if exists {
			return "Access to partition '" + p + "' forbidden", nil
		}
		return "", nil
	}
	need := requiredRole(rt)
	if membershipRank(role) == 0 {
		return "Access to partition '" + p + "' forbidden", nil
	}
	if membershipRank(role) < membershipRank(need) {
		return strings.ToUpper(need[:1]) + need[1:] + " role required for partition '" + p + "'", nil
	}
	return "", nil
}
