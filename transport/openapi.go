package transport

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// GET /openapi.json: an OpenAPI 3.1 description of the RAGondin/openrag
// API, built from compatRoutes (openapi_routes.go), the table kept next to
// the registrations and checked against them by a test.

// routeDoc describes one registered route.
type routeDoc struct {
	Pattern   string // the ServeMux pattern, exactly as registered
	Path      string // the OpenAPI path when the pattern cannot say it
	Summary   string
	Source    string // the upstream handler (R: RAGondin 2025, O: openrag 2026)
	Query     []paramDoc
	Form      []paramDoc
	Body      string
	Responses map[int]string
}

type paramDoc struct {
	Name, Type string
	Required   bool
}

var wildcard = regexp.MustCompile(`\{([A-Za-z_]+)(\.\.\.)?\}`)

// openAPIPath turns a mux pattern's path into an OpenAPI path.
func (d routeDoc) method() string { m, _, _ := strings.Cut(d.Pattern, " "); return m }

func (d routeDoc) path() string {
	if d.Path != "" {
		return d.Path
	}
	_, p, _ := strings.Cut(d.Pattern, " ")
	return wildcard.ReplaceAllString(strings.ReplaceAll(p, "{$}", ""), "{$1}")
}

func openAPIDoc(version string) map[string]any {
	paths := map[string]map[string]any{}
	for _, d := range compatRoutes {
		var params []map[string]any
		for _, m := range wildcard.FindAllStringSubmatch(d.path(), -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range d.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "required": q.Required, "description": q.Type})
		}
		op := map[string]any{"summary": d.Summary, "description": "Upstream: " + d.Source,
			"operationId": strings.ToLower(d.method()) + strings.NewReplacer("/", "_", "{", "", "}", "").Replace(d.path())}
		// The route table's row: the role a token needs and where the
		// partitions it touches come from (a partition-scoped token is
		// served only when all of them are its own).
		rt := routeFor(d.Pattern)
		op["x-ragnode-role"] = rt.Access.String()
		op["x-ragnode-partitions"] = rt.Scope.Describe()
		if len(params) > 0 {
			op["parameters"] = params
		}
		if len(d.Form) > 0 {
			props := map[string]any{}
			var req []string
			for _, f := range d.Form {
				props[f.Name] = map[string]any{"description": f.Type}
				if f.Required {
					req = append(req, f.Name)
				}
			}
			schema := map[string]any{"type": "object", "properties": props}
			if len(req) > 0 {
				schema["required"] = req
			}
			op["requestBody"] = map[string]any{"content": map[string]any{"multipart/form-data": map[string]any{"schema": schema},
				"application/x-www-form-urlencoded": map[string]any{"schema": schema}}}
		}
		if d.Body != "" {
			op["requestBody"] = map[string]any{"required": true, "description": d.Body,
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		}
		codes := make([]int, 0, len(d.Responses))
		for c := range d.Responses {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		resp := map[string]any{}
		for _, c := range codes {
			resp[strconv.Itoa(c)] = map[string]any{"description": d.Responses[c]}
		}
		op["responses"] = resp
		if paths[d.path()] == nil {
			paths[d.path()] = map[string]any{}
		}
		paths[d.path()][strings.ToLower(d.method())] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "ragnode RAGondin/openrag-compatible API", "version": version,
			"description": "Served by every ragnode node; see README \"RAGondin API reference\"."},
		"components": map[string]any{"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
		"security":   []any{map[string]any{"bearer": []any{}}},
		"paths":      paths,
	}
}

func (c *compat) openAPI(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, openAPIDoc(c.b.CompatInfo().Version))
}
