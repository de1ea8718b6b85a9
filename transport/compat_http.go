package transport

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Cross-origin requests, authentication failures and FastAPI-style
// validation errors for the RAGondin-compatible API.

// SetCORSOrigins lets browsers on these origins call the API ("*" for any).
// Preflight requests (OPTIONS with Access-Control-Request-Method) are
// answered before the token is checked, as Starlette's CORSMiddleware runs
// before openrag's auth; none configured (the default) means no CORS
// headers at all.
func (s *Server) SetCORSOrigins(origins []string) {
	s.cors = nil
	for _, o := range origins {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			s.cors = append(s.cors, o)
		}
	}
}

const corsMethods = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"

// applyCORS sets the CORS headers of an allowed origin and reports whether
// it answered the request itself (a preflight). The origin is echoed, with
// Access-Control-Allow-Credentials, even under "*" (Starlette's behaviour
// with allow_credentials): openrag's UIs may fetch with credentials
// "include", which a literal "*" would fail. The API authenticates by
// bearer header, never by cookie, so no ambient credential rides along.
func (s *Server) applyCORS(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(s.cors) == 0 || origin == "" {
		return false
	}
	allowed := slices.Contains(s.cors, "*") || slices.Contains(s.cors, origin)
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	h := w.Header()
	h.Add("Vary", "Origin")
	if !allowed {
		if preflight {
			// Starlette's answer to a preflight from an origin it refuses.
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("Disallowed CORS origin"))
			return true
		}
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if !preflight {
		return false
	}
	h.Set("Access-Control-Allow-Methods", corsMethods)
	if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
		h.Set("Access-Control-Allow-Headers", rh)
	}
	h.Set("Access-Control-Max-Age", "600")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK"))
	return true
}

// isPublic reports whether a request may skip the token.
func (s *Server) isPublic(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && s.public[r.URL.Path]
}

// writeUnauthorized answers a request without a valid token: FastAPI's
// {"detail"} on the compatible routes, the /v1 ErrorBody elsewhere.
func (s *Server) writeUnauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ragnode"`)
	if s.compat && !strings.HasPrefix(r.URL.Path, "/v1/") && !strings.HasPrefix(r.URL.Path, "/debug/") {
		if r.Header.Get("Authorization") == "" {
			writeDetail(w, http.StatusUnauthorized, "Not authenticated")
		} else {
			writeDetail(w, http.StatusUnauthorized, "Invalid token")
		}
		return
	}
	WriteJSON(w, http.StatusUnauthorized, ErrorBody{Error: "missing or invalid bearer token"})
}

// fieldError is one entry of FastAPI's (pydantic v2's) validation answer.
type fieldError struct {
	Type  string         `json:"type"`
	Loc   []string       `json:"loc"`
	Msg   string         `json:"msg"`
	Input any            `json:"input"`
	Ctx   map[string]any `json:"ctx,omitempty"`
}

// writeValidation answers 422 {"detail": [errors]}.
func writeValidation(w http.ResponseWriter, errs ...fieldError) {
	WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": errs})
}

func fieldMissing(where, name string) fieldError {
	return fieldError{Type: "missing", Loc: []string{where, name}, Msg: "Field required", Input: nil}
}

// queryInt reads an optional integer query parameter with FastAPI's
// checks: not an integer, or below min, is a 422 entry.
func queryInt(r *http.Request, name string, def, min int) (int, *fieldError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &fieldError{Type: "int_parsing", Loc: []string{"query", name},
			Msg: "Input should be a valid integer, unable to parse string as an integer", Input: v}
	}
	if n < min {
		return 0, &fieldError{Type: "greater_than_equal", Loc: []string{"query", name},
			Msg: "Input should be greater than or equal to " + strconv.Itoa(min), Input: v, Ctx: map[string]any{"ge": min}}
	}
	return n, nil
}

// queryFloat01 reads an optional number in [0, 1].
func queryFloat01(r *http.Request, name string) (float64, bool, *fieldError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, false, &fieldError{Type: "float_parsing", Loc: []string{"query", name},
			Msg: "Input should be a valid number, unable to parse string as a number", Input: v}
	}
	if f < 0 {
		return 0, false, &fieldError{Type: "greater_than_equal", Loc: []string{"query", name},
			Msg: "Input should be greater than or equal to 0", Input: v, Ctx: map[string]any{"ge": 0}}
	}
	if f > 1 {
		return 0, false, &fieldError{Type: "less_than_equal", Loc: []string{"query", name},
			Msg: "Input should be less than or equal to 1", Input: v, Ctx: map[string]any{"le": 1}}
	}
	return f, true, nil
}

// queryBool reads an optional boolean as pydantic does (true/false, 1/0,
// yes/no, on/off, t/f, y/n, case-insensitive).
func queryBool(r *http.Request, name string, def bool) (bool, *fieldError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "1", "true", "t", "yes", "y", "on":
		return true, nil
	case "0", "false", "f", "no", "n", "off":
		return false, nil
	}
	return false, &fieldError{Type: "bool_parsing", Loc: []string{"query", name},
		Msg: "Input should be a valid boolean, unable to interpret input", Input: v}
}
