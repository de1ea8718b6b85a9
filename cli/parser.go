package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/indexer/contain"
	"github.com/ragnode/ragnode/node"
)

// parserFlags set where documents are parsed: child processes under
// limits (indexer/contain), or this process.
func parserFlags() []cli.Flag {
	// "2GiB" is contain.DefaultMemory, written as the other size flags are.
	return []cli.Flag{
		&cli.StringFlag{Name: "parser-memory", Value: "2GiB", Usage: "memory a parser child may use for one document; past it the child is killed and the task fails naming the limit (0: no limit)", EnvVars: envs("PARSER_MEMORY")},
		&cli.DurationFlag{Name: "parser-cpu", Value: contain.DefaultCPU, Usage: "CPU time a parser child may spend on one document (0: no limit)", EnvVars: envs("PARSER_CPU")},
		&cli.IntFlag{Name: "parser-max-docs", Value: contain.DefaultMaxDocs, Usage: "replace a parser child after it has read N documents (0: never)", EnvVars: envs("PARSER_MAX_DOCS", "RAY_MAX_TASKS_PER_WORKER")},
		&cli.BoolFlag{Name: "parser-inprocess", Usage: "parse documents inside the node process, with no child and no limits (the behaviour before contained parsing)", EnvVars: envs("PARSER_INPROCESS")},
	}
}

// applyParserFlags runs after applyIndexerFlags, which sets cfg.Indexer.
func applyParserFlags(c *cli.Context, cfg *node.Config) error {
	ic := &cfg.Indexer
	ic.ParserInProcess = c.Bool("parser-inprocess")
	ic.ParserCgroup = true
	v := strings.TrimSpace(c.String("parser-memory"))
	b, err := gpu.ParseSize(v)
	if err != nil {
		return fmt.Errorf("--parser-memory: %w", err)
	}
	switch {
	case b == 0:
		ic.ParserMemory = -1 // none; the node's 0 means the default
	case b < 64<<20:
		// Below this the Go runtime of the child itself does not fit.
		return fmt.Errorf("--parser-memory %s: want at least 64MiB (or 0 for no limit)", v)
	default:
		ic.ParserMemory = int64(b)
	}
	switch d := c.Duration("parser-cpu"); {
	case d < 0:
		return fmt.Errorf("--parser-cpu must not be negative, got %s", d)
	case d == 0:
		ic.ParserCPU = -1
	default:
		ic.ParserCPU = d
	}
	switch k := c.Int("parser-max-docs"); {
	case k < 0:
		return fmt.Errorf("--parser-max-docs must not be negative, got %d", k)
	case k == 0:
		ic.ParserMaxDocs = -1
	default:
		ic.ParserMaxDocs = k
	}
	return nil
}
