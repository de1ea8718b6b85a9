package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/transport"
)

// snapshotCommand saves the ledger to a file and restores a cluster's
// ledger from one (admin). The file is checked here before and after it
// crosses the network: a save never leaves a partial file under FILE, and
// a restore of a damaged file fails before anything is sent.
func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "back up the ledger to a file, or rebuild a cluster's ledger from one (admin)",
		Subcommands: []*cli.Command{
			{
				Name:      "save",
				Usage:     "save a consistent snapshot of the ledger, taken by the node at --addr (any node)",
				ArgsUsage: "FILE",
				Flags:     snapshotFlags(),
				Action:    snapshotSave,
			},
			{
				Name:      "restore",
				Usage:     "replace the cluster's ledger with a saved one (the node at --addr hands it to the leader)",
				ArgsUsage: "FILE",
				Flags: snapshotFlags(&cli.BoolFlag{Name: "force",
					Usage: "restore another cluster's snapshot over a cluster whose ledger already holds files or tasks"}),
				Action: snapshotRestore,
			},
			{
				Name:      "inspect",
				Usage:     "check a snapshot file and print its header (no node needed)",
				ArgsUsage: "FILE",
				Flags:     []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"}},
				Action:    snapshotInspect,
			},
		},
	}
}

// snapshotFlags are the client flags with a request timeout that fits a
// large ledger.
func snapshotFlags(extra ...cli.Flag) []cli.Flag {
	fs := clientFlags(extra...)
	for _, f := range fs {
		if d, ok := f.(*cli.DurationFlag); ok && d.Name == "request-timeout" {
			d.Value = 30 * time.Minute
		}
	}
	return fs
}

func snapshotFile(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("snapshot %s takes one FILE", c.Command.Name)
	}
	return c.Args().First(), nil
}

// checkSnapshotFile reads a snapshot file to its end, which checks its
// checksum, and returns its header.
func checkSnapshotFile(path string) (transport.SnapshotHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return transport.SnapshotHeader{}, err
	}
	defer f.Close()
	sr, err := transport.OpenSnapshot(f)
	if err == nil {
		_, err = io.Copy(io.Discard, sr)
	}
	if err != nil {
		return transport.SnapshotHeader{}, fmt.Errorf("%s: %w", path, err)
	}
	return sr.Header, nil
}

func snapshotSave(c *cli.Context) error {
	path, err := snapshotFile(c)
	if err != nil {
		return err
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	ctx, cancel := reqCtx(c)
	defer cancel()
	err = cl.SaveSnapshot(ctx, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	// What arrived is checked as a restore would check it: a transfer cut
	// short lacks its checksum.
	hdr, err := checkSnapshotFile(tmp.Name())
	if err != nil {
		return fmt.Errorf("the snapshot received from %s is unusable: %w", cl.Addr, errors.Unwrap(err))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if jsonOut(c) {
		return printJSON(c.App.Writer, struct {
			File string `json:"file"`
			transport.SnapshotHeader
		}{path, hdr})
	}
	fmt.Fprintf(c.App.Writer, "saved the ledger of cluster %s at index %d (taken on %s, %d bytes) to %s\n",
		dash(hdr.ClusterID), hdr.RaftIndex, hdr.NodeName, hdr.Size, path)
	return nil
}

func snapshotRestore(c *cli.Context) error {
	path, err := snapshotFile(c)
	if err != nil {
		return err
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	if _, err := checkSnapshotFile(path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := reqCtx(c)
	defer cancel()
	a, err := cl.RestoreSnapshot(ctx, f, c.Bool("force"))
	if err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	if jsonOut(c) {
		return printJSON(c.App.Writer, a)
	}
	w := c.App.Writer
	from := "this cluster's"
	if a.SnapshotCluster != a.Cluster {
		from = "cluster " + dash(a.SnapshotCluster) + "'s"
	}
	fmt.Fprintf(w, "restored %s ledger at index %d (taken on %s) on leader %s: %d files in %d partitions, %d unfinished tasks; cluster identity %s\n",
		from, a.SnapshotIndex, dash(a.SnapshotNode), a.Leader, a.Files, a.Partitions, a.Unfinished, dash(a.Cluster))
	if len(a.GoneNodes) > 0 {
		fmt.Fprintf(w, "nodes of the snapshot that are not members here, recorded as departed: %s (%d tasks requeued)\n",
			strings.Join(a.GoneNodes, ", "), a.Requeued)
	}
	if a.FilesWithoutBlob > 0 {
		more := ""
		if a.FilesWithoutBlob > len(a.MissingBlobs) {
			more = fmt.Sprintf(" and %d more", a.FilesWithoutBlob-len(a.MissingBlobs))
		}
		fmt.Fprintf(w, "%d files have their bytes on no member (blobs are node-local, not in the snapshot); submit them again to re-index: %s%s\n",
			a.FilesWithoutBlob, strings.Join(a.MissingBlobs, ", "), more)
	}
	return nil
}

func snapshotInspect(c *cli.Context) error {
	path, err := snapshotFile(c)
	if err != nil {
		return err
	}
	hdr, err := checkSnapshotFile(path)
	if err != nil {
		return err
	}
	if c.String("output") == "json" {
		return printJSON(c.App.Writer, hdr)
	}
	fmt.Fprintf(c.App.Writer, "intact %s version %d: cluster %s, index %d, term %d, taken on %s at %s by ragnode %s, %d bytes of ledger\n",
		hdr.Format, hdr.Version, dash(hdr.ClusterID), hdr.RaftIndex, hdr.RaftTerm, dash(hdr.NodeName),
		hdr.CreatedAt.Format(time.RFC3339), dash(hdr.RagnodeVersion), hdr.Size)
	return nil
}
