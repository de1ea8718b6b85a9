package milvustest

import (
	"math"
	"slices"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func textField(analyzer string) *schemapb.FieldSchema {
	f := &schemapb.FieldSchema{Name: "text", DataType: schemapb.DataType_VarChar,
		TypeParams: []*commonpb.KeyValuePair{{Key: "enable_analyzer", Value: "true"}}}
	if analyzer != "" {
		f.TypeParams = append(f.TypeParams, &commonpb.KeyValuePair{Key: "analyzer_params", Value: analyzer})
	}
	return f
}

func TestAnalyzers(t *testing.T) {
	// No params: the built-in standard analyzer lowercases.
	if got := analyze(textField(""), "Raft, LEADER-election!"); !slices.Equal(got, []string{"raft", "leader", "election"}) {
		t.Errorf("standard: %v", got)
	}
	// A custom analyzer lowercases only when told, and drops stop words.
	custom := `{"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": ["_english_", "[CONTEXT]"]}]}`
	if got := analyze(textField(custom), "The Raft and the log"); !slices.Equal(got, []string{"The", "Raft", "log"}) {
		t.Errorf("custom: %v", got)
	}
	lower := `{"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["_french_"]}]}`
	if got := analyze(textField(lower), "Le Journal de la Raft"); !slices.Equal(got, []string{"journal", "raft"}) {
		t.Errorf("lowercase + french: %v", got)
	}
}

func TestBM25Score(t *testing.T) {
	c := &collection{rows: map[string]Row{
		"1": {"sparse": []string{"raft", "leader", "log"}},
		"2": {"sparse": []string{"gossip", "membership"}},
		"3": {"sparse": []string{"raft", "raft", "raft", "snapshot", "install", "chunk"}},
	}}
	st := c.bm25Stats("sparse")
	if st.n != 3 || st.df["raft"] != 2 || math.Abs(st.avgdl-11.0/3) > 1e-9 {
		t.Fatalf("stats %+v", st)
	}
	// By the documented formula, by hand for doc 1 and the query "raft".
	idf := math.Log(1 + (3-2+0.5)/(2+0.5))
	want := idf * 1 * 2.2 / (1 + 1.2*(1-0.75+0.75*3/(11.0/3)))
	if got := st.score([]string{"raft"}, c.rows["1"]["sparse"].([]string), 1.2, 0.75); math.Abs(got-want) > 1e-12 {
		t.Errorf("score %v, want %v", got, want)
	}
	if got := st.score([]string{"raft"}, c.rows["2"]["sparse"].([]string), 1.2, 0.75); got != 0 {
		t.Errorf("a document without the term scores %v", got)
	}
}

func TestDynamicFieldExpressions(t *testing.T) {
	fields := map[string]*schemapb.FieldSchema{
		"_id":   {Name: "_id", DataType: schemapb.DataType_Int64},
		"$meta": {Name: "$meta", DataType: schemapb.DataType_JSON, IsDynamic: true},
	}
	row := Row{"_id": int64(7), "$meta": []byte(`{"lang": "fr", "ragnode_seq": 5, "ragnode_attempt": 2}`)}
	for expr, want := range map[string]bool{
		`lang == "fr"`:                 true,
		`lang == "en"`:                 false,
		`missing == "x"`:               false,
		`ragnode_seq > 4 and _id == 7`: true,
		`not (ragnode_seq > 5 or (ragnode_seq == 5 and ragnode_attempt > 1))`: false,
		`$meta["lang"] == "fr"`: true,
	} {
		pred, err := parseExpr(expr, fields)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if got := pred(row); got != want {
			t.Errorf("%s = %v, want %v", expr, got, want)
		}
	}
	if _, err := parseExpr(`lang == "x"`, map[string]*schemapb.FieldSchema{"_id": fields["_id"]}); err == nil {
		t.Error("a name outside the schema was accepted without a dynamic field")
	}
}
