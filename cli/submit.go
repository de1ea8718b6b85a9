package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/transport"
)

type upload struct {
	path, fileID string
	size         int64
}

// Bulk request limits.
const (
	bulkFileMax  = 1 << 20
	bulkMaxFiles = 256
	// bulkFirstFiles is the first batch's size: enough to fill a few
	// nodes' slots while the larger batches behind it upload.
	bulkFirstFiles = 16
	bulkMaxBytes   = 16 << 20
)

func submitBulk(c *cli.Context, cl *transport.Client, ups []upload, idx []int, meta map[string]any, created []transport.TaskView, errs []error) {
	files := make([]transport.BatchFile, len(idx))
	for k, i := range idx {
		u := ups[i]
		files[k] = transport.BatchFile{FileID: u.fileID, FileName: filepath.Base(u.path), Size: u.size,
			Open: func() (io.ReadCloser, error) { return os.Open(u.path) }}
	}
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Minute)
	defer cancel()
	var res []transport.BatchResult
	err := whileBusy(ctx, c, func() (err error) {
		res, err = cl.SubmitBatch(ctx, c.String("partition"), meta, files)
		return err
	})
	if err != nil {
		for _, i := range idx {
			errs[i] = err
		}
		return
	}
	for k, i := range idx {
		switch {
		case k >= len(res):
			errs[i] = fmt.Errorf("no answer for this file")
		case res[k].Error != "":
			errs[i] = fmt.Errorf("%s", res[k].Error)
		case res[k].Task != nil:
			created[i] = *res[k].Task
		}
	}
}

func submitCommand() *cli.Command {
	return &cli.Command{
		Name:      "submit",
		Usage:     "index files and folders (recursive): each file becomes one task",
		ArgsUsage: "PATH...",
		Flags: clientFlags(
			&cli.StringFlag{Name: "partition", Value: "default", Usage: "partition the files go to"},
			&cli.StringSliceFlag{Name: "metadata", Usage: "k=v metadata attached to every file (repeatable)"},
			&cli.StringFlag{Name: "file-id", Usage: "file ID for a single file (default: path relative to the folder, or the file name)"},
			&cli.BoolFlag{Name: "shared-path", Usage: "the paths are on a filesystem every node mounts: send the path, not the bytes"},
			&cli.BoolFlag{Name: "wait", Usage: "show progress until every task ends; exit 1 if any failed"},
			&cli.IntFlag{Name: "parallel", Value: 8, Usage: "concurrent uploads"},
		),
		Action: runSubmit,
	}
}

func collect(args []string, fileID string) ([]upload, error) {
	var ups []upload
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("submit: %w", err)
		}
		if !st.IsDir() {
			id := filepath.Base(a)
			if fileID != "" {
				id = fileID
			}
			ups = append(ups, upload{path: a, fileID: id})
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != a && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			rel, err := filepath.Rel(a, p)
			if err != nil {
				return err
			}
			ups = append(ups, upload{path: p, fileID: filepath.ToSlash(rel)})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("submit: walk %s: %w", a, err)
		}
	}
	if fileID != "" && len(ups) != 1 {
		return nil, fmt.Errorf("--file-id needs exactly one file, got %d", len(ups))
	}
	return ups, nil
}

func runSubmit(c *cli.Context) error {
	if c.NArg() == 0 {
		return fmt.Errorf("submit needs at least one file or folder")
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	meta := map[string]any{}
	for _, kv := range c.StringSlice("metadata") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--metadata %q: want key=value", kv)
		}
		meta[k] = v
	}
	ups, err := collect(c.Args().Slice(), c.String("file-id"))
	if err != nil {
		return err
	}
	if len(ups) == 0 {
		return fmt.Errorf("submit: no files found")
	}
	created := make([]transport.TaskView, len(ups))
	errs := make([]error, len(ups))
	// Small files travel in bulk requests (one sync, one replication round
	// trip and one ledger command per batch); big ones and shared paths alone.
	// The first batches are small and grow geometrically to bulkMaxFiles,
	// so the cluster starts work within a round trip instead of waiting
	// for a full batch of blobs to be stored and replicated (as a TCP slow
	// start): on 5,000 tiny files this moved the first start from about
	// 700 ms to under 100 ms.
	var jobs [][]int
	var cur []int
	var curBytes int64
	limit := bulkFirstFiles
	for i, u := range ups {
		st, err := os.Stat(u.path)
		if err != nil {
			errs[i] = err
			continue
		}
		ups[i].size = st.Size()
		if c.Bool("shared-path") || st.Size() > bulkFileMax {
			jobs = append(jobs, []int{i})
			continue
		}
		cur = append(cur, i)
		curBytes += st.Size()
		if len(cur) >= limit || curBytes >= bulkMaxBytes {
			jobs = append(jobs, cur)
			cur, curBytes = nil, 0
			limit = min(2*limit, bulkMaxFiles)
		}
	}
	if len(cur) > 0 {
		jobs = append(jobs, cur)
	}
	var wg sync.WaitGroup
	next := make(chan []int)
	par := c.Int("parallel")
	if par < 1 {
		par = 1
	}
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range next {
				if len(job) == 1 && (c.Bool("shared-path") || ups[job[0]].size > bulkFileMax) {
					created[job[0]], errs[job[0]] = submitOne(c, cl, ups[job[0]], meta)
					continue
				}
				submitBulk(c, cl, ups, job, meta, created, errs)
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	var ok []transport.TaskView
	var failures []string
	for i := range ups {
		if errs[i] != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", ups[i].path, errs[i]))
			continue
		}
		ok = append(ok, created[i])
	}
	// Show a few failures; a cluster that is down must not print 20,000 lines.
	for i, f := range failures {
		if i == 5 && len(failures) > 6 {
			fmt.Fprintf(c.App.ErrWriter, "ragnode: ... and %d more failures\n", len(failures)-5)
			break
		}
		fmt.Fprintf(c.App.ErrWriter, "ragnode: submit %s\n", f)
	}
	if !c.Bool("wait") {
		if err := printTasks(c, ok); err != nil {
			return err
		}
	} else {
		final := ok
		if len(ok) > 0 { // nothing to wait for when every file was refused
			var err error
			if final, err = waitTasks(c, cl, ok); err != nil {
				return err
			}
		}
		if err := printTasks(c, final); err != nil {
			return err
		}
		bad := 0
		for _, t := range final {
			if t.State != "completed" {
				bad++
			}
		}
		if bad > 0 {
			return fmt.Errorf("%d of %d tasks did not complete", bad, len(final))
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d of %d files could not be submitted", len(failures), len(ups))
	}
	return nil
}

