package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/node/catalog"
	"github.com/ragnode/ragnode/node/catalog/catalogtest"
)

// bearerClient speaks the OpenRAG API with one bearer token.
type bearerClient struct {
	t     *testing.T
	base  string
	token string
}

func (b bearerClient) do(method, path string, body io.Reader, ctype string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if b.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out))
}

func (b bearerClient) upload(partition, fileID, content, metadata string) (int, string) {
	b.t.Helper()
	return b.uploadNamed(partition, fileID, fileID+".md", content, metadata)
}

func (b bearerClient) uploadNamed(partition, fileID, name, content, metadata string) (int, string) {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write([]byte(content))
	if metadata != "" {
		mw.WriteField("metadata", metadata)
	}
	mw.Close()
	return b.do("POST", "/indexer/partition/"+url.PathEscape(partition)+"/file/"+url.PathEscape(fileID), &buf, mw.FormDataContentType())
}

func (b bearerClient) json(method, path string, want int) map[string]any {
	b.t.Helper()
	code, body := b.do(method, path, nil, "")
	if code != want {
		b.t.Fatalf("%s %s = %d %s, want %d", method, path, code, body, want)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		b.t.Fatalf("%s %s: %s", method, path, body)
	}
	return m
}

func catalogExec(t *testing.T, dsn, q string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// OpenRAG's users, as OpenRAG's own users table and memberships say,
// through a cluster started with --catalog: each token works with its
// role in each partition, the OpenRAG API only; a viewer cannot upload; an
// upload past the file quota is refused as OpenRAG refuses it; the
// uploader and the creator of a new partition are recorded in the catalog.
func TestOpenRAGUsersThroughTheCatalog(t *testing.T) {
	dsn := catalogtest.Start(t)
	t.Setenv("DEFAULT_FILE_QUOTA", "100") // OpenRAG enforces quotas only with a default
	const boot = "ragnode-admin-token"
	c, ns := indexCluster(t, func(_ int, cfg *Config) { cfg.Catalog, cfg.Token = dsn, boot })
	f := followerOf(t, c, ns)
	base := "http://" + f.HTTPAddr()
	admin := bearerClient{t, base, boot}

	// OpenRAG's users, tokens stored hashed as OpenRAG stores them.
	if code, body := admin.do("POST", "/partition/team", nil, ""); code != 201 {
		t.Fatalf("create team: %d %s", code, body)
	}
	if code, body := admin.do("POST", "/partition/secret", nil, ""); code != 201 {
		t.Fatalf("create secret: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "the partitions in the catalog", func() bool {
		return catalogCount(t, dsn, `SELECT count(*) FROM partitions WHERE partition IN ('team', 'secret')`) == 2
	})
	catalogExec(t, dsn, `INSERT INTO users (id, display_name, token, is_admin, file_quota) VALUES
		(2, 'Ann', $1, false, NULL), (3, 'Vic', $2, false, NULL), (4, 'Quinn', $3, false, 1), (5, 'Root', $4, true, NULL)`,
		catalog.HashToken("or-ann"), catalog.HashToken("or-vic"), catalog.HashToken("or-quinn"), catalog.HashToken("or-root"))
	catalogExec(t, dsn, `INSERT INTO partition_memberships (partition_name, user_id, role) VALUES
		('team', 2, 'editor'), ('team', 3, 'viewer'), ('team', 4, 'editor')`)
	ann, vic, quinn, root := bearerClient{t, base, "or-ann"}, bearerClient{t, base, "or-vic"}, bearerClient{t, base, "or-quinn"}, bearerClient{t, base, "or-root"}

	// An editor indexes; the task and the file are hers in the catalog.
	code, body := ann.upload("team", "plan", "# Plan\n\nThe roadmap.", `{"author":"ann"}`)
	if code != 201 {
		t.Fatalf("editor upload: %d %s", code, body)
	}
	task := body[strings.LastIndex(body, "/")+1 : len(body)-2]
	waitFor(t, 60*time.Second, "ann's file counted in the catalog", func() bool {
		return catalogCount(t, dsn, `SELECT count(*) FROM files f JOIN users u ON u.id = f.created_by
			WHERE f.file_id = 'plan' AND u.id = 2 AND u.file_count = 1 AND f.chunk_count > 0 AND f.content_sha256 IS NOT NULL`) == 1
	})
	if n := catalogCount(t, dsn, `SELECT count(*) FROM jobs WHERE id = '`+task+`' AND user_id = 2 AND status = 'COMPLETED'`); n != 1 {
		t.Fatalf("ann's job row: %d", n)
	}
	info := ann.json("GET", "/users/info", 200)
	if info["id"] != 2.0 || info["is_admin"] != false || info["file_count"] != 1.0 || info["pending_files"] != 0.0 ||
		info["total_files"] != 1.0 || info["file_quota"] != 100.0 || len(info["memberships"].([]any)) != 1 {
		t.Fatalf("ann's /users/info %v", info)
	}

	// A viewer reads but cannot upload, and sees only its partitions.
	if code, body := vic.upload("team", "x", "nope", ""); code != 403 || body != `{"detail":"Editor role required for partition 'team'"}` {
		t.Fatalf("viewer upload: %d %s", code, body)
	}
	if code, _ := vic.do("GET", "/partition/team", nil, ""); code != 200 {
		t.Fatalf("viewer read: %d", code)
	}
	list := vic.json("GET", "/partition/", 200)["partitions"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["partition"] != "team" || list[0].(map[string]any)["role"] != "viewer" {
		t.Fatalf("viewer's partitions %v", list)
	}
	if code, body := vic.do("GET", "/partition/secret", nil, ""); code != 403 || body != `{"detail":"Access to partition 'secret' forbidden"}` {
		t.Fatalf("another partition: %d %s", code, body)
	}
	// Only an owner deletes a partition; an editor is refused.
	if code, body := ann.do("DELETE", "/partition/team", nil, ""); code != 403 || body != `{"detail":"Owner role required for partition 'team'"}` {
		t.Fatalf("editor deletes the partition: %d %s", code, body)
	}
	// A partition that does not exist yet may be made by anyone; its
	// creator becomes its owner, and may then delete it.
	if code, body := ann.upload("anns", "n1", "# Mine\n\nnotes", ""); code != 201 {
		t.Fatalf("upload to a new partition: %d %s", code, body)
	}
	waitFor(t, 60*time.Second, "ann owns her partition", func() bool {
		return catalogCount(t, dsn, `SELECT count(*) FROM partition_memberships WHERE partition_name = 'anns' AND user_id = 2 AND role = 'owner'`) == 1
	})
	if code, body := ann.do("DELETE", "/partition/anns", nil, ""); code != 204 {
		t.Fatalf("owner deletes: %d %s", code, body)
	}

	// Quinn's quota is 1 file: the second upload is refused as OpenRAG
	// refuses it, whether the first is still pending or indexed.
	if code, body := quinn.upload("team", "q1", "# One\n\nfirst", ""); code != 201 {
		t.Fatalf("first upload: %d %s", code, body)
	}
	code, body = quinn.upload("team", "q2", "# Two\n\nsecond", "")
	if code != 403 || (body != `{"detail":"File quota exceeded. You have 0 indexed files and 1 pending tasks. Limit: 1"}` &&
		body != `{"detail":"File quota exceeded. You have 1 indexed files and 0 pending tasks. Limit: 1"}`) {
		t.Fatalf("upload past the quota: %d %s", code, body)
	}

	// OpenRAG users call the OpenRAG API only; admins are admins.
	if code, _ := ann.do("GET", "/v1/status", nil, ""); code != 403 {
		t.Fatalf("an OpenRAG user on /v1: %d", code)
	}
	if code, body := ann.do("GET", "/actors/", nil, ""); code != 403 || body != `{"detail":"Admin privileges required"}` {
		t.Fatalf("a user lists actors: %d %s", code, body)
	}
	actors := root.json("GET", "/actors/", 200)["actors"].([]any)
	if len(actors) != 3 || actors[0].(map[string]any)["class_name"] != "Indexer" || actors[0].(map[string]any)["state"] != "ALIVE" {
		t.Fatalf("actors %v", actors)
	}
	if info := root.json("GET", "/users/info", 200); info["is_admin"] != true || info["file_quota"] != -1.0 {
		t.Fatalf("admin's /users/info %v", info)
	}
	if info := admin.json("GET", "/users/info", 200); info["is_admin"] != true || info["file_quota"] != -1.0 || info["total_files"] != 0.0 {
		t.Fatalf("ragnode token's /users/info %v", info)
	}
	if code, _ := (bearerClient{t, base, "or-nobody"}).do("GET", "/partition/", nil, ""); code != 401 {
		t.Fatalf("an unknown token: %d", code)
	}

	// Restarting an actor drains its node and takes it back.
	name := ns[0].cfg.Name
	m := root.json("POST", "/actors/"+name+"/restart", 200)
	if m["actor_name"] != name || m["actor_id"] != ns[0].ID() {
		t.Fatalf("restart %v", m)
	}
	draining := true
	c.leader().fsm.View(func(s *fsm.State) { draining = s.Nodes[ns[0].ID()].Draining })
	if draining {
		t.Fatal("the restarted node is still draining")
	}
	if code, body := root.do("POST", "/actors/nope/restart", nil, ""); code != 404 || body != `{"detail":"Unknown actor: nope"}` {
		t.Fatalf("unknown actor: %d %s", code, body)
	}
}
