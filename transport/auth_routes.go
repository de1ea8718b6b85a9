package transport

import (
	"net/http"
	"strings"
)

// Access is what a route needs from its caller.
type Access int

// Accesses, weakest first. A client role allows its own level and the
// ones below; AccessPeer is a different plane that no client role reaches.
const (
	AccessRead Access = iota + 1
	AccessIndex
	AccessAdmin
	// AccessPeer routes are node-to-node only: a node credential, never a
	// client token, whatever its role.
	AccessPeer
)

func (a Access) String() string {
	switch a {
	case AccessRead:
		return "read"
	case AccessIndex:
		return "index"
	case AccessAdmin:
		return "admin"
	case AccessPeer:
		return "peer"
	}
	return "unknown"
}

// roleAccess is the level a token's role grants.
func roleAccess(role string) Access {
	switch role {
	case "read":
		return AccessRead
	case "index":
		return AccessIndex
	case "admin":
		return AccessAdmin
	}
	return 0
}

// routeRule maps requests to the access they need. method "" is any
// method; a path ending in "/" matches as a prefix, any other exactly.
type routeRule struct {
	method string
	path   string
	access Access
}

// routeAccess is the one route → access table, read top to bottom; the
// first rule that matches decides. A route no rule names needs admin, so a
// route added without a row here fails closed.
var routeAccess = []routeRule{
	// The peer plane: Raft-adjacent calls, blob and chunk copies, local
	// search fan-out, status probes of autopilot.
	{"", "/v1/internal/", AccessPeer},
	{"", "/v1/blobs", AccessPeer},
	{"", "/v1/blobs/", AccessPeer},

	// read: search, status, members, tasks, extract, console (read-only).
	{http.MethodGet, "/v1/status", AccessRead},
	{http.MethodGet, "/v1/members", AccessRead},
	{http.MethodGet, "/v1/tasks", AccessRead},
	{http.MethodGet, "/v1/tasks/", AccessRead},
	{http.MethodPost, "/v1/search", AccessRead},
	{http.MethodGet, "/v1/console/", AccessRead},
	{http.MethodGet, "/metrics", AccessRead},
	{http.MethodGet, "/search", AccessRead},
	{http.MethodGet, "/search/", AccessRead},
	{http.MethodGet, "/extract/", AccessRead},
	{http.MethodGet, "/indexer/task/", AccessRead},
	{http.MethodGet, "/indexer/supported/types", AccessRead},
	{http.MethodGet, "/queue/", AccessRead},
	{http.MethodGet, "/partition", AccessRead},
	{http.MethodGet, "/partition/", AccessRead},
	{http.MethodGet, "/openapi.json", AccessRead},
	// Served without any token (isPublic); read if ever asked.
	{http.MethodGet, "/health_check", AccessRead},
	{http.MethodGet, "/version", AccessRead},

	// index: + submit, delete, cancel, partitions.
	{http.MethodPost, "/v1/files", AccessIndex},
	{http.MethodPost, "/v1/files/batch", AccessIndex},
	{http.MethodPost, "/v1/tasks/", AccessIndex}, // /v1/tasks/{id}/cancel
	{http.MethodPost, "/v1/console/tasks/", AccessIndex},
	{"", "/indexer/partition/", AccessIndex},
	{http.MethodDelete, "/indexer/task/", AccessIndex},
	{http.MethodDelete, "/partition/", AccessIndex},
	{http.MethodPost, "/partition/", AccessIndex},  // create a partition
	{http.MethodPatch, "/partition/", AccessIndex}, // its settings

	// admin: + drain, leave, tokens, keyring, profiles (and anything else).
	{http.MethodPost, "/v1/drain", AccessAdmin},
	{http.MethodPost, "/v1/leave", AccessAdmin},
	{"", "/v1/tokens", AccessAdmin},
	{"", "/v1/tokens/", AccessAdmin},
	{"", "/v1/keyring", AccessAdmin},
	{"", "/v1/keyring/", AccessAdmin},
	{"", "/debug/pprof/", AccessAdmin},
}

// RouteAccess returns the access a request needs.
func RouteAccess(method, path string) Access {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	for _, r := range routeAccess {
		if r.method != "" && r.method != method {
			continue
		}
		if path == r.path || strings.HasSuffix(r.path, "/") && strings.HasPrefix(path, r.path) {
			return r.access
		}
	}
	return AccessAdmin
}

// partitionFree are the routes a partition-scoped token may call without
// naming its partition: they reveal no partition's data.
func partitionFree(method, path string) bool {
	switch path {
	case "/v1/status", "/v1/members", "/indexer/supported/types", "/queue/info":
		return method == http.MethodGet || method == http.MethodHead
	}
	return false
}

// requestPartitions returns the partitions a request names (path or
// query), and whether it names any. A request naming none is refused to a
// partition-scoped token unless partitionFree says it reveals no data.
func requestPartitions(r *http.Request) []string {
	p := r.URL.Path
	var out []string
	for _, prefix := range []string{"/indexer/partition/", "/partition/check-file/", "/search/partition/", "/partition/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			seg, _, _ := strings.Cut(rest, "/")
			if seg != "" {
				out = append(out, seg)
			}
			break
		}
	}
	q := r.URL.Query()
	for _, k := range []string{"partition", "partitions"} {
		for _, v := range q[k] {
			out = append(out, strings.Split(v, ",")...)
		}
	}
	return out
}