func submitOne(c *cli.Context, cl *transport.Client, u upload, meta map[string]any) (transport.TaskView, error) {
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Minute)
	defer cancel()
	var tv transport.TaskView
	err := whileBusy(ctx, c, func() (err error) {
		tv, err = submitOnce(ctx, c, cl, u, meta)
		return err
	})
	return tv, err
}

// whileBusy retries a submission the cluster refused for load (429),
// waiting what its Retry-After says and saying so, until ctx ends.
func whileBusy(ctx context.Context, c *cli.Context, try func() error) error {
	for {
		err := try()
		var se *transport.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests {
			return err
		}
		wait := max(se.RetryAfter, time.Second)
		fmt.Fprintf(c.App.ErrWriter, "ragnode: %s; retrying in %s\n", se.Msg, wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func submitOnce(ctx context.Context, c *cli.Context, cl *transport.Client, u upload, meta map[string]any) (transport.TaskView, error) {
	req := transport.SubmitRequest{Partition: c.String("partition"), FileID: u.fileID, FileName: filepath.Base(u.path), Metadata: meta}
	if c.Bool("shared-path") {
		abs, err := filepath.Abs(u.path)
		if err != nil {
			return transport.TaskView{}, err
		}
		req.SharedPath = abs
		return cl.Submit(ctx, req, nil)
	}
	f, err := os.Open(u.path)
	if err != nil {
		return transport.TaskView{}, err
	}
	defer f.Close()
	return cl.Submit(ctx, req, f)
}

func terminal(state string) bool {
	return state == "completed" || state == "failed" || state == "cancelled"
}

// waitPoll is how often --wait asks the ledger.
const waitPoll = 500 * time.Millisecond

// waitTasks polls until every task ends, showing progress on stderr.
func waitTasks(c *cli.Context, cl *transport.Client, tasks []transport.TaskView) ([]transport.TaskView, error) {
	want := map[string]int{}
	for i, t := range tasks {
		want[t.ID] = i
	}
	final := append([]transport.TaskView(nil), tasks...)
	prog := newProgress(c.App.ErrWriter, realClock{})
	defer prog.done()
	partitions := map[string]bool{}
	for _, t := range tasks {
		partitions[t.Partition] = true
	}
	misses := 0
	for {
		for p := range partitions {
			ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
			all, err := cl.Tasks(ctx, "", p)
			cancel()
			if err != nil {
				misses++
				if misses > 20 {
					return final, fmt.Errorf("wait: %w", err)
				}
				continue
			}
			misses = 0
			for _, t := range all {
				if i, ok := want[t.ID]; ok {
					final[i] = t
				}
			}
		}
		n := taskCounts(final)
		prog.update(n)
		if n.finished() == n.Total {
			return final, nil
		}
		select {
		case <-c.Context.Done():
			return final, c.Context.Err()
		case <-time.After(waitPoll):
		}
	}
}

// taskCounts counts the tasks by the state the ledger last gave them.
func taskCounts(ts []transport.TaskView) counts {
	n := counts{Total: len(ts)}
	for _, t := range ts {
		switch {
		case t.State == "completed":
			n.Done++
		case terminal(t.State):
			n.Failed++
		case t.State == "running" || t.State == "assigned":
			n.Running++
		}
	}
	return n
}

func printTasks(c *cli.Context, ts []transport.TaskView) error {
	if jsonOut(c) {
		out := make([]taskOut, len(ts))
		for i, t := range ts {
			out[i] = taskJSON(t)
		}
		return printJSON(c.App.Writer, out)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tPARTITION\tFILE\tNODE\tATTEMPT\tCHUNKS\tERROR")
	for _, t := range ts {
		state := t.State
		if t.Stage != "" && t.State == "running" {
			state += "(" + t.Stage + ")"
		}
		// ERROR is the last column: whole, it widens no other.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", t.ID, state, t.Partition, t.FileID, dash(short(t.NodeID)), t.Attempt, t.Chunks, flat(t.Error))
	}
	return tw.Flush()
}

// taskOut is a task as -o json prints it: the API's fields, with times
// in RFC 3339 (UTC) rather than the API's Unix nanoseconds.
type taskOut struct {
	transport.TaskView
	Submitted string `json:"submitted"`
	Started   string `json:"started,omitempty"`
	Finished  string `json:"finished,omitempty"`
}

func taskJSON(t transport.TaskView) taskOut {
	return taskOut{TaskView: t, Submitted: rfc3339(t.Submitted), Started: rfc3339(t.Started), Finished: rfc3339(t.Finished)}
}

// rfc3339 formats Unix nanoseconds for JSON output; 0 (never) is "".
func rfc3339(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// tableTime formats Unix nanoseconds for tables, in local time; 0 is "-".
func tableTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).Local().Format("2006-01-02 15:04:05")
}

// flat makes s one line.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

// wrap cuts s into lines of at most width characters at spaces (a word
// longer than width keeps its own line).
func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}

// took says how long from a to b, for tasks show: " (ran 3.2s)".
func took(a, b int64, what string) string {
	if a == 0 || b == 0 || b < a {
		return ""
	}
	d := time.Duration(b - a)
	if d >= time.Second {
		d = d.Round(100 * time.Millisecond)
	} else {
		d = d.Round(time.Millisecond)
	}
	return fmt.Sprintf(" (%s %s)", what, d)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func tasksCommand() *cli.Command {
	return &cli.Command{
		Name:  "tasks",
		Usage: "list tasks; 'tasks show ID', 'tasks cancel ID'",
		Flags: clientFlags(
			&cli.StringFlag{Name: "state", Usage: "queued, assigned, running, completed, failed, cancelled or prefetched"},
			&cli.StringFlag{Name: "partition", Usage: "only this partition"},
		),
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			switch c.String("state") {
			case "", "queued", "assigned", "running", "completed", "failed", "cancelled", "prefetched":
			default:
				return fmt.Errorf("--state %q: want queued, assigned, running, completed, failed, cancelled or prefetched", c.String("state"))
			}
			ctx, cancel := reqCtx(c)
			defer cancel()
			ts, err := cl.Tasks(ctx, c.String("state"), c.String("partition"))
			if err != nil {
				return err
			}
			return printTasks(c, ts)
		},
		Subcommands: []*cli.Command{
			{
				Name: "show", Usage: "show one task", ArgsUsage: "ID", Flags: clientFlags(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("tasks show takes one task ID")
					}
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					ctx, cancel := reqCtx(c)
					defer cancel()
					t, err := cl.Task(ctx, c.Args().First())
					if err != nil {
						return err
					}
					if jsonOut(c) {
						return printJSON(c.App.Writer, taskJSON(t))
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					rows := [][2]string{{"id", t.ID}, {"state", t.State}, {"stage", dash(t.Stage)}, {"partition", t.Partition},
						{"file", t.FileID}, {"filename", t.FileName}, {"size", fmt.Sprint(t.Size)}, {"node", dash(t.NodeID)},
						{"attempt", fmt.Sprint(t.Attempt)}, {"failures", fmt.Sprint(t.Failures)}, {"chunks", fmt.Sprint(t.Chunks)},
						{"submitted", tableTime(t.Submitted)}, {"started", tableTime(t.Started) + took(t.Submitted, t.Started, "queued")},
						{"finished", tableTime(t.Finished) + took(t.Started, t.Finished, "ran")}}
					// The whole error, wrapped: it is why one runs tasks show.
					for i, l := range wrap(dash(t.Error), 100) {
						k := ""
						if i == 0 {
							k = "error"
						}
						rows = append(rows, [2]string{k, l})
					}
					keys := make([]string, 0, len(t.Metadata))
					for k := range t.Metadata {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						rows = append(rows, [2]string{"metadata." + k, fmt.Sprint(t.Metadata[k])})
					}
					for _, r := range rows {
						fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
					}
					return tw.Flush()
				},
			},
			{
				Name: "cancel", Usage: "cancel a task", ArgsUsage: "ID", Flags: clientFlags(),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("tasks cancel takes one task ID")
					}
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					ctx, cancel := reqCtx(c)
					defer cancel()
					if err := cl.Cancel(ctx, c.Args().First()); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "cancelled %s\n", c.Args().First())
					return nil
				},
			},
		},
	}
}
