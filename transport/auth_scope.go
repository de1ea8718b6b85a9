package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/ragnode/ragnode/errs"
)

// Partition scope, decided by what a request touches.
//
// Guarantee: a partition-scoped token is served only when every partition
// the request touches is its own. What a request touches is resolved by
// the route's row in the route table, from the values the handler itself
// will read: path values after the router's decoding (so "pa%2Fhidden" is
// the partition "pa/hidden", not "pa"), query values, form fields, the
// JSON body decoded as the handler decodes it, and the partition of the
// task or chunk the request names, looked up in the ledger and the chunk
// stores. A route that names no partition touches all of them and is
// refused; a listing route is served with the caller's partition in its
// context and filters to it (ScopeOf, InScope). A caller limited to a set
// of partitions (an OpenRAG user's memberships) is checked the same way,
// each touched partition against its role there (auth_external.go).

// Scope says where a route finds the partitions it touches. The zero
// Scope touches every partition: a scoped token is refused.
type Scope struct {
	free    bool // reveals no partition's data
	listing bool // the handler filters to ScopeOf
	// owner: an OpenRAG user needs the owner role in the partitions
	// touched, not only editor (auth_external.go).
	owner   bool
	sources []Source
}

// Free is the scope of a route that reveals no partition's data.
func Free() Scope { return Scope{free: true} }

// Touches is the scope of a route that touches the partitions its sources
// resolve to; none resolved means all.
func Touches(src ...Source) Scope { return Scope{sources: src} }

// Listing is the scope of a route that lists across partitions and
// filters to the caller's; a source it names (a query filter) must still
// be the caller's partition when present.
func Listing(src ...Source) Scope { return Scope{listing: true, sources: src} }

// Owned is sc for a route that OpenRAG keeps to a partition's owners.
func (sc Scope) Owned() Scope { sc.owner = true; return sc }

// Describe says in words where the scope's partitions come from, for the
// OpenAPI description.
func (sc Scope) Describe() string {
	d := sc.describe()
	if sc.owner {
		d += "; an OpenRAG user needs the owner role"
	}
	return d
}

func (sc Scope) describe() string {
	switch {
	case sc.free:
		return "none (reveals no partition's data)"
	case sc.listing && len(sc.sources) == 0:
		return "listing, filtered to a scoped token's partition"
	case len(sc.sources) == 0:
		return "all partitions (refused to a partition-scoped token)"
	}
	var parts []string
	for _, s := range sc.sources {
		parts = append(parts, s.doc)
	}
	d := strings.Join(parts, " and ")
	if sc.listing {
		d = "listing, filtered to a scoped token's partition; " + d
	}
	return d
}

// Source is one place a request names a partition.
type Source struct {
	doc     string
	resolve func(r *http.Request, res ScopeResolver) ([]string, error)
}

// ScopeResolver finds the partition of an object a request names by ID.
// Errors are the backend's (a NotFound kind answers 404).
type ScopeResolver interface {
	TaskPartition(ctx context.Context, id string) (string, error)
	ChunkPartition(ctx context.Context, id string) (string, error)
}

// InPath is the path value name, as the router decoded it.
func InPath(name string) Source {
	return Source{doc: "path {" + name + "}", resolve: func(r *http.Request, _ ScopeResolver) ([]string, error) {
		return []string{r.PathValue(name)}, nil
	}}
}

// InQuery is every value of the query parameter name.
func InQuery(name string) Source {
	return Source{doc: "query " + name, resolve: func(r *http.Request, _ ScopeResolver) ([]string, error) {
		return r.URL.Query()[name], nil
	}}
}

// InForm is the form field name (urlencoded or multipart).
func InForm(name string) Source {
	return Source{doc: "form field " + name, resolve: func(r *http.Request, _ ScopeResolver) ([]string, error) {
		if err := parseScopeForm(r); err != nil {
			return nil, err
		}
		return r.PostForm[name], nil
	}}
}

// InFormJSON is the string under key in the JSON object held by form field
// field (openrag's metadata field: a "partition" key moves a file).
func InFormJSON(field, key string) Source {
	return Source{doc: "key " + key + " of form field " + field, resolve: func(r *http.Request, _ ScopeResolver) ([]string, error) {
		if err := parseScopeForm(r); err != nil {
			return nil, err
		}
		var out []string
		for _, v := range r.PostForm[field] {
			var m map[string]any
			if v == "" || json.Unmarshal([]byte(v), &m) != nil {
				continue // the handler refuses it as malformed
			}
			if p, ok := m[key]; ok {
				s, _ := p.(string)
				out = append(out, s) // a non-string names no partition the token owns
			}
		}
		return out, nil
	}}
}

