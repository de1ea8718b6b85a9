package transport

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/ragnode/ragnode/fsm"
)

// The mux's own 404 and 405 answer FastAPI's JSON bodies; a handler's
// 404 keeps its words.
func TestFastAPINotFoundAndMethodNotAllowed(t *testing.T) {
	e := newCompatEnv(t)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/no/such/route", `{"detail":"Not Found"}`},
		{"GET", "/partition/p/file/f/ancestors/extra", `{"detail":"Not Found"}`}, // the subpath router's own
		{"PUT", "/partition/p/config", `{"detail":"Method Not Allowed"}`},
		{"POST", "/health_check", `{"detail":"Method Not Allowed"}`},
	} {
		req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+compatToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 256)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		want := http.StatusNotFound
		if strings.Contains(tc.body, "Method") {
			want = http.StatusMethodNotAllowed
			if resp.Header.Get("Allow") == "" {
				t.Errorf("%s %s: no Allow header", tc.method, tc.path)
			}
		}
		if got := strings.TrimSpace(string(b[:n])); resp.StatusCode != want || got != tc.body || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s = %d %q (%s), want %d %s", tc.method, tc.path, resp.StatusCode, got, resp.Header.Get("Content-Type"), want, tc.body)
		}
	}
	e.expect("GET", "/partition/nope", http.StatusNotFound, `{"detail":"Partition 'nope' not found."}`)
}

// openrag's {relationship_id:path}: an ID with slashes, sent as they are.
func TestCompatRelationshipIDIsAPath(t *testing.T) {
	e := newCompatEnv(t)
	e.add("drive", "a", `{"relationship_id":"projects/2026/q1"}`)
	e.add("drive", "b", `{"relationship_id":"projects/2026"}`)
	if got := fileIDsOf(t, e.expect("GET", "/partition/drive/relationships/projects/2026/q1", http.StatusOK, ""), "files"); got != "a" {
		t.Fatalf("relationship projects/2026/q1 = %s", got)
	}
	if got := fileIDsOf(t, e.expect("GET", "/partition/drive/relationships/projects/2026", http.StatusOK, ""), "files"); got != "b" {
		t.Fatalf("relationship projects/2026 = %s", got)
	}
	// A file ID holds no slash: file/a/b/ancestors names no route.
	e.expect("GET", "/partition/drive/file/a/b/ancestors", http.StatusNotFound, `{"detail":"Not Found"}`)
}

// openrag: an unknown extension with a supported "mimetype" in the
// metadata is parsed as that type, stored under its suffix.
func TestCompatMimetypeFromMetadata(t *testing.T) {
	e := newCompatEnv(t)
	for i, tc := range []struct{ name, meta, want string }{
		{"notes.xyz", `{"mimetype":"text/plain"}`, "notes.xyz.txt"},
		{"report", `{"mimetype":"application/pdf; charset=binary"}`, "report.pdf"},
		{"notes.md", `{"mimetype":"text/plain"}`, "notes.md"},       // a known extension wins
		{"notes.xyz", `{"mimetype":"video/mp4"}`, "notes.xyz"},      // not a type ragnode parses
		{"notes.xyz", `{"author":"ann"}`, "notes.xyz"},              // no mimetype
		{"draft.v2", `{"mimetype":"Text/Markdown"}`, "draft.v2.md"}, // case-insensitive
		{"page.html", `{"mimetype":"text/plain"}`, "page.html.txt"}, // an extension this node does not take
	} {
		code, body := e.upload("POST", "/indexer/partition/p/file/f"+strconv.Itoa(i),
			part{name: "metadata", body: tc.meta}, part{name: "file", filename: tc.name, body: "hello"})
		if code != 201 {
			t.Fatalf("%s: %d %s", tc.name, code, body)
		}
		if r, _ := e.fake.upload(taskIDFrom(t, body, e.srv.URL)); r.FileName != tc.want {
			t.Errorf("%s with %s: submitted as %q, want %q", tc.name, tc.meta, r.FileName, tc.want)
		}
	}
}

// usersBackend is a CompatUsersBackend over the fake, recording what the
// upload hooks are told.
type usersBackend struct {
	*fakeCompat
	quota    error
	uploaded []string
	created  []string
}

func (u *usersBackend) UserInfo(_ context.Context, c Caller) (map[string]any, error) {
	return map[string]any{"id": c.UserID}, nil
}

func (u *usersBackend) Actors(context.Context) ([]Actor, error) {
	return []Actor{{ActorID: "id2", Name: "n2", State: "ALIVE"}, {ActorID: "id1", Name: "n1", State: "DEAD"}}, nil
}

func (u *usersBackend) RestartActor(context.Context, string) error { return nil }

func (u *usersBackend) BeginUpload(_ context.Context, c Caller, partition string, quota bool) (func(TaskView), error) {
	if quota && u.quota != nil {
		return nil, u.quota
	}
	return func(tv TaskView) { u.uploaded = append(u.uploaded, c.TokenID+":"+tv.Partition+"/"+tv.FileID) }, nil
}

func (u *usersBackend) PartitionCreated(_ context.Context, c Caller, p string) {
	u.created = append(u.created, c.TokenID+":"+p)
}

type existsResolver struct{ noResolver }

func (existsResolver) PartitionExists(_ context.Context, name string) (bool, error) {
	return name == "team" || name == "secret", nil
}

