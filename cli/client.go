package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/node"
	"github.com/ragnode/ragnode/transport"
)

func clientFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "addr", Value: "127.0.0.1:" + strconv.Itoa(node.DefaultHTTPPort), Usage: "any node's HTTP API: HOST:PORT, HOST (port " + strconv.Itoa(node.DefaultHTTPPort) + ") or http(s)://HOST:PORT", EnvVars: []string{"RAGNODE_ADDR"}},
		&cli.StringFlag{Name: "token", Usage: "bearer token", EnvVars: []string{"RAGNODE_TOKEN"}},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"},
		&cli.DurationFlag{Name: "request-timeout", Value: 30 * time.Second, Usage: "give up on a request after this long"},
		&cli.StringFlag{Name: "ca-file", Usage: "cluster CA: talk HTTPS and check the node's certificate", EnvVars: []string{"RAGNODE_CACERT"}},
		&cli.StringFlag{Name: "client-cert", Usage: "client certificate (nodes with --verify-incoming-clients)", EnvVars: []string{"RAGNODE_CLIENT_CERT"}},
		&cli.StringFlag{Name: "client-key", Usage: "key of --client-cert", EnvVars: []string{"RAGNODE_CLIENT_KEY"}},
	}, extra...)
}

func newClient(c *cli.Context) (*transport.Client, error) {
	addr, https, err := parseAddr(c.String("addr"))
	if err != nil {
		return nil, err
	}
	switch c.String("output") {
	case "table", "json":
	default:
		return nil, fmt.Errorf("-o %q: want table or json", c.String("output"))
	}
	var cl *transport.Client
	switch {
	case c.String("ca-file") != "" || c.String("client-cert") != "" || c.String("client-key") != "":
		cfg, err := transport.ClientTLS(c.String("ca-file"), c.String("client-cert"), c.String("client-key"))
		if err != nil {
			return nil, err
		}
		cl = transport.NewTLSClient(addr, c.String("token"), cfg)
	case https:
		cl = transport.NewTLSClient(addr, c.String("token"), httpsConfig())
	default:
		cl = transport.NewClient(addr, c.String("token"))
	}
	cl.HTTP.Transport = explainRT{rt: cl.HTTP.Transport, addr: addr}
	return cl, nil
}

func reqCtx(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, c.Duration("request-timeout"))
}

func jsonOut(c *cli.Context) bool { return c.String("output") == "json" }

func membersCommand() *cli.Command {
	return &cli.Command{
		Name:  "members",
		Usage: "list the cluster's nodes: gossip status, Raft role, GPU quota, running tasks",
		Flags: clientFlags(),
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			ctx, cancel := reqCtx(c)
			defer cancel()
			ms, err := cl.Members(ctx)
			if err != nil {
				return err
			}
			if jsonOut(c) {
				return printJSON(c.App.Writer, ms)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tHTTP\tSERF\tRAFT\tLEADER\tCONTACT\tGPUS (used/total)\tRUNNING\tVERSION")
			for _, m := range ms {
				lead := ""
				if m.Leader {
					lead = "*"
				}
				name := m.Name
				if m.Draining {
					name += " (draining)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, short(m.ID), m.HTTPAddr, m.SerfStatus,
					m.RaftSuffrage, lead, dash(m.LastContact), gpuSummary(m), m.Running, m.Version)
			}
			return tw.Flush()
		},
	}
}

func gpuSummary(m transport.Member) string {
	if len(m.GPUs) == 0 {
		return fmt.Sprintf("none (%d cpu slots)", m.CPUSlots)
	}
	parts := make([]string, 0, len(m.GPUs))
	for _, g := range m.GPUs {
		p := fmt.Sprintf("%d:%s/%s", g.Index, gpu.FormatMilli(g.MilliUsed), gpu.FormatMilli(g.MilliTotal))
		if g.MemUsed > 0 {
			p += fmt.Sprintf(" %s/%s", gpu.FormatSize(g.MemUsed), gpu.FormatSize(g.MemTotal))
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the leader, term, log indexes, failure tolerance and task counts",
		Flags: clientFlags(
			&cli.BoolFlag{Name: "wait-healthy", Usage: "block until every voter is healthy and caught up and the failure tolerance is reached"},
			&cli.IntFlag{Name: "min-tolerance", Usage: "with --wait-healthy: failure tolerance to wait for (default: what the voter count allows, (voters-1)/2: 0 for one or two voters, 1 for three or four, 2 for five)"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "with --wait-healthy: give up after this long"},
		),
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			var st transport.Status
			if c.Bool("wait-healthy") {
				st, err = waitHealthy(c, cl)
			} else {
				ctx, cancel := reqCtx(c)
				st, err = cl.Status(ctx)
				cancel()
			}
			if err != nil {
				return err
			}
			if jsonOut(c) {
				return printJSON(c.App.Writer, st)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "leader\t%s (%s)\n", dash(short(st.LeaderID)), dash(st.LeaderHTTP))
			fmt.Fprintf(tw, "term\t%d\n", st.Term)
			fmt.Fprintf(tw, "commit / applied index\t%d / %d\n", st.CommitIndex, st.AppliedIndex)
			fmt.Fprintf(tw, "voters / non-voters\t%d / %d\n", st.Voters, st.NonVoters)
			fmt.Fprintf(tw, "failure tolerance\t%d\n", st.FailureTolerance)
			fmt.Fprintf(tw, "healthy\t%v\n", st.Healthy)
			for _, r := range st.Unhealthy {
				fmt.Fprintf(tw, "not healthy because\t%s\n", r)
			}
			churn := ""
			if st.ElectionChurn {
				churn = " (election churn)"
			}
			fmt.Fprintf(tw, "leader changes (10m)\t%d, longest leaderless gap %s%s\n", st.LeaderChanges,
				(time.Duration(st.LongestLeaderlessMS) * time.Millisecond).String(), churn)
			keys := make([]string, 0, len(st.Tasks))
			for k := range st.Tasks {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s %d", k, st.Tasks[k]))
			}
			fmt.Fprintf(tw, "tasks\t%s\n", dash(strings.Join(parts, ", ")))
			for _, w := range st.Warnings {
				fmt.Fprintf(tw, "warning\t%s\n", w)
			}
			return tw.Flush()
		},
	}
}

