package transport

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// searchBackend records the search it was asked for.
type searchBackend struct {
	Backend
	last SearchRequest
}

func (b *searchBackend) Search(ctx context.Context, req SearchRequest) ([]Hit, error) {
	b.last = req
	return []Hit{{ChunkID: "c1", Text: "found " + req.Text}}, nil
}

func post(t *testing.T, url, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (int, string, http.Header) {
	t.Helper()
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}

// TestSearchQueryAlias: POST /v1/search takes "query" for "text"; both,
// differing, is a 400 that says so; a text alone works as before.
func TestSearchQueryAlias(t *testing.T) {
	b := &searchBackend{}
	srv := httptest.NewServer(NewServer(b, "tok"))
	defer srv.Close()
	for _, tc := range [][2]string{
		{`{"query": "raft leader", "top_k": 3}`, "raft leader"},
		{`{"text": "raft leader"}`, "raft leader"},
		{`{"text": "raft leader", "query": "raft leader"}`, "raft leader"},
		{`{"query": "gpu", "partitions": ["a"], "mode": "bm25"}`, "gpu"},
	} {
		body, want := tc[0], tc[1]
		b.last = SearchRequest{}
		code, got, _ := post(t, srv.URL+"/v1/search", body)
		if code != 200 || b.last.Text != want || !strings.Contains(got, `"found `+want+`"`) {
			t.Errorf("%s: %d %s (backend got %+v)", body, code, got, b.last)
		}
	}
	if b.last.Mode != "bm25" || len(b.last.Partitions) != 1 {
		t.Errorf("the other fields were lost with the alias: %+v", b.last)
	}
	code, got, _ := post(t, srv.URL+"/v1/search", `{"text": "a", "query": "b"}`)
	var eb ErrorBody
	if code != 400 || json.Unmarshal([]byte(got), &eb) != nil || !strings.Contains(eb.Error, `"text" and "query" are the same field`) {
		t.Errorf("text and query differing: %d %s", code, got)
	}
}

// TestV1MethodAndRouteErrorsAreJSON: a method a /v1 route does not take is
// a JSON 405 with the Allow header, and an unknown /v1 path a JSON 404,
// like every other /v1 answer; routes answer as before.
func TestV1MethodAndRouteErrorsAreJSON(t *testing.T) {
	srv := httptest.NewServer(NewServer(&searchBackend{}, "tok"))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/search", nil)
	code, body, hdr := send(t, req)
	var eb ErrorBody
	if code != 405 || hdr.Get("Allow") != "POST" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") ||
		json.Unmarshal([]byte(body), &eb) != nil || eb.Error != "GET is not allowed on /v1/search; use POST" {
		t.Errorf("GET /v1/search: %d Allow=%q %q %s", code, hdr.Get("Allow"), hdr.Get("Content-Type"), body)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/v1/no-such-route", nil)
	code, body, hdr = send(t, req)
	if code != 404 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(body), &eb) != nil ||
		eb.Error != "no route GET /v1/no-such-route" {
		t.Errorf("unknown /v1 route: %d %q %s", code, hdr.Get("Content-Type"), body)
	}
	if code, body, _ := post(t, srv.URL+"/v1/search", `{"text": "x"}`); code != 200 {
		t.Errorf("POST /v1/search through the edge check: %d %s", code, body)
	}
}

// queueFake answers QueueInfo as a node with per-node slots does.
type queueFake struct {
	*fakeCompat
	qi QueueInfo
}

func (q queueFake) QueueInfo(ctx context.Context) (QueueInfo, error) { return q.qi, nil }

// TestQueueInfoMaxPerActor: /queue/info's max_per_actor is the most slots
// one node offers (8 with 24 slots on 3 nodes and no --pool-size), not 0.
func TestQueueInfoMaxPerActor(t *testing.T) {
	s := NewServer(stubBackend{}, compatToken)
	s.MountCompat(queueFake{fakeCompat: newFakeCompat(), qi: QueueInfo{TotalSlots: 24, FreeSlots: 24, MaxPerNode: 8, Tasks: map[string]int{}}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	e := &compatEnv{t: t, srv: srv}
	code, body := e.do("GET", "/queue/info", "", nil)
	var got struct {
		Workers map[string]int `json:"workers"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("/queue/info: %d %s", code, body)
	}
	if got.Workers["max_per_actor"] != 8 || got.Workers["total_slots"] != 24 || got.Workers["pool_size"] != 0 {
		t.Errorf("/queue/info workers: %v", got.Workers)
	}
}