// An OpenRAG user (Auth.External) is checked by its role in each
// partition a request touches, sees only its partitions, calls the
// OpenRAG API only; its uploads pass the quota hook and are attributed.
func TestExternalCallersByMembership(t *testing.T) {
	ub := &usersBackend{fakeCompat: newFakeCompat()}
	users := map[string]Caller{
		"viewer": {TokenID: "u2", Role: fsm.RoleIndex, UserID: 2, Partitions: map[string]string{"team": RoleViewer}},
		"editor": {TokenID: "u3", Role: fsm.RoleIndex, UserID: 3, Partitions: map[string]string{"team": RoleEditor}},
		"owner":  {TokenID: "u4", Role: fsm.RoleIndex, UserID: 4, Partitions: map[string]string{"team": RoleOwner}},
		"root":   {TokenID: "u1", Role: fsm.RoleAdmin, UserID: 1},
	}
	down := false
	s := NewServer(stubBackend{}, "")
	s.MountCompat(ub)
	s.SetAuth(Auth{Bootstrap: "boot", PeerSecret: func() string { return "" }, Token: func(string) (fsm.Token, bool) { return fsm.Token{}, false },
		Log: hclog.NewNullLogger(), Resolve: existsResolver{},
		External: func(_ context.Context, secret string) (Caller, bool, error) {
			if down {
				return Caller{}, false, errors.New("connection refused")
			}
			c, ok := users[secret]
			return c, ok, nil
		}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	e := &compatEnv{t: t, srv: srv, fake: ub.fakeCompat}
	as := func(tok, method, path string, wantCode int, wantBody string) {
		t.Helper()
		code, body := e.do(method, path, "", nil, "Authorization", "Bearer "+tok)
		if code != wantCode || (wantBody != "" && body != wantBody) {
			t.Errorf("%s %s %s = %d %s, want %d %s", tok, method, path, code, body, wantCode, wantBody)
		}
	}
	upload := func(tok, partition, id string) (int, string) {
		body, ctype := multipartBody(t, part{name: "file", filename: id + ".txt", body: "x"})
		return e.do("POST", "/indexer/partition/"+partition+"/file/"+id, ctype, body, "Authorization", "Bearer "+tok)
	}
	for _, p := range []string{"team", "secret"} {
		as("boot", "POST", "/partition/"+p, 201, "")
	}
	if code, body := upload("viewer", "team", "v"); code != 403 || body != `{"detail":"Editor role required for partition 'team'"}` {
		t.Errorf("viewer upload: %d %s", code, body)
	}
	if code, body := upload("editor", "team", "ed"); code != 201 {
		t.Errorf("editor upload: %d %s", code, body)
	}
	as("viewer", "GET", "/partition/team", 200, "")
	// The listing shows the caller's partitions, with its role.
	_, body := e.do("GET", "/partition/", "", nil, "Authorization", "Bearer viewer")
	if !strings.Contains(body, `"partition":"team","role":"viewer"`) || strings.Contains(body, "secret") {
		t.Errorf("viewer's listing: %s", body)
	}
	as("viewer", "GET", "/partition/secret", 403, `{"detail":"Access to partition 'secret' forbidden"}`)
	as("editor", "DELETE", "/partition/team", 403, `{"detail":"Owner role required for partition 'team'"}`)
	as("editor", "PATCH", "/partition/team", 403, `{"detail":"Owner role required for partition 'team'"}`)
	as("viewer", "GET", "/search?text=x", 403, "") // names no partition: all of them
	as("editor", "GET", "/v1/status", 403, `{"error":"OpenRAG users may call the OpenRAG API only"}`)
	as("editor", "GET", "/actors/", 403, `{"detail":"Admin privileges required"}`)
	as("nobody", "GET", "/partition/", 401, "")
	// A partition that does not exist yet: the user may create it.
	if code, body := upload("viewer", "mine", "m"); code != 201 {
		t.Errorf("upload to a new partition: %d %s", code, body)
	}
	as("viewer", "POST", "/partition/new", 201, "")
	as("owner", "DELETE", "/partition/team", 204, "")
	if got := strings.Join(ub.uploaded, ","); got != "u3:team/ed,u2:mine/m" {
		t.Errorf("uploads told: %s", got)
	}
	if got := strings.Join(ub.created, ","); got != "bootstrap:team,bootstrap:secret,u2:new" {
		t.Errorf("creations told: %s", got)
	}
	// The quota hook refuses a new file, in its words; a replacement is
	// not counted (openrag checks add_file only).
	ub.quota = errorfHTTP(http.StatusForbidden, "File quota exceeded. You have 1 indexed files and 0 pending tasks. Limit: 1")
	if code, body := upload("editor", "secret2", "q"); code != 403 ||
		body != `{"detail":"File quota exceeded. You have 1 indexed files and 0 pending tasks. Limit: 1"}` {
		t.Errorf("past the quota: %d %s", code, body)
	}
	as("root", "GET", "/actors/", 200, `{"actors":[{"actor_id":"id1","namespace":"","name":"n1","class_name":"","state":"DEAD"},{"actor_id":"id2","namespace":"","name":"n2","class_name":"","state":"ALIVE"}]}`)
	as("root", "GET", "/users/info", 200, `{"id":1}`)
	as("boot", "GET", "/users/info", 200, "")
	down = true
	as("editor", "GET", "/partition/", 503, "")
}
