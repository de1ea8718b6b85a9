// Command ragnode runs a node of a headless GPU document-indexing cluster,
// or talks to one. See README.md.
package main

import (
	"os"

	"github.com/ragnode/ragnode/cli"
)

func main() {
	os.Exit(cli.Run(os.Args, os.Stdout, os.Stderr))
}
