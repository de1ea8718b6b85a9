package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/transport"
)

// eventsCommand prints the cluster's replicated event history (the same on
// every node) and, with --follow, keeps polling for newer events until
// interrupted. Polling asks only for events newer than the last one
// printed, so following costs one small request per interval.
func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:  "events",
		Usage: "show the cluster's event history: leader changes, members, drains, requeues, failures, repairs",
		Flags: clientFlags(
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new events until interrupted"},
			&cli.Uint64Flag{Name: "since", Usage: "only events with a sequence number above this"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "how often --follow asks for new events"},
		),
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			if c.Duration("interval") <= 0 {
				return fmt.Errorf("--interval %s: want a positive duration", c.Duration("interval"))
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			p := &eventPrinter{w: c.App.Writer, json: jsonOut(c), follow: c.Bool("follow"), names: map[string]string{}}
			since := c.Uint64("since")
			for {
				rctx, cancel := context.WithTimeout(ctx, c.Duration("request-timeout"))
				evs, err := cl.ConsoleEvents(rctx, since)
				if err == nil && p.needNames(evs) {
					p.loadNames(rctx, cl)
				}
				cancel()
				if ctx.Err() != nil {
					return nil // interrupted: a normal end of --follow
				}
				if err != nil {
					return err
				}
				if err := p.print(evs); err != nil {
					return err
				}
				if len(evs) > 0 {
					since = evs[len(evs)-1].Seq
				}
				if !p.follow {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(c.Duration("interval")):
				}
			}
		},
	}
}

// eventOut is an event as -o json prints it: the time in RFC 3339 (UTC)
// rather than the API's Unix nanoseconds.
type eventOut struct {
	transport.ConsoleEvent
	Time string `json:"time"`
}

type eventPrinter struct {
	w      io.Writer
	json   bool
	follow bool
	names  map[string]string // node ID -> name
}

// needNames reports an event naming a node not yet known by name.
func (p *eventPrinter) needNames(evs []transport.ConsoleEvent) bool {
	if p.json {
		return false
	}
	for _, e := range evs {
		if _, ok := p.names[e.NodeID]; e.NodeID != "" && !ok {
			return true
		}
	}
	return false
}

// loadNames maps node IDs to names; a failure leaves IDs shown short.
func (p *eventPrinter) loadNames(ctx context.Context, cl *transport.Client) {
	ms, err := cl.Members(ctx)
	if err != nil {
		return
	}
	for _, m := range ms {
		p.names[m.ID] = m.Name
	}
}

// print writes one poll's events: a JSON array without --follow, one JSON
// object per line with it (so a consumer can read a stream), or table rows.
func (p *eventPrinter) print(evs []transport.ConsoleEvent) error {
	if p.json {
		out := make([]eventOut, len(evs))
		for i, e := range evs {
			out[i] = eventOut{ConsoleEvent: e, Time: rfc3339(e.Time)}
		}
		if !p.follow {
			return printJSON(p.w, out)
		}
		enc := json.NewEncoder(p.w)
		for _, e := range out {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if !p.follow {
		fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tNODE\tTASK\tMESSAGE")
	}
	for _, e := range evs {
		node := p.names[e.NodeID]
		if node == "" {
			node = dash(short(e.NodeID))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, tableTime(e.Time), e.Kind, node, dash(short(e.TaskID)), e.Msg)
	}
	return tw.Flush()
}
