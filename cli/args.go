package cli

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs moves flags that follow positional arguments in front of them,
// so `ragnode search "query" --top-k 3` works: urfave/cli v2 stops parsing
// flags at the first positional argument.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// Global flags before the command stay where they are.
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		out = append(out, args[i])
		i++
	}
	var cmd *cli.Command
	cmds := app.Commands
	for i < len(args) {
		var found *cli.Command
		for _, c := range cmds {
			if c.HasName(args[i]) {
				found = c
			}
		}
		if found == nil {
			break
		}
		cmd = found
		out = append(out, args[i])
		i++
		cmds = cmd.Subcommands
	}
	if cmd == nil {
		return args
	}
	isBool := map[string]bool{}
	known := map[string]bool{}
	for _, f := range cmd.Flags {
		_, b := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			isBool[n] = b
			known[n] = true
		}
	}
	isBool["help"], isBool["h"], known["help"], known["h"] = true, true, true, true
	var flags, pos []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if k, _, ok := strings.Cut(name, "="); ok {
			flags = append(flags, a)
			_ = k
			continue
		}
		flags = append(flags, a)
		if known[name] && !isBool[name] && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}
