package transport

import (
	"net/http"
	"strings"
)

// The mux's own answers, for a path no route matches (404) or a method
// the path's routes do not take (405), are plain text. On the
// OpenRAG-compatible API they are FastAPI's: {"detail": "Not Found"} and
// {"detail": "Method Not Allowed"}, with the same status and the mux's
// Allow header. Handlers' own 404s are untouched.

// fastAPIEdges returns w, or for a request no route will serve on a node
// that mounts the compatible API, a writer that turns the mux's text
// answer into FastAPI's.
func (s *Server) fastAPIEdges(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if !s.compat || strings.HasPrefix(r.URL.Path, "/v1/") {
		return w
	}
	if _, pattern := s.mux.Handler(r); pattern != "" {
		return w
	}
	return &detailWriter{ResponseWriter: w}
}

// detailWriter rewrites a 404 or 405 written to it as FastAPI's body and
// drops the text the mux writes after the header.
type detailWriter struct {
	http.ResponseWriter
	swallow bool
}

func (d *detailWriter) WriteHeader(code int) {
	var detail string
	switch code {
	case http.StatusNotFound:
		detail = "Not Found"
	case http.StatusMethodNotAllowed:
		detail = "Method Not Allowed"
	default:
		d.ResponseWriter.WriteHeader(code)
		return
	}
	d.swallow = true
	h := d.Header()
	h.Del("X-Content-Type-Options")
	writeDetail(d.ResponseWriter, code, "%s", detail)
}

func (d *detailWriter) Write(b []byte) (int, error) {
	if d.swallow {
		return len(b), nil
	}
	return d.ResponseWriter.Write(b)
}
