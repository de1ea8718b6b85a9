package cli

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/node"
	"github.com/ragnode/ragnode/transport"
)

// tlsCommand makes a cluster CA and certificates for operators who have no
// PKI of their own (Consul's `tls ca create` / `tls cert create`).
func tlsCommand() *cli.Command {
	return &cli.Command{
		Name:  "tls",
		Usage: "make a cluster CA and node or client certificates",
		Subcommands: []*cli.Command{
			{
				Name:  "ca",
				Usage: "the cluster CA",
				Subcommands: []*cli.Command{{
					Name:      "create",
					Usage:     "write DIR/ca.pem and DIR/ca-key.pem",
					UsageText: "ragnode tls ca create --out DIR [--days N]",
					Flags: []cli.Flag{
						&cli.StringFlag{Name: "out", Required: true, Usage: "directory to write the CA into"},
						&cli.IntFlag{Name: "days", Value: 3650, Usage: "validity"},
					},
					Action: func(c *cli.Context) error {
						if c.Int("days") <= 0 {
							return fmt.Errorf("--days must be greater than 0")
						}
						dir := c.String("out")
						if err := transport.CreateCA(dir, time.Duration(c.Int("days"))*24*time.Hour); err != nil {
							return err
						}
						fmt.Fprintf(c.App.Writer, "wrote %s and %s (keep the key offline)\n", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
						return nil
					},
				}},
			},
			{
				Name:  "cert",
				Usage: "node and client certificates",
				Subcommands: []*cli.Command{{
					Name:      "create",
					Usage:     "write DIR/NAME.pem and DIR/NAME-key.pem, signed by the CA",
					UsageText: "ragnode tls cert create --ca DIR --node NAME --ip IP [--dns NAME] --out DIR\n   ragnode tls cert create --ca DIR --client NAME --out DIR",
					Flags: []cli.Flag{
						&cli.StringFlag{Name: "ca", Required: true, Usage: "directory holding ca.pem and ca-key.pem"},
						&cli.StringFlag{Name: "node", Usage: "node name: a node certificate (role " + transport.NodeRoleName + ")"},
						&cli.StringFlag{Name: "client", Usage: "client name: a client certificate (role " + transport.ClientRoleName + "), which cannot act as a node"},
						&cli.StringSliceFlag{Name: "ip", Usage: "IP address the node is reached at (repeatable)"},
						&cli.StringSliceFlag{Name: "dns", Usage: "DNS name the node is reached at (repeatable)"},
						&cli.StringFlag{Name: "out", Required: true, Usage: "directory to write the certificate into"},
						&cli.IntFlag{Name: "days", Value: 365, Usage: "validity"},
					},
					Action: func(c *cli.Context) error {
						name, client := c.String("node"), false
						switch {
						case name != "" && c.String("client") != "":
							return fmt.Errorf("give --node or --client, not both")
						case name == "" && c.String("client") == "":
							return fmt.Errorf("--node NAME or --client NAME is required")
						case name == "":
							name, client = c.String("client"), true
						}
						if c.Int("days") <= 0 {
							return fmt.Errorf("--days must be greater than 0")
						}
						spec := transport.CertSpec{Name: name, Client: client, DNSNames: c.StringSlice("dns"), Validity: time.Duration(c.Int("days")) * 24 * time.Hour}
						for _, s := range c.StringSlice("ip") {
							ip := net.ParseIP(s)
							if ip == nil {
								return fmt.Errorf("--ip %q is not an IP address", s)
							}
							spec.IPs = append(spec.IPs, ip)
						}
						if err := transport.CreateCert(c.String("ca"), c.String("out"), spec); err != nil {
							return err
						}
						fmt.Fprintf(c.App.Writer, "wrote %s and %s\n", filepath.Join(c.String("out"), name+".pem"), filepath.Join(c.String("out"), name+"-key.pem"))
						return nil
					},
				}},
			},
		},
	}
}

// reloadOnHUP reloads the node's certificates on every SIGHUP (rotation
// without a restart); a failed reload is logged and the old pair kept.
func reloadOnHUP(n *node.Node, log hclog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if err := n.ReloadTLS(); err != nil {
					log.Error("SIGHUP: TLS reload failed, keeping the current certificates", "error", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}