func waitHealthy(c *cli.Context, cl *transport.Client) (transport.Status, error) {
	deadline := time.Now().Add(c.Duration("timeout"))
	explicit := c.IsSet("min-tolerance")
	var last transport.Status
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
		st, err := cl.Status(ctx)
		cancel()
		if err == nil {
			last, lastErr = st, nil
			if healthGap(st, minTolerance(st, c.Int("min-tolerance"), explicit), explicit) == "" {
				return st, nil
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return last, fmt.Errorf("cluster not healthy after %s: %w (pass a longer --timeout to wait more)", c.Duration("timeout"), lastErr)
			}
			return last, fmt.Errorf("cluster not healthy after %s: %s", c.Duration("timeout"),
				healthGap(last, minTolerance(last, c.Int("min-tolerance"), explicit), explicit))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// minTolerance is the failure tolerance --wait-healthy waits for: the
// operator's, or else the most the current voters allow, so a one- or
// two-voter cluster (tolerance 0 by arithmetic) can pass.
func minTolerance(st transport.Status, flag int, explicit bool) int {
	if explicit {
		return flag
	}
	return max((st.Voters-1)/2, 0)
}

// healthGap names the first condition of --wait-healthy that st fails and
// how to relax it, on one line; "" when all hold.
func healthGap(st transport.Status, want int, explicit bool) string {
	switch {
	case st.LeaderID == "":
		return "no leader elected (check that a majority of the voters is up and can reach each other; --timeout waits longer)"
	case !st.Healthy:
		why := "the leader reports it unhealthy"
		if len(st.Unhealthy) > 0 {
			why = strings.Join(st.Unhealthy, "; ")
		}
		hint := "--timeout waits longer"
		if st.ElectionChurn {
			hint = "churn clears once elections stop for 10 minutes; see Timing in the README"
		}
		return fmt.Sprintf("not healthy: %s (%s)", why, hint)
	case !st.CaughtUp:
		return "a voter has not caught up with the leader's log yet (--timeout waits longer)"
	case st.FailureTolerance < want:
		source := "what its voters allow"
		if explicit {
			source = "--min-tolerance"
		}
		return fmt.Sprintf("failure tolerance %d with %d voters, %d wanted (%s); pass --min-tolerance %d to accept it, or add voters",
			st.FailureTolerance, st.Voters, want, source, st.FailureTolerance)
	}
	return ""
}

func drainCommand() *cli.Command {
	return &cli.Command{
		Name:      "drain",
		Usage:     "stop giving a node new work; its running tasks finish (or are requeued at --deadline)",
		ArgsUsage: "NODE (name or ID)",
		Flags: clientFlags(
			&cli.DurationFlag{Name: "deadline", Usage: "requeue tasks still running after this long (0: wait for them)"},
			&cli.BoolFlag{Name: "cancel", Usage: "lift the drain"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("drain takes exactly one node name or ID")
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			req := transport.DrainRequest{Node: c.Args().First(), Cancel: c.Bool("cancel")}
			if d := c.Duration("deadline"); d > 0 {
				req.Deadline = d.String()
			}
			ctx, cancel := reqCtx(c)
			defer cancel()
			if err := cl.Drain(ctx, req); err != nil {
				return err
			}
			if jsonOut(c) {
				return printJSON(c.App.Writer, req)
			}
			if req.Cancel {
				fmt.Fprintf(c.App.Writer, "drain lifted on %s\n", req.Node)
			} else {
				fmt.Fprintf(c.App.Writer, "draining %s\n", req.Node)
			}
			return nil
		},
	}
}

func leaveCommand() *cli.Command {
	return &cli.Command{
		Name:  "leave",
		Usage: "make the node at --addr leave the cluster for good (drains, then departs Raft and Serf)",
		Flags: clientFlags(),
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
			defer cancel()
			if err := cl.Leave(ctx); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "node at %s left the cluster\n", c.String("addr"))
			return nil
		},
	}
}
