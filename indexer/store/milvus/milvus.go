// Package milvus implements store.Store on a Milvus 2.5+ collection, through
// github.com/milvus-io/milvus/client/v2, in one of four schema profiles
// (see Profile): ragnode's own, or the exact collection RAGondin or OpenRAG
// (schema version 1, or 3, its newest) create and read, so that their
// retrieval reads what ragnode writes. The openrag profile needs a Milvus
// that takes nullable vector fields (2.6 late releases, 3.0), as OpenRAG
// itself does.
//
// Guarantees beyond store.Store's: every user-supplied string that reaches
// a Milvus filter expression (partition, file ID, metadata key and value) is
// written as an escaped double-quoted literal (a metadata key must be a
// plain identifier), so no input can change the meaning of a delete or a
// search; Open refuses a collection that differs from the profile (a field,
// its type or parameters, the BM25 function, an index, the schema version)
// and names what differs instead of writing into it (a schema version other
// than the profile's is a *SchemaVersionError saying what to run); UpdateMetadata
// re-writes stored vectors, it never re-embeds.
//
// Idempotence. In the ragnode profile the primary key is the deterministic
// chunk ID and writes are upserts. The upstream profiles have an
// auto-generated INT64 primary key, so a write cannot overwrite: every row
// carries the chunk ID, the task and attempt that wrote it and a write ID
// unique to one call, and a write inserts its rows and then deletes the
// rows it replaces (see ReplaceFile for the fencing rule and the window in
// which a reader sees both).
//
// Consistency: the upstream profiles create the collection with Strong
// consistency, as RAGondin does; reads that drive writes (ChunkIDs, scans,
// the fence check) ask for Strong in every profile. Search in the ragnode
// profile uses the collection's Bounded consistency.
package milvus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/milvusclient"

	"github.com/ragnode/ragnode/indexer/store"
)

// Config locates and describes the collection.
type Config struct {
	Address string // host:port, or http(s)://host:port
	// Collection defaults to "ragnode" in the ragnode profile and to
	// "vdb_test" (RAGondin's and OpenRAG's default) in the others.
	Collection string
	// Dim is the embedding dimension. It is required to create the
	// collection; for an existing collection 0 means "use its dimension".
	Dim                int
	Username, Password string
	Token              string // API key (Zilliz Cloud), sent instead of user/password
	// Timeout bounds connecting (default 10s): the client's dial otherwise
	// blocks until the context ends when the server is unreachable.
	Timeout time.Duration
	// Schema is the profile (default ProfileRagnode).
	Schema Profile
	// VectorField is this embedder's dense field in the openrag profile:
	// OpenRAG's model_endpoints.vector_field for the embedder ragnode uses
	// (default LegacyVectorField, the field of an embedder whose
	// vector_field is NULL). The other profiles have only "vector".
	VectorField string
	// RRFK is the reciprocal-rank-fusion constant of hybrid searches whose
	// query sets none (default store.DefaultRRFK, RAGondin's 100).
	RRFK int
}

// Store is a store.Store backed by one Milvus collection.
type Store struct {
	c      *milvusclient.Client
	coll   string
	dim    int
	prof   Profile
	vfield string // the dense field this store writes and searches
	rrfk   int
}

var _ store.Store = (*Store)(nil)

// Open connects, creates the collection of the profile (schema, functions,
// indexes, properties) if it does not exist, verifies it if it does, and
// loads it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Address == "" {
		return nil, errors.New("milvus: address is required")
	}
	if cfg.Schema == "" {
		cfg.Schema = ProfileRagnode
	}
	if err := cfg.Schema.Valid(); err != nil {
		return nil, err
	}
	if cfg.Collection == "" {
		cfg.Collection = cfg.Schema.DefaultCollection()
	}
	vfield, err := cfg.Schema.vectorField(cfg.VectorField)
	if err != nil {
		return nil, err
	}
	if cfg.RRFK <= 0 {
		cfg.RRFK = store.DefaultRRFK
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Dim < 0 {
		return nil, fmt.Errorf("milvus: negative dimension %d", cfg.Dim)
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	c, err := milvusclient.New(dctx, &milvusclient.ClientConfig{
		Address: cfg.Address, Username: cfg.Username, Password: cfg.Password, APIKey: cfg.Token,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("milvus: connect to %s: %w", cfg.Address, err)
	}
	s := &Store{c: c, coll: cfg.Collection, dim: cfg.Dim, prof: cfg.Schema, vfield: vfield, rrfk: cfg.RRFK}
	if err := s.prepare(ctx); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *Store) prepare(ctx context.Context) error {
	exists, err := s.c.HasCollection(ctx, milvusclient.NewHasCollectionOption(s.coll))
	if err != nil {
		return fmt.Errorf("milvus: has collection %s: %w", s.coll, err)
	}
	if !exists {
		if s.dim == 0 {
			return fmt.Errorf("milvus: collection %s does not exist and no dimension is configured to create it", s.coll)
		}
		if err := s.create(ctx); err != nil {
			// Another node may have created it meanwhile; then check theirs.
			if again, herr := s.c.HasCollection(ctx, milvusclient.NewHasCollectionOption(s.coll)); herr != nil || !again {
				return fmt.Errorf("milvus: create collection %s: %w", s.coll, err)
			}
		}
	}
	if err := s.verify(ctx); err != nil {
		return err
	}
	state, err := s.c.GetLoadState(ctx, milvusclient.NewGetLoadStateOption(s.coll))
	if err != nil {
		return fmt.Errorf("milvus: load state of %s: %w", s.coll, err)
	}
	if state.State != entity.LoadStateLoaded {
		task, err := s.c.LoadCollection(ctx, milvusclient.NewLoadCollectionOption(s.coll))
		if err == nil {
			err = task.Await(ctx)
		}
		if err != nil {
			return fmt.Errorf("milvus: load collection %s: %w", s.coll, err)
		}
	}
	return nil
}

// create makes the profile's collection with its properties (the schema
// version, set at creation as OpenRAG's newest code does, so no reader
// sees the collection unstamped), then its indexes.
func (s *Store) create(ctx context.Context) error {
	sch := s.prof.schema(s.coll, s.dim, s.vfield)
	opt := milvusclient.NewCreateCollectionOption(s.coll, sch.schema).WithConsistencyLevel(sch.consistency)
	for k, v := range sch.properties {
		opt = opt.WithProperty(k, v)
	}
	if err := s.c.CreateCollection(ctx, opt); err != nil {
		return err
	}
	for _, ix := range sch.indexes {
		io := milvusclient.NewCreateIndexOption(s.coll, ix.field, ix.index())
		if ix.name != "" {
			io = io.WithIndexName(ix.name)
		}
		task, err := s.c.CreateIndex(ctx, io)
		if err == nil {
			err = task.Await(ctx)
		}
		if err != nil {
			return fmt.Errorf("index on %s: %w", ix.field, err)
		}
	}
	return nil
}

// Dim is the collection's vector dimension.
func (s *Store) Dim() int { return s.dim }

// Profile is the schema profile the store writes.
func (s *Store) Profile() Profile { return s.prof }

// VectorField is the dense field the store writes and searches.
func (s *Store) VectorField() string { return s.vfield }

// Close closes the connection.
func (s *Store) Close() error { return s.c.Close(context.Background()) }
