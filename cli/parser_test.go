package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/node"
)

func parserConfig(t *testing.T, args ...string) (node.IndexerConfig, error) {
	t.Helper()
	var cfg node.Config
	app := &cli.App{Name: "ragnode", Commands: []*cli.Command{{
		Name: "start", Flags: parserFlags(),
		Action: func(c *cli.Context) error { return applyParserFlags(c, &cfg) },
	}}}
	err := app.Run(append([]string{"ragnode", "start"}, args...))
	return cfg.Indexer, err
}

// The seed's RAY_MAX_TASKS_PER_WORKER recycles its workers: here the parser
// children are what a worker's leaks live in, so it maps to them.
func TestParserFlagsAndRayAlias(t *testing.T) {
	t.Setenv("RAY_MAX_TASKS_PER_WORKER", "7")
	ic, err := parserConfig(t, "--parser-memory", "512MiB", "--parser-cpu", "90s")
	if err != nil {
		t.Fatal(err)
	}
	if ic.ParserMaxDocs != 7 || ic.ParserMemory != 512<<20 || ic.ParserCPU != 90*time.Second || ic.ParserInProcess || !ic.ParserCgroup {
		t.Fatalf("config %+v", ic)
	}
	os.Unsetenv("RAY_MAX_TASKS_PER_WORKER")
	ic, err = parserConfig(t, "--parser-memory", "0", "--parser-cpu", "0s", "--parser-max-docs", "0", "--parser-inprocess")
	if err != nil {
		t.Fatal(err)
	}
	// 0 on the command line is "none"; the node reads 0 as "default".
	if ic.ParserMemory != -1 || ic.ParserCPU != -1 || ic.ParserMaxDocs != -1 || !ic.ParserInProcess {
		t.Fatalf("zeros: %+v", ic)
	}
}

func TestStartRefusesParserAndQuarantineFlags(t *testing.T) {
	cases := []struct{ flag, value, want string }{
		{"--parser-memory", "1MiB", "parser-memory"}, {"--parser-memory", "lots", "parser-memory"},
		{"--parser-cpu", "-1s", "parser-cpu"}, {"--parser-max-docs", "-2", "parser-max-docs"},
		{"--max-node-losses", "0", "max-node-losses"}, {"--max-node-losses", "-3", "max-node-losses"},
	}
	for _, c := range cases {
		dir := filepath.Join(t.TempDir(), "data")
		_, errOut, code := run(t, "start", "--data-dir", dir, "--http-port", "0", "--raft-port", "0", "--serf-port", "0", c.flag, c.value)
		if code != 1 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s %s: exit %d, stderr %q", c.flag, c.value, code, errOut)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s %s: the data dir was created", c.flag, c.value)
		}
	}
}
