package transport

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// registeredPatterns reads compat.go and returns every pattern MountCompat
// passes to s.handleFunc, string constants and concatenations resolved.
func registeredPatterns(t *testing.T) []string {
	t.Helper()
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, "compat.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mount *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "MountCompat" {
			mount = fd
		}
	}
	if mount == nil {
		t.Fatal("MountCompat not found in compat.go")
	}
	consts := map[string]string{}
	var eval func(e ast.Expr) string
	eval = func(e ast.Expr) string {
		switch x := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(x.Value)
			if err != nil {
				t.Fatal(err)
			}
			return s
		case *ast.Ident:
			v, ok := consts[x.Name]
			if !ok {
				t.Fatalf("pattern uses %s, not a constant of MountCompat", x.Name)
			}
			return v
		case *ast.BinaryExpr:
			return eval(x.X) + eval(x.Y)
		}
		t.Fatalf("pattern expression %T the test cannot read", e)
		return ""
	}
	var out []string
	ast.Inspect(mount.Body, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.GenDecl:
			for _, sp := range x.Specs {
				if vs, ok := sp.(*ast.ValueSpec); ok && x.Tok == token.CONST {
					for i, name := range vs.Names {
						consts[name.Name] = eval(vs.Values[i])
					}
				}
			}
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "handleFunc" || sel.Sel.Name == "handle") {
				out = append(out, eval(x.Args[0]))
			}
		}
		return true
	})
	sort.Strings(out)
	return out
}

// A route cannot exist without its description, nor a description
// without its route.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	reg := registeredPatterns(t)
	var doc []string
	seen := map[string]bool{}
	for _, d := range compatRoutes {
		// One pattern may serve several documented paths (compat_related.go).
		if seen[d.Pattern+" "+d.path()] {
			t.Errorf("%s described twice", d.Pattern)
		}
		if !slices.Contains(doc, d.Pattern) {
			doc = append(doc, d.Pattern)
		}
		seen[d.Pattern+" "+d.path()] = true
		if d.Summary == "" || d.Source == "" || len(d.Responses) == 0 {
			t.Errorf("%s: incomplete description %+v", d.Pattern, d)
		}
	}
	sort.Strings(doc)
	if strings.Join(reg, "\n") != strings.Join(doc, "\n") {
		t.Fatalf("registered routes and openapi_routes.go differ:\nregistered:\n%s\n\ndescribed:\n%s", strings.Join(reg, "\n"), strings.Join(doc, "\n"))
	}
	if len(reg) < 30 {
		t.Fatalf("only %d routes read from compat.go", len(reg))
	}
}

// GET /openapi.json serves the description, and each described path
// reaches its handler on the live server (never the mux's own 404/405).
func TestOpenAPIServed(t *testing.T) {
	e := newCompatEnv(t)
	doc := decode(t, e.expect("GET", "/openapi.json", http.StatusOK, ""))
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	ops := 0
	for p, v := range paths {
		for m := range v.(map[string]any) {
			ops++
			concrete := wildcard.ReplaceAllString(p, "x")
			req, _ := http.NewRequest(strings.ToUpper(m), e.srv.URL+concrete, nil)
			req.Header.Set("Authorization", "Bearer "+compatToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The mux's own answers are FastAPI's bare ones (server.go).
			if resp.StatusCode == http.StatusMethodNotAllowed || (resp.StatusCode == http.StatusNotFound && strings.TrimSpace(string(b)) == `{"detail":"Not Found"}`) {
				t.Errorf("%s %s: %d from the mux, no handler", m, concrete, resp.StatusCode)
			}
		}
	}
	if ops != len(compatRoutes) {
		t.Fatalf("%d operations served, %d described", ops, len(compatRoutes))
	}
	anc := paths["/partition/{partition}/file/{file_id}/ancestors"].(map[string]any)["get"].(map[string]any)
	if anc["summary"] == "" || len(anc["parameters"].([]any)) != 3 {
		t.Fatalf("ancestors operation %v", anc)
	}
}

// The description carries each route's role and partition scope from the
// route table, the same rows the check reads.
func TestOpenAPIShowsTheRouteTable(t *testing.T) {
	doc := openAPIDoc("test")
	paths := doc["paths"].(map[string]map[string]any)
	copyOp := paths["/indexer/partition/{partition}/file/{file_id}/copy"]["post"].(map[string]any)
	if copyOp["x-ragnode-role"] != "index" || !strings.Contains(copyOp["x-ragnode-partitions"].(string), "form field source_partition") {
		t.Fatalf("copy: %v %v", copyOp["x-ragnode-role"], copyOp["x-ragnode-partitions"])
	}
	extract := paths["/extract/{extract_id}"]["get"].(map[string]any)
	if extract["x-ragnode-partitions"] != "the chunk {extract_id}" {
		t.Fatalf("extract: %v", extract["x-ragnode-partitions"])
	}
	for p, ops := range paths {
		for m, op := range ops {
			if op.(map[string]any)["x-ragnode-partitions"] == "" {
				t.Errorf("%s %s: no partition scope", m, p)
			}
		}
	}
}
