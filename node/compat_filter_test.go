package node

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// searchFileIDs runs a compat search and returns the distinct file IDs hit.
func searchFileIDs(t *testing.T, cc compatClient, path string) (int, []string, string) {
	t.Helper()
	code, body := cc.do("GET", path, nil, "")
	var res struct {
		Documents []struct {
			Metadata map[string]any `json:"metadata"`
		} `json:"documents"`
	}
	json.Unmarshal([]byte(body), &res)
	seen := map[string]bool{}
	var ids []string
	for _, d := range res.Documents {
		id, _ := d.Metadata["file_id"].(string)
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return code, ids, body
}

// The filter parameter is a Milvus boolean expression over file metadata,
// evaluated by every node's local store (the peers compile it against
// their own ledger copy) and by the ledger on every hit.
func TestCompatSearchFilterExpression(t *testing.T) {
	c, ns := indexCluster(t, nil)
	cc := compatClient{t: t, base: "http://" + followerOf(t, c, ns).HTTPAddr()}
	files := []struct{ id, meta string }{
		{"a", `{"author":"Ana","year":2023,"tags":"x"}`},
		{"b", `{"author":"Alba","year":2024}`},
		{"c", `{"author":"Bruno","year":2025}`},
	}
	for _, f := range files {
		code, body := cc.upload("POST", "docs", f.id, f.id+".md", "# Report\n\nThe quarterly report on rent and repairs.", f.meta)
		m := taskURL.FindStringSubmatch(body)
		if code != 201 || m == nil {
			t.Fatalf("upload %s = %d %s", f.id, code, body)
		}
		cc.waitState(m[2], "COMPLETED")
	}
	for _, tc := range []struct{ filter, want string }{
		{``, "a,b,c"},
		{`file_id == "b"`, "b"},
		{`year >= 2024`, "b,c"},
		{`author like "A%" and year > 2023`, "b"},
		{`file_id in ["a", "c"]`, "a,c"},
		{`not (file_id in ["a", "c"])`, "b"},
		{`metadata["author"] == "Bruno" or tags == "x"`, "a,c"},
		{`2022 < year < 2025 && partition == "docs"`, "a,b"},
		{`filename == "c.md"`, "c"},
		{`missing == 1`, ""},
	} {
		for _, route := range []string{"/search/partition/docs", "/search"} {
			q := url.Values{"text": {"quarterly report rent"}, "top_k": {"10"}}
			if tc.filter != "" {
				q.Set("filter", tc.filter)
			}
			code, ids, body := searchFileIDs(t, cc, route+"?"+q.Encode())
			if code != 200 || strings.Join(ids, ",") != tc.want {
				t.Errorf("%s filter %q = %d %v; want %s (%s)", route, tc.filter, code, ids, tc.want, body)
			}
		}
	}
	// A PATCH is seen at once: the ledger's metadata decides.
	code, _ := cc.do("PATCH", "/indexer/partition/docs/file/c", strings.NewReader(url.Values{"metadata": {`{"year":2020}`}}.Encode()), "application/x-www-form-urlencoded")
	if code != 200 {
		t.Fatalf("patch = %d", code)
	}
	if _, ids, _ := searchFileIDs(t, cc, "/search?"+url.Values{"text": {"report"}, "filter": {"year >= 2024"}}.Encode()); strings.Join(ids, ",") != "b" {
		t.Fatalf("after patch: %v", ids)
	}
	code, body := cc.do("GET", "/search?"+url.Values{"text": {"report"}, "filter": {`year >= `}}.Encode(), nil, "")
	if code != 400 || body != `{"detail":"Invalid filter expression: filter: at offset 8: expected a field or a value, got end of expression"}` {
		t.Fatalf("bad filter = %d %s", code, body)
	}
	// A filter over its budget is refused whole, 422 naming the limit,
	// not answered with the hits it got to.
	for _, n := range ns {
		n.filterLimit.Store(3)
	}
	code, body = cc.do("GET", "/search?"+url.Values{"text": {"report"}, "filter": {`author like "%z%"`}}.Encode(), nil, "")
	if code != 422 || !strings.Contains(body, "more than 3 bytes of matching work") {
		t.Fatalf("over budget = %d %s", code, body)
	}
}
