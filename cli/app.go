// Package cli is the ragnode command line: flags, environment variables,
// `.env` files, and human or JSON output. It holds no cluster logic: every
// command either starts a node or talks to one over its HTTP API.
//
// Guarantee: every failure ends in one line on stderr and exit code 1.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/joho/godotenv"
	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/node"
)

// Run executes the ragnode CLI and returns the process exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	loadDotEnv(args)
	app := NewApp(stdout, stderr)
	if err := app.Run(reorderArgs(app, args)); err != nil {
		// A damaged store is reported as itself: it names the file and what
		// to do, and what the open calls on the way up add to it (a hint
		// about another process holding the file) would only mislead.
		var damaged *node.DamagedStoreError
		if errors.As(err, &damaged) {
			err = damaged
		}
		fmt.Fprintf(stderr, "ragnode: %s\n", oneLineMsg(err.Error()))
		return 1
	}
	return 0
}

// loadDotEnv reads `.env` (or --env-file) into the environment without
// overriding variables already set, so a reference deployment's `.env`
// (RAY_POOL_SIZE, EMBEDDER_BASE_URL, VDB_HOST, ...) works as it is.
func loadDotEnv(args []string) {
	path := ".env"
	explicit := false
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--env-file="); ok {
			path, explicit = v, true
		} else if a == "--env-file" && i+1 < len(args) {
			path, explicit = args[i+1], true
		}
	}
	if v := os.Getenv("RAGNODE_ENV_FILE"); v != "" && !explicit {
		path = v
	}
	if _, err := os.Stat(path); err != nil {
		return
	}
	_ = godotenv.Load(path)
}

// NewApp builds the urfave/cli application.
func NewApp(stdout, stderr io.Writer) *cli.App {
	usageErr := func(c *cli.Context, err error, _ bool) error {
		return fmt.Errorf("%w (see 'ragnode %s --help')", err, c.Command.Name)
	}
	app := &cli.App{
		Name:                 "ragnode",
		Usage:                "headless GPU document-indexing cluster (Raft + Serf, no head node)",
		Version:              node.Version,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		OnUsageError:         usageErr,
		ExitErrHandler:       func(*cli.Context, error) {},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(stderr, "ragnode: unknown command %q (see 'ragnode --help')\n", name)
			os.Exit(1)
		},
		Commands: []*cli.Command{
			startCommand(),
			keygenCommand(),
			membersCommand(),
			statusCommand(),
			submitCommand(),
			tasksCommand(),
			drainCommand(),
			leaveCommand(),
			searchCommand(),
			tokenCommand(),
			tlsCommand(),
			keyringCommand(),
			eventsCommand(),
			vdbCommand(),
			snapshotCommand(),
		},
	}
	for _, c := range app.Commands {
		setUsageErr(c, usageErr)
	}
	oneDefaultAll(app.Commands) // help.go

	return app
}

func setUsageErr(c *cli.Command, f cli.OnUsageErrorFunc) {
	c.OnUsageError = f
	for _, s := range c.Subcommands {
		setUsageErr(s, f)
	}
}

// envs lists RAGNODE_<NAME> first, then aliases.
func envs(name string, aliases ...string) []string {
	return append([]string{"RAGNODE_" + name}, aliases...)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func getenv(k string) string { return os.Getenv(k) }
