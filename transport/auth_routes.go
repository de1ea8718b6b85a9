package transport

import (
	"fmt"
	"net/http"
	"slices"
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

// Route is one row of the route table: a ServeMux pattern, the access it
// needs and where the partitions it touches come from.
type Route struct {
	Pattern string
	Access  Access
	Scope   Scope
}

// routeTable is every route the server can mount, keyed by the exact
// ServeMux pattern it is registered under. Server.handle refuses to mount
// a pattern missing here, so a new route cannot forget its access or its
// scope; a request that matches no pattern needs admin and is refused to
// any partition-scoped token (fail closed). The OpenAPI description reads
// the same rows.
var routeTable = func() map[string]Route {
	const (
		partition = "partition"
		task      = "task_id"
	)
	rows := []Route{
		// The peer plane: Raft-adjacent calls, blob and chunk copies, local
		// search fan-out, status probes of autopilot.
		{"GET /v1/internal/raft-stats", AccessPeer, Scope{}},
		{"POST /v1/internal/apply", AccessPeer, Scope{}},
		{"POST /v1/internal/remove-server", AccessPeer, Scope{}},
		{"POST /v1/internal/replicate/{hash}", AccessPeer, Scope{}},
		{"POST /v1/internal/search-local", AccessPeer, Scope{}},
		{"POST /v1/internal/chunks", AccessPeer, Scope{}},
		{"POST /v1/internal/chunks/metadata", AccessPeer, Scope{}},
		{"POST /v1/internal/chunks/delete", AccessPeer, Scope{}},
		{"POST /v1/internal/chunks/repair", AccessPeer, Scope{}},
		{"GET /v1/internal/chunk-ids", AccessPeer, Scope{}},
		{"GET /v1/internal/chunk-records", AccessPeer, Scope{}},
		{"PUT /v1/blobs", AccessPeer, Scope{}},
		{"GET /v1/blobs/{hash}", AccessPeer, Scope{}},
		{"PUT /v1/blobs/{hash}", AccessPeer, Scope{}},
		// A follower hands a client's snapshot restore to the leader.
		{"PUT /v1/internal/snapshot", AccessPeer, Scope{}},

		// The /v1 API.
		{"GET /v1/status", AccessRead, Free()},
		{"GET /v1/members", AccessRead, Free()},
		{"GET /v1/tasks", AccessRead, Listing(InQuery(partition))},
		{"GET /v1/tasks/{id}", AccessRead, Touches(TaskIn("id"))},
		{"POST /v1/tasks/{id}/cancel", AccessIndex, Touches(TaskIn("id"))},
		{"POST /v1/search", AccessRead, Touches(InJSONList("partitions"))},
		{"POST /v1/files", AccessIndex, Touches(InQuery(partition))},
		{"POST /v1/files/batch", AccessIndex, Touches(InQuery(partition))},
		{"POST /v1/drain", AccessAdmin, Scope{}},
		{"POST /v1/leave", AccessAdmin, Scope{}},
		{"POST /v1/tokens", AccessAdmin, Scope{}},
		{"GET /v1/tokens", AccessAdmin, Scope{}},
		{"DELETE /v1/tokens/{id}", AccessAdmin, Scope{}},
		{"GET /v1/keyring", AccessAdmin, Scope{}},
		{"POST /v1/keyring/{op}", AccessAdmin, Scope{}},
		{"GET /v1/snapshot", AccessAdmin, Scope{}},
		{"PUT /v1/snapshot", AccessAdmin, Scope{}},
		{"/debug/pprof/", AccessAdmin, Scope{}},
		{"/debug/pprof/profile", AccessAdmin, Scope{}},
		{"/debug/pprof/trace", AccessAdmin, Scope{}},

		// The console. Cluster-wide views (summary, events, series,
		// metrics) are not split by partition, so a scoped token gets none.
		{"GET /ui/", AccessRead, Free()},
		{"GET /ui", AccessRead, Free()},
		{"GET /{$}", AccessRead, Free()},
		{"GET /metrics", AccessRead, Scope{}},
		{"GET /v1/console/whoami", AccessRead, Free()},
		{"GET /v1/console/summary", AccessRead, Scope{}},
		{"GET /v1/console/tasks", AccessRead, Listing()},
		{"GET /v1/console/tasks/{id}", AccessRead, Touches(TaskIn("id"))},
		{"POST /v1/console/tasks/{id}/retry", AccessIndex, Touches(TaskIn("id"))},
		{"GET /v1/console/events", AccessRead, Scope{}},
		{"GET /v1/console/series", AccessRead, Scope{}},

		// The RAGondin/openrag API (compat.go).
		{"POST /indexer/partition/{partition}/file/{file_id}", AccessIndex, Touches(InPath(partition))},
		{"PUT /indexer/partition/{partition}/file/{file_id}", AccessIndex, Touches(InPath(partition))},
		// A metadata "partition" key moves the file: both ends are touched.
		{"PATCH /indexer/partition/{partition}/file/{file_id}", AccessIndex, Touches(InPath(partition), InFormJSON("metadata", partition))},
		{"DELETE /indexer/partition/{partition}/file/{file_id}", AccessIndex, Touches(InPath(partition))},
		{"POST /indexer/partition/{partition}/file/{file_id}/copy", AccessIndex, Touches(InPath(partition), InForm("source_partition"))},
		{"GET /indexer/supported/types", AccessRead, Free()},
		{"GET /indexer/task/{task_id}", AccessRead, Touches(TaskIn(task))},
		{"DELETE /indexer/task/{task_id}", AccessIndex, Touches(TaskIn(task))},
		{"GET /indexer/task/{task_id}/error", AccessRead, Touches(TaskIn(task))},
		{"GET /indexer/task/{task_id}/logs", AccessRead, Touches(TaskIn(task))},
		{"GET /partition", AccessRead, Listing()},
		{"GET /partition/{$}", AccessRead, Listing()},
		{"GET /partition/{partition}", AccessRead, Touches(InPath(partition))},
		{"GET /partition/{partition}/{$}", AccessRead, Touches(InPath(partition))},
		{"DELETE /partition/{partition}", AccessIndex, Touches(InPath(partition)).Owned()},
		{"DELETE /partition/{partition}/{$}", AccessIndex, Touches(InPath(partition)).Owned()},
		{"GET /partition/check-file/{partition}/file/{file_id}", AccessRead, Touches(InPath(partition))},
		{"GET /partition/{partition}/file/{file_id}", AccessRead, Touches(InPath(partition))},
		{"GET /partition/{partition}/chunks", AccessRead, Touches(InPath(partition))},
		{"GET /extract/{extract_id}", AccessRead, Touches(ChunkIn("extract_id"))},
		{"POST /partition/{partition}", AccessIndex, Touches(InPath(partition))},
		{"PATCH /partition/{partition}", AccessIndex, Touches(InPath(partition)).Owned()},
		{"GET /partition/{partition}/config", AccessRead, Touches(InPath(partition))},
		// relationships/{rid...} and file/{id}/ancestors (compat_related.go).
		{"GET /partition/{partition}/{kind}/{rest...}", AccessRead, Touches(InPath(partition))},
		// A search that names no partition searches all of them.
		{"GET /search", AccessRead, Touches(InQuery("partitions"))},
		{"GET /search/{$}", AccessRead, Touches(InQuery("partitions"))},
		{"GET /search/partition/{partition}", AccessRead, Touches(InPath(partition))},
		{"GET /search/partition/{partition}/file/{file_id}", AccessRead, Touches(InPath(partition))},
		{"GET /health_check", AccessRead, Free()},
		{"GET /version", AccessRead, Free()},
		{"GET /queue/info", AccessRead, Free()},
		{"GET /queue/tasks", AccessRead, Listing()},
		{"GET /openapi.json", AccessRead, Free()},
		// The caller's own account (compat_users.go).
		{"GET /users/info", AccessRead, Free()},
		{"GET /actors/{$}", AccessAdmin, Scope{}},
		{"POST /actors/{actor_name}/restart", AccessAdmin, Scope{}},
	}
	m := make(map[string]Route, len(rows))
	for _, r := range rows {
		if _, dup := m[r.Pattern]; dup {
			panic("transport: route table names " + r.Pattern + " twice")
		}
		m[r.Pattern] = r
	}
	return m
}()

// routeFor is the table row of the pattern a request matched; a pattern
// the table lacks (the mux's own 404 and 405 answers among them) needs
// admin and touches every partition.
func routeFor(pattern string) Route {
	if r, ok := routeTable[pattern]; ok {
		return r
	}
	return Route{Pattern: pattern, Access: AccessAdmin}
}

// handle mounts h under pattern with its scope check in front. Mounting a
// pattern the route table lacks is a programming error, caught by any test
// that builds a server.
func (s *Server) handle(pattern string, h http.Handler) {
	rt, ok := routeTable[pattern]
	if !ok {
		panic(fmt.Sprintf("transport: route %q is not in the route table (auth_routes.go)", pattern))
	}
	s.mux.Handle(pattern, s.scoped(rt, h))
}

func (s *Server) handleFunc(pattern string, h http.HandlerFunc) { s.handle(pattern, h) }

// patternMethod splits a ServeMux pattern into method ("" for any) and path.
func patternMethod(pattern string) (method, path string) {
	if m, p, ok := strings.Cut(pattern, " "); ok {
		return m, p
	}
	return "", pattern
}

// Routes is the route table, sorted by pattern: what tests iterate and
// the OpenAPI description reads.
func Routes() []Route {
	out := make([]Route, 0, len(routeTable))
	for _, r := range routeTable {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Pattern, b.Pattern) })
	return out
}

// Method and Path split the route's pattern ("" method: any).
func (r Route) Method() string { m, _ := patternMethod(r.Pattern); return m }

// Path is the pattern's path part, wildcards as registered.
func (r Route) Path() string { _, p := patternMethod(r.Pattern); return p }
