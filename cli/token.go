package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/transport"
)

// tokenCommand manages role tokens (admin). The secret is printed once, by
// create; the cluster keeps only its hash.
func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "create, list and revoke role tokens (read, index, admin)",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "make a token; its secret is printed once",
				UsageText: "ragnode token create --role read|index|admin [--partition P]",
				Flags: clientFlags(
					&cli.StringFlag{Name: "role", Required: true, Usage: "read (search, status, tasks), index (+ submit, delete, cancel), admin (+ drain, leave, tokens, keyring)"},
					&cli.StringFlag{Name: "partition", Usage: "limit the token to one partition"},
				),
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return fmt.Errorf("token create takes no arguments, got %q", c.Args().First())
					}
					switch r := c.String("role"); r {
					case "read", "index", "admin":
					default:
						return fmt.Errorf("--role %q: want read, index or admin", r)
					}
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					ctx, cancel := reqCtx(c)
					defer cancel()
					tok, err := cl.CreateToken(ctx, transport.TokenRequest{Role: c.String("role"), Partition: c.String("partition")})
					if err != nil {
						return err
					}
					if jsonOut(c) {
						return printJSON(c.App.Writer, map[string]string{"id": tok.ID, "secret": tok.Secret})
					}
					fmt.Fprintf(c.App.Writer, "ID:      %s\nRole:    %s\n", tok.ID, tok.Role)
					if tok.Partition != "" {
						fmt.Fprintf(c.App.Writer, "Partition: %s\n", tok.Partition)
					}
					fmt.Fprintf(c.App.Writer, "Secret:  %s\n(shown once: the cluster keeps only its hash)\n", tok.Secret)
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list tokens (IDs and roles, never secrets)",
				Flags: clientFlags(),
				Action: func(c *cli.Context) error {
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					ctx, cancel := reqCtx(c)
					defer cancel()
					ts, err := cl.ListTokens(ctx)
					if err != nil {
						return err
					}
					if jsonOut(c) {
						return printJSON(c.App.Writer, ts)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tROLE\tPARTITION\tCREATED")
					for _, t := range ts {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Role, dash(t.Partition), time.Unix(0, t.Created).UTC().Format(time.RFC3339))
					}
					return tw.Flush()
				},
			},
			{
				Name:      "revoke",
				Usage:     "revoke a token on every node",
				UsageText: "ragnode token revoke ID",
				Flags:     clientFlags(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("token revoke takes one token ID")
					}
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					ctx, cancel := reqCtx(c)
					defer cancel()
					if err := cl.RevokeToken(ctx, c.Args().First()); err != nil {
						return err
					}
					if jsonOut(c) {
						return printJSON(c.App.Writer, map[string]string{"revoked": c.Args().First()})
					}
					fmt.Fprintf(c.App.Writer, "revoked %s\n", c.Args().First())
					return nil
				},
			},
		},
	}
}
