package indexer

import (
	"slices"
	"sort"

	"github.com/ragnode/ragnode/indexer/loader"
)

// SupportedExtensions lists the extensions a file may have to be indexed:
// the built-in loaders' and the configured converters', sorted.
func (p *Pipeline) SupportedExtensions() []string {
	out := loader.Extensions()
	for ext := range p.cfg.Converters {
		if !slices.Contains(out, ext) {
			out = append(out, ext)
		}
	}
	sort.Strings(out)
	return out
}
