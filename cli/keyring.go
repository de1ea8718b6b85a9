package cli

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/transport"
)

// keyringCommand rotates the gossip key through Serf's key manager
// (admin): install the new key everywhere, use it, remove the old one.
func keyringCommand() *cli.Command {
	op := func(name, usage string) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			UsageText: "ragnode keyring " + name + " KEY",
			Flags:     clientFlags(),
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return fmt.Errorf("keyring %s takes one key (base64, see 'ragnode keygen')", name)
				}
				return keyringRun(c, name, c.Args().First())
			},
		}
	}
	return &cli.Command{
		Name:  "keyring",
		Usage: "list, install, use and remove gossip encryption keys on every node",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "the keys installed, with how many nodes hold each",
				Flags: clientFlags(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return fmt.Errorf("keyring list takes no arguments")
					}
					return keyringRun(c, transport.KeyringList, "")
				},
			},
			op(transport.KeyringInstall, "add a key on every node (still encrypting with the current one)"),
			op(transport.KeyringUse, "make an installed key the one every node encrypts with"),
			op(transport.KeyringRemove, "drop a key that is no longer in use from every node"),
		},
	}
}

func keyringRun(c *cli.Context, op, key string) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	ctx, cancel := reqCtx(c)
	defer cancel()
	a, err := cl.Keyring(ctx, op, key)
	if err != nil {
		return err
	}
	if jsonOut(c) {
		return printJSON(c.App.Writer, a)
	}
	if op != transport.KeyringList {
		fmt.Fprintf(c.App.Writer, "%s: %d of %d nodes answered\n", op, a.Responses, a.Nodes)
		return nil
	}
	keys := make([]string, 0, len(a.Keys))
	for k := range a.Keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tNODES\tPRIMARY ON")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\n", k, a.Keys[k], a.Nodes, a.Primary[k])
	}
	return tw.Flush()
}
