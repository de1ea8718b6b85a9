package cli

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// twoDefaults matches what reads as a default in a help line: urfave/cli's
// "(default: X)" and one written into the usage ("default 384").
var twoDefaults = regexp.MustCompile(`\(default|default:? \d`)

// TestStartHelp: start --help prints one default per flag and files every
// flag under one of the six concerns.
func TestStartHelp(t *testing.T) {
	out, errOut, code := run(t, "start", "--help")
	if code != 0 {
		t.Fatalf("start --help: %d %s", code, errOut)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--") && len(twoDefaults.FindAllString(l, -1)) > 1 {
			t.Errorf("two defaults: %s", strings.TrimSpace(l))
		}
	}
	for _, want := range []string{
		"(default: 10s; 1s with --timing fast) [$RAGNODE_STABILIZATION_TIME]",
		"(default: 30s; 5s with --timing fast) [$RAGNODE_DEAD_SERVER_TIMEOUT]",
		"(default: 10s; 2s with --timing fast) [$RAGNODE_REQUEUE_AFTER]",
		"(default: the CPU count) [$RAGNODE_CPU_SLOTS]",
		"node name (default: hostname plus ID prefix) [$RAGNODE_NAME]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("start --help lacks %q", want)
		}
	}
	// Headings in the order urfave/cli prints them (by name), each followed
	// by the flags filed under it.
	var heads []string
	section := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(out, "\n") {
		switch t := strings.TrimSpace(l); {
		case t != "" && !strings.HasPrefix(t, "-") && strings.HasPrefix(l, "   ") && !strings.Contains(t, " "):
			cur = t
			heads = append(heads, t)
		case strings.HasPrefix(t, "--") && cur != "":
			section[cur] = append(section[cur], strings.Fields(t)[0])
		}
	}
	if want := []string{"Cluster", "Indexing", "Resources", "Security", "Storage", "Timing"}; strings.Join(heads, ",") != strings.Join(want, ",") {
		t.Errorf("categories %v, want %v", heads, want)
	}
	for cat, flag := range map[string]string{"Cluster": "--join", "Resources": "--task-gpus", "Indexing": "--embedder-url",
		"Storage": "--data-dir", "Security": "--gossip-key", "Timing": "--stabilization-time"} {
		if !strings.Contains(strings.Join(section[cat], " "), flag) {
			t.Errorf("%s is not under %s: %v", flag, cat, section[cat])
		}
	}
	// Every flag of start has a category: a new one must be filed.
	for _, c := range NewApp(os.Stdout, os.Stderr).Commands {
		if c.Name != "start" {
			continue
		}
		for _, f := range c.Flags {
			if cf, ok := f.(cli.CategorizableFlag); ok && cf.GetCategory() == "" {
				t.Errorf("--%s has no category in startCategories (help.go)", f.Names()[0])
			}
		}
	}
}

// TestHelpOneDefaultEverywhere: no command's help prints two defaults for
// a flag.
func TestHelpOneDefaultEverywhere(t *testing.T) {
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := append(append([]string(nil), path...), c.Name)
			out, _, _ := run(t, append(p, "--help")...)
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "-") && len(twoDefaults.FindAllString(l, -1)) > 1 {
					t.Errorf("%s --help: two defaults: %s", strings.Join(p, " "), strings.TrimSpace(l))
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, NewApp(os.Stdout, os.Stderr).Commands)
}

func TestCutUsageDefault(t *testing.T) {
	for in, want := range map[string][2]string{
		"node name (default: hostname plus ID prefix)":                  {"node name", "hostname plus ID prefix"},
		"read this file (default .env when present)":                    {"read this file", ".env when present"},
		"tolerance (default: what voters allow, (voters-1)/2: 0 for 1)": {"tolerance", "what voters allow, (voters-1)/2: 0 for 1"},
		"origins (* for any; default none)":                             {"origins (* for any; default none)", ""},
	} {
		u, d, _ := cutUsageDefault(in)
		if u != want[0] || d != want[1] {
			t.Errorf("cutUsageDefault(%q) = %q, %q; want %q, %q", in, u, d, want[0], want[1])
		}
	}
}

// TestDeployEnvFileNamesFlags: every RAGNODE_ variable of deploy/ragnode.env
// is one a start flag reads.
func TestDeployEnvFileNamesFlags(t *testing.T) {
	b, err := os.ReadFile("../deploy/ragnode.env")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"RAGNODE_ENV_FILE": true}
	for _, c := range NewApp(os.Stdout, os.Stderr).Commands {
		if c.Name == "start" {
			for _, f := range c.Flags {
				if df, ok := f.(cli.DocGenerationFlag); ok {
					for _, e := range df.GetEnvVars() {
						known[e] = true
					}
				}
			}
		}
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "#")
		k, _, ok := strings.Cut(l, "=")
		if ok && strings.HasPrefix(k, "RAGNODE_") && !known[k] {
			t.Errorf("deploy/ragnode.env sets %s, which no start flag reads", k)
		}
	}
}