// InJSONList is the list of strings under field in a JSON request body,
// decoded as encoding/json decodes it into the handler's struct (field
// names match case-insensitively; the last duplicate wins). The body is
// read once, bounded, and put back for the handler.
func InJSONList(field string) Source {
	return Source{doc: "JSON body " + field, resolve: func(r *http.Request, _ ScopeResolver) ([]string, error) {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxScopedBody+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxScopedBody {
			return nil, invalidf("request body exceeds %d bytes", maxScopedBody)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		var out []string
		if err := decodeJSONField(b, field, &out); err != nil {
			return nil, invalidf("decode request body: %v", err)
		}
		return out, nil
	}}
}

// TaskIn is the partition of the task whose ID is the path value name.
func TaskIn(name string) Source {
	return Source{doc: "the task {" + name + "}", resolve: func(r *http.Request, res ScopeResolver) ([]string, error) {
		p, err := res.TaskPartition(r.Context(), r.PathValue(name))
		return []string{p}, err
	}}
}

// ChunkIn is the partition of the chunk whose ID is the path value name.
func ChunkIn(name string) Source {
	return Source{doc: "the chunk {" + name + "}", resolve: func(r *http.Request, res ScopeResolver) ([]string, error) {
		p, err := res.ChunkPartition(r.Context(), r.PathValue(name))
		return []string{p}, err
	}}
}

// maxScopedBody bounds how much of a JSON body is read to find the
// partitions it names.
const maxScopedBody = 1 << 20

// errScopeForm marks a form the scope check could not parse.
var errScopeForm = errors.New("malformed form body")

// parseScopeForm parses a small form once; the handler's own parse then
// finds it done.
func parseScopeForm(r *http.Request) error {
	if r.PostForm != nil {
		return nil
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 2*maxCompatMetadata)
	if err := r.ParseMultipartForm(maxCompatMetadata); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return invalidf("%v: %v", errScopeForm, err)
	}
	return nil
}

// ScopeOf is the partition a request's caller is limited to, "" for none.
// Listing routes filter their answer to it.
func ScopeOf(ctx context.Context) string {
	c, _ := CallerOf(ctx)
	return c.Partition
}

// scoped puts the route's partition check in front of h.
func (s *Server) scoped(rt Route, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := CallerOf(r.Context())
		own := c.Partition
		if (own == "" && c.Partitions == nil) || rt.Scope.free {
			h.ServeHTTP(w, r)
			return
		}
		limit := "partition " + own
		if c.Partitions != nil {
			limit = "the partitions it is a member of"
		}
		touched, err := s.touched(r, rt.Scope)
		if err != nil {
			s.refuse(w, r, StatusOf(err), rt.Access, c.TokenID, err.Error())
			return
		}
		if len(touched) == 0 && !rt.Scope.listing {
			s.refuse(w, r, http.StatusForbidden, rt.Access, c.TokenID,
				"token is limited to "+limit+"; this request names no partition, which means all of them")
			return
		}
		for _, p := range touched {
			if c.Partitions != nil {
				why, err := s.membershipRefusal(r.Context(), c, rt, p)
				if err != nil {
					s.refuse(w, r, StatusOf(err), rt.Access, c.TokenID, err.Error())
					return
				}
				if why != "" {
					s.refuse(w, r, http.StatusForbidden, rt.Access, c.TokenID, why)
					return
				}
				continue
			}
			if p != own {
				s.refuse(w, r, http.StatusForbidden, rt.Access, c.TokenID,
					"token is limited to partition "+own+"; this request touches partition "+quotePartition(p))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// touched resolves every source of sc; values are deduplicated, empty
// ones dropped (the handlers treat an empty name as none).
func (s *Server) touched(r *http.Request, sc Scope) ([]string, error) {
	if !sc.listing && len(sc.sources) == 0 {
		return nil, nil
	}
	var out []string
	for _, src := range sc.sources {
		vs, err := src.resolve(r, s.resolver())
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

func (s *Server) resolver() ScopeResolver {
	if s.auth != nil && s.auth.Resolve != nil {
		return s.auth.Resolve
	}
	return noResolver{}
}

// noResolver knows no object: a scoped request naming one is refused.
type noResolver struct{}

func (noResolver) TaskPartition(context.Context, string) (string, error) {
	return "", forbiddenf("this server cannot tell which partition a task belongs to")
}

func (noResolver) ChunkPartition(context.Context, string) (string, error) {
	return "", forbiddenf("this server cannot tell which partition a chunk belongs to")
}

// quotePartition quotes a partition name that holds a slash, a quote or
// control bytes, so a refusal shows exactly which name it refused.
func quotePartition(p string) string {
	if strings.ContainsAny(p, "/\\\"") || strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		b, _ := json.Marshal(p)
		return string(b)
	}
	return p
}

func forbiddenf(format string, args ...any) error {
	return errs.Errorf(errs.Forbidden, format, args...)
}

// decodeJSONField decodes the one field of body that a struct with the
// json tag field would receive, so the check reads what the handler's own
// decode reads.
func decodeJSONField(body []byte, field string, out *[]string) error {
	t := reflect.StructOf([]reflect.StructField{{
		Name: "F", Type: reflect.TypeFor[[]string](), Tag: reflect.StructTag(`json:"` + field + `"`),
	}})
	v := reflect.New(t)
	if err := json.Unmarshal(body, v.Interface()); err != nil {
		return err
	}
	*out = v.Elem().Field(0).Interface().([]string)
	return nil
}
