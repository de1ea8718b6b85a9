package node

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// followerOf returns a node of ns that is not the leader.
func followerOf(t *testing.T, c *cluster, ns []*Node) *Node {
	t.Helper()
	l := c.mustLeader(t)
	for _, n := range ns {
		if n != l {
			return n
		}
	}
	t.Fatal("no follower")
	return nil
}

// Partitions are created empty, configured and deleted through a
// follower, and every node lists the same ones.
func TestCompatPartitionsFirstClass(t *testing.T) {
	c, ns := indexCluster(t, nil)
	f := followerOf(t, c, ns)
	cc := compatClient{t: t, base: "http://" + f.HTTPAddr()}
	if code, body := cc.do("POST", "/partition/empty", nil, ""); code != 201 || body != "" {
		t.Fatalf("create = %d %q", code, body)
	}
	if code, body := cc.do("POST", "/partition/empty", nil, ""); code != 409 || body != `{"detail":"Partition 'empty' already exists."}` {
		t.Fatalf("second create = %d %s", code, body)
	}
	if code, body := cc.do("POST", "/partition/%20", nil, ""); code != 400 {
		t.Fatalf("blank name = %d %s", code, body)
	}
	code, body := cc.upload("POST", "docs", "a", "a.md", "# A\n\nalpha text", "")
	m := taskURL.FindStringSubmatch(body)
	if code != 201 || m == nil {
		t.Fatalf("upload = %d %s", code, body)
	}
	cc.waitState(m[2], "COMPLETED")
	// A partition implied by its files exists too.
	if code, body := cc.do("POST", "/partition/docs", nil, ""); code != 409 {
		t.Fatalf("create over files = %d %s", code, body)
	}
	type row struct {
		Partition string `json:"partition"`
		Created   string `json:"created_at"` // ISO 8601, as openrag lists it
		Files     int    `json:"file_count"`
		Docs      int    `json:"document_count"`
	}
	for _, n := range ns {
		nc := compatClient{t: t, base: "http://" + n.HTTPAddr()}
		waitFor(t, 10*time.Second, n.cfg.Name+" lists both partitions", func() bool {
			code, body := nc.do("GET", "/partition/", nil, "")
			var lp struct {
				Partitions []row `json:"partitions"`
			}
			if json.Unmarshal([]byte(body), &lp); code != 200 || len(lp.Partitions) != 2 {
				return false
			}
			d, e := lp.Partitions[0], lp.Partitions[1]
			recent := func(s string) bool {
				at, err := time.Parse(time.RFC3339Nano, s)
				return err == nil && time.Since(at) < time.Hour
			}
			return d.Partition == "docs" && d.Files == 1 && d.Docs == 1 && recent(d.Created) &&
				e.Partition == "empty" && e.Files == 0 && recent(e.Created)
		})
	}
	code, body = cc.do("PATCH", "/partition/empty", strings.NewReader(`{"description":"nothing yet","chat_history_depth":2}`), "application/json")
	var pd map[string]any
	if json.Unmarshal([]byte(body), &pd); code != 200 || pd["description"] != "nothing yet" || pd["chat_history_depth"] != 2.0 ||
		pd["document_count"] != 0.0 || pd["dimension"] != 384.0 || pd["name"] != "empty" {
		t.Fatalf("patch = %d %s", code, body)
	}
	// The configuration is in the ledger: another node answers it.
	lc := compatClient{t: t, base: "http://" + c.leader().HTTPAddr()}
	waitFor(t, 10*time.Second, "config on the leader", func() bool {
		code, body := lc.do("GET", "/partition/empty/config", nil, "")
		return code == 200 && strings.Contains(body, `"description":"nothing yet"`)
	})
	// An implied partition can be configured, and keeps its file.
	code, body = cc.do("PATCH", "/partition/docs", strings.NewReader(`{"embedder":"bge"}`), "application/json")
	if json.Unmarshal([]byte(body), &pd); code != 200 || pd["embedder"] != "bge" || pd["document_count"] != 1.0 {
		t.Fatalf("patch implied = %d %s", code, body)
	}
	if code, body := cc.do("PATCH", "/partition/nope", strings.NewReader(`{"embedder":"bge"}`), "application/json"); code != 404 || body != `{"detail":"Partition 'nope' not found."}` {
		t.Fatalf("patch missing = %d %s", code, body)
	}
	if code, body := cc.do("DELETE", "/partition/empty", nil, ""); code != 204 {
		t.Fatalf("delete empty = %d %s", code, body)
	}
	if code, _ := cc.do("GET", "/partition/empty/config", nil, ""); code != 404 {
		t.Fatalf("config after delete = %d", code)
	}
	if code, body := cc.do("DELETE", "/partition/empty", nil, ""); code != 404 {
		t.Fatalf("second delete = %d %s", code, body)
	}
	if code, body := cc.do("DELETE", "/partition/docs", nil, ""); code != 204 {
		t.Fatalf("delete docs = %d %s", code, body)
	}
	if code, body := cc.do("GET", "/partition/", nil, ""); code != 200 || body != `{"partitions":[]}` {
		t.Fatalf("list after deletes = %d %s", code, body)
	}
}
