package cli

import (
	"reflect"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
)

// startCategories groups start's flags by concern in --help, as Consul's
// and Nomad's agents do: 80-odd flags in one list hide the five an
// operator is looking for. A flag missing here shows under no heading, and
// TestStartHelp fails.
var startCategories = map[string][]string{
	"Cluster": {"env-file", "name", "bind", "advertise", "http-port", "raft-port", "serf-port", "join",
		"bootstrap-expect", "log-level", "pprof"},
	"Resources": {"gpus", "gpu-mem", "gpu-reserve", "task-gpus", "task-gpu-mem", "cpu-slots", "pool-size",
		"max-concurrent", "max-tasks-per-worker", "placement", "prefetch", "memory-high", "max-queued",
		"max-queued-bytes", "max-queued-per-partition", "parser-memory", "parser-cpu", "parser-max-docs",
		"parser-inprocess"},
	"Indexing": {"runner", "max-attempts", "max-node-losses", "embedder-url", "embedder-model", "embedder-key",
		"embedder-dim", "embed-batch", "embed-concurrency", "chunk-size", "chunk-overlap", "converter",
		"max-chunks", "rrf-k", "ocr", "ocr-lang", "pdf-interrupt", "max-file-size"},
	"Storage": {"data-dir", "replicas", "chunk-replicas", "retain", "retain-age", "shared-root", "scrub-rate",
		"vdb", "vdb-addr", "collection", "vdb-user", "vdb-password", "vdb-schema", "vdb-vector-field", "catalog"},
	"Security": {"token", "gossip-key", "join-secret", "insecure", "transition", "ca-file", "cert-file", "key-file",
		"verify-incoming-clients", "cors-origins", "metrics-open", "callback-allow-private",
		"max-uploads-per-token"},
	"Timing": {"timing", "join-timeout", "stabilization-time", "dead-server-timeout", "requeue-after",
		"drain-timeout", "task-timeout", "embedder-timeout", "upload-idle-timeout"},
}

// startDefaults are the defaults urfave/cli cannot print from a flag's
// value: ones that depend on --timing or on the machine, where the flag's
// zero value means "work it out".
var startDefaults = map[string]string{
	"stabilization-time":  "10s; 1s with --timing fast",
	"dead-server-timeout": "30s; 5s with --timing fast",
	"requeue-after":       "10s; 2s with --timing fast",
	"cpu-slots":           "the CPU count",
	"embedder-dim":        "384 with the built-in embedder",
	"chunk-overlap":       "100, or CHUNK_OVERLAP_RATE times --chunk-size when that is set",
}

// usageDefault finds a default written into a flag's usage text.
var usageDefault = regexp.MustCompile(`\s*\(default:?\s+`)

// cutUsageDefault splits "node name (default: hostname plus ID prefix)"
// into the usage and the default; the default may hold parentheses.
func cutUsageDefault(u string) (usage, def string, ok bool) {
	m := usageDefault.FindStringIndex(u)
	if m == nil {
		return u, "", false
	}
	depth := 1
	for i := m[1]; i < len(u); i++ {
		switch u[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return u[:m[0]] + u[i+1:], u[m[1]:i], true
			}
		}
	}
	return u, "", false
}

// groupStartFlags files start's flags under their category and gives each
// one default.
func groupStartFlags(fs []cli.Flag) []cli.Flag {
	cat := map[string]string{}
	for c, names := range startCategories {
		for _, n := range names {
			cat[n] = c
		}
	}
	for _, f := range fs {
		if c := cat[f.Names()[0]]; c != "" {
			setFlagField(f, "Category", c)
		}
		if d := startDefaults[f.Names()[0]]; d != "" {
			setFlagField(f, "DefaultText", d)
		}
	}
	oneDefault(fs)
	return fs
}

// oneDefault moves a default written in the usage text ("node name
// (default: hostname plus ID prefix)") into the flag's DefaultText, so
// help prints one default per flag: urfave/cli appends its own
// "(default: 0)" from the flag's zero value, which for these flags means
// "the default described", and two defaults that disagree read as a bug.
func oneDefault(fs []cli.Flag) {
	for _, f := range fs {
		df, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		usage, def, ok := cutUsageDefault(df.GetUsage())
		if !ok {
			continue
		}
		setFlagField(f, "Usage", usage)
		if flagField(f, "DefaultText") == "" {
			setFlagField(f, "DefaultText", def)
		}
	}
}

// oneDefaultAll applies oneDefault to every command and subcommand.
func oneDefaultAll(cmds []*cli.Command) {
	for _, c := range cmds {
		oneDefault(c.Flags)
		oneDefaultAll(c.Subcommands)
	}
}

// setFlagField sets a string field of a flag struct; urfave/cli v2's flag
// types share the field names but no setter interface.
func setFlagField(f cli.Flag, name, v string) {
	rv := reflect.ValueOf(f)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return
	}
	if fv := rv.Elem().FieldByName(name); fv.IsValid() && fv.Kind() == reflect.String && fv.CanSet() {
		fv.SetString(strings.TrimSpace(v))
	}
}

func flagField(f cli.Flag, name string) string {
	rv := reflect.ValueOf(f)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return ""
	}
	if fv := rv.Elem().FieldByName(name); fv.IsValid() && fv.Kind() == reflect.String {
		return fv.String()
	}
	return ""
}
