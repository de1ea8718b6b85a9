package transport

import (
	"net/http"
	"strings"
	"testing"
)

// A thread: root <- reply1 <- reply2, all in relationship "t1"; other is
// outside it.
func relatedEnv(t *testing.T) *compatEnv {
	e := newCompatEnv(t)
	e.add("mail", "root", `{"relationship_id":"thread/1"}`)
	e.add("mail", "reply1", `{"relationship_id":"thread/1","parent_id":"root"}`)
	e.add("mail", "reply2", `{"relationship_id":"thread/1","parent_id":"reply1"}`)
	e.add("mail", "other", `{"relationship_id":"thread/2","parent_id":"other"}`)
	for _, id := range []string{"root", "reply1", "reply2", "other"} {
		e.fake.addChunks("mail", id, 2)
	}
	return e
}

func fileIDsOf(t *testing.T, body, key string) string {
	t.Helper()
	var ids []string
	for _, f := range decode(t, body)[key].([]any) {
		ids = append(ids, f.(map[string]any)["file_id"].(string))
	}
	return strings.Join(ids, ",")
}

func TestCompatRelationshipsAndAncestors(t *testing.T) {
	e := relatedEnv(t)
	body := e.expect("GET", "/partition/mail/relationships/thread%2F1", http.StatusOK, "")
	if got := fileIDsOf(t, body, "files"); got != "reply1,reply2,root" {
		t.Fatalf("relationship thread/1 = %s", got)
	}
	if !strings.Contains(body, `"link":"`+e.srv.URL+`/partition/mail/file/reply1"`) {
		t.Fatalf("no link in %s", body)
	}
	e.expect("GET", "/partition/mail/relationships/none", http.StatusOK, `{"files":[]}`)
	e.expect("GET", "/partition/nope/relationships/x", http.StatusNotFound, `{"detail":"Partition 'nope' not found."}`)

	for path, want := range map[string]string{
		"/partition/mail/file/reply2/ancestors":                      "root,reply1,reply2",
		"/partition/mail/file/reply2/ancestors?max_ancestor_depth=1": "reply1,reply2",
		"/partition/mail/file/reply2/ancestors?max_ancestor_depth=0": "reply2",
		"/partition/mail/file/root/ancestors":                        "root",
		"/partition/mail/file/other/ancestors":                       "other", // its own parent: the cycle ends the walk
	} {
		if got := fileIDsOf(t, e.expect("GET", path, http.StatusOK, ""), "ancestors"); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}
	e.expect("GET", "/partition/mail/file/ghost/ancestors", http.StatusNotFound, `{"detail":"'ghost' not found in partition 'mail'"}`)
	e.expect("GET", "/partition/mail/file/root/ancestors?max_ancestor_depth=-1", 422,
		`{"detail":[{"type":"greater_than_equal","loc":["query","max_ancestor_depth"],"msg":"Input should be greater than or equal to 0","input":"-1","ctx":{"ge":0}}]}`)
}

// include_related / include_ancestors append the related files' chunks
// after the hits, related_limit per hit, each chunk once.
func TestCompatSearchIncludeRelated(t *testing.T) {
	e := relatedEnv(t)
	ids := func(body string) []string {
		var out []string
		for _, d := range decode(t, body)["documents"].([]any) {
			m := d.(map[string]any)["metadata"].(map[string]any)
			out = append(out, m["_id"].(string))
		}
		return out
	}
	plain := ids(e.expect("GET", "/search/partition/mail/file/reply2?text=x&top_k=1", 200, ""))
	if len(plain) != 1 {
		t.Fatalf("plain search %v", plain)
	}
	body := e.expect("GET", "/search/partition/mail/file/reply2?text=x&top_k=1&include_ancestors=true", 200, "")
	got := ids(body)
	if strings.Join(got, ",") != plain[0]+",root-c0,root-c1,reply1-c0,reply1-c1" {
		t.Fatalf("with ancestors %v", got)
	}
	if !strings.Contains(body, `"related_to":"reply2"`) {
		t.Fatalf("expansion not marked: %s", body)
	}
	got = ids(e.expect("GET", "/search/partition/mail/file/reply2?text=x&top_k=1&include_ancestors=true&max_ancestor_depth=1", 200, ""))
	if strings.Join(got, ",") != plain[0]+",reply1-c0,reply1-c1" {
		t.Fatalf("with depth 1 %v", got)
	}
	got = ids(e.expect("GET", "/search/partition/mail/file/reply2?text=x&top_k=1&include_related=true&related_limit=3", 200, ""))
	if strings.Join(got, ",") != plain[0]+",reply1-c0,reply1-c1,root-c0" {
		t.Fatalf("related, limit 3 %v", got)
	}
	e.expect("GET", "/search?text=x&include_related=maybe&related_limit=x", 422,
		`{"detail":[{"type":"bool_parsing","loc":["query","include_related"],"msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"},{"type":"int_parsing","loc":["query","related_limit"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"x"}]}`)
}
