// Package embed turns chunk texts into vectors.
//
// Every Embedder returns exactly one vector per input text, in input order,
// and every vector has Dim() components; a model that answers otherwise is
// reported as an error rather than passed on, because a wrong-sized vector
// would silently corrupt a vector store.
//
// Two implementations exist: Lexical, a deterministic hashed-feature
// embedder that needs no network and no model (the default), and OpenAI, a
// client for any server speaking the OpenAI /v1/embeddings API (vLLM, TEI,
// Ollama, Infinity, OpenAI itself).
package embed

import "context"

// Embedder maps texts to vectors.
type Embedder interface {
	// Embed returns one vector per text, in the same order as texts.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Dim is the length of every vector Embed returns (0 for an OpenAI
	// embedder that has not yet seen a response and was given no Dim).
	Dim() int
	// Name identifies the embedding space, e.g. "lexical-384" or
	// "openai:<model>": vectors from embedders with different names must not
	// be compared.
	Name() string
}
