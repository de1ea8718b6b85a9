package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/node"
)

// indexerFlags are the pipeline's settings (loaders, chunker, embedder, store).
func indexerFlags() []cli.Flag { return nil }

func applyIndexerFlags(c *cli.Context, cfg *node.Config) error { return nil }

func searchCommand() *cli.Command {
	return &cli.Command{Name: "search", Usage: "search indexed chunks", Hidden: true}
}
