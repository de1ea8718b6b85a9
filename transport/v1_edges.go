package transport

import (
	"fmt"
	"net/http"
	"strings"
)

// The mux's own answers on the /v1 API, for a path no route matches (404)
// or a method its routes do not take (405), are plain text; every other
// /v1 answer is an ErrorBody, which is what the CLI and scripts decode. So
// they are rewritten as one: {"error": "GET is not allowed on /v1/search;
// use POST"} with the mux's status and Allow header. compat_notfound.go
// does the same for the RAGondin routes in FastAPI's shape.

// v1Edges returns w, or for a /v1 request no route will serve, a writer
// that turns the mux's text answer into an ErrorBody.
func (s *Server) v1Edges(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		return w
	}
	if _, pattern := s.mux.Handler(r); pattern != "" {
		return w
	}
	return &v1EdgeWriter{ResponseWriter: w, method: r.Method, path: r.URL.Path}
}

type v1EdgeWriter struct {
	http.ResponseWriter
	method, path string
	swallow      bool
}

func (e *v1EdgeWriter) WriteHeader(code int) {
	var msg string
	switch code {
	case http.StatusNotFound:
		msg = fmt.Sprintf("no route %s %s", e.method, e.path)
	case http.StatusMethodNotAllowed:
		msg = fmt.Sprintf("%s is not allowed on %s", e.method, e.path)
		if allow := e.Header().Get("Allow"); allow != "" {
			msg += "; use " + strings.Join(strings.Split(allow, ", "), " or ")
		}
	default:
		e.ResponseWriter.WriteHeader(code)
		return
	}
	e.swallow = true
	WriteJSON(e.ResponseWriter, code, ErrorBody{Error: msg})
}

func (e *v1EdgeWriter) Write(b []byte) (int, error) {
	if e.swallow {
		return len(b), nil
	}
	return e.ResponseWriter.Write(b)
}
