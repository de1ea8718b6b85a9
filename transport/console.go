package transport

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

// The operator console: static assets under /ui/ (embedded, nothing fetched
// at run time, served without the token because they hold no data), the
// compact JSON endpoints the page polls under /v1/console/ (token checked
// like every data route), and Prometheus metrics at /metrics (token
// checked unless the node runs with --metrics-open).

//go:embed ui
var uiFiles embed.FS

// ConsoleBackend is what the console asks of a node.
type ConsoleBackend interface {
	ConsoleSummary(ctx context.Context) (ConsoleSummary, error)
	ConsoleTasks(ctx context.Context, q ConsoleTaskQuery) (ConsoleTaskPage, error)
	ConsoleTask(ctx context.Context, id string) (ConsoleTaskDetail, error)
	ConsoleEvents(ctx context.Context, since uint64) ([]ConsoleEvent, error)
	ConsoleSeries(ctx context.Context) (ConsoleSeries, error)
	// Retry resubmits a failed or cancelled task's file.
	Retry(ctx context.Context, id string) (TaskView, error)
}

// consoleAccess says which GET paths skip the token check.
type consoleAccess struct {
	mounted     bool
	metricsOpen bool
}

// consoleOpen reports whether r may be answered without the token: the page and
// its assets, the redirect to it, and /metrics when opened.
func (s *Server) consoleOpen(r *http.Request) bool {
	if !s.access.mounted || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	p := r.URL.Path
	return p == "/" || p == "/ui" || strings.HasPrefix(p, "/ui/") || (p == "/metrics" && s.access.metricsOpen)
}

// MountConsole serves the console and, when metrics is not nil, /metrics.
func (s *Server) MountConsole(b ConsoleBackend, metrics http.Handler, metricsOpen bool) {
	s.access = consoleAccess{mounted: true, metricsOpen: metricsOpen}
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	s.handle("GET /ui/", http.StripPrefix("/ui/", noCache(http.FileServerFS(sub))))
	s.handle("GET /ui", http.RedirectHandler("/ui/", http.StatusFound))
	s.handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	if metrics != nil {
		s.handle("GET /metrics", metrics)
	}
	// The caller's role, so the page draws only the actions it may take.
	// A node without --token serves everyone as admin.
	s.handleFunc("GET /v1/console/whoami", func(w http.ResponseWriter, r *http.Request) {
		c, ok := CallerOf(r.Context())
		if !ok || c.Role == "" {
			c.Role = "admin"
		}
		WriteJSON(w, http.StatusOK, map[string]string{"role": c.Role, "token_id": c.TokenID})
	})
	s.handleFunc("GET /v1/console/summary", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.ConsoleSummary(r.Context())
		reply(w, v, err)
	})
	s.handleFunc("GET /v1/console/tasks", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		cq := ConsoleTaskQuery{State: q.Get("state"), Q: q.Get("q"), Partition: ScopeOf(r.Context())}
		for _, f := range []struct {
			name string
			dst  *int
		}{{"offset", &cq.Offset}, {"limit", &cq.Limit}} {
			if v := q.Get(f.name); v != "" {
				i, err := strconv.Atoi(v)
				if err != nil {
					WriteError(w, invalidf("%s must be an integer, got %q", f.name, v))
					return
				}
				*f.dst = i
			}
		}
		v, err := b.ConsoleTasks(r.Context(), cq)
		reply(w, v, err)
	})
	s.handleFunc("GET /v1/console/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.ConsoleTask(r.Context(), r.PathValue("id"))
		reply(w, v, err)
	})
	s.handleFunc("POST /v1/console/tasks/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Retry(r.Context(), r.PathValue("id"))
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusCreated, v)
	})
	s.handleFunc("GET /v1/console/events", func(w http.ResponseWriter, r *http.Request) {
		var since uint64
		if v := r.URL.Query().Get("since"); v != "" {
			var err error
			if since, err = strconv.ParseUint(v, 10, 64); err != nil {
				WriteError(w, invalidf("since must be a non-negative integer, got %q", v))
				return
			}
		}
		v, err := b.ConsoleEvents(r.Context(), since)
		reply(w, v, err)
	})
	s.handleFunc("GET /v1/console/series", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.ConsoleSeries(r.Context())
		reply(w, v, err)
	})
}

// noCache makes a browser revalidate the assets, so a node upgrade shows
// its own page at once.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
