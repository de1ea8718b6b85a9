// Package convert runs operator-configured external converters (for example
// a GPU PDF-to-markdown tool) on uploaded files.
//
// Guarantees: commands are split into argv with shell-like quoting and run
// directly, never through a shell, so file names and data cannot inject
// commands. Each run gets a private temporary directory that is removed
// afterwards. The command runs in its own process group with
// CUDA_VISIBLE_DEVICES set (empty when no GPU is assigned), and the whole
// group is killed when the context ends. A failed run returns an error
// naming the converter and carrying the last lines of its stderr.
package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Hooks for a process that runs converters under limits of its own (the
// parser child, indexer/contain): Prepare adjusts a converter's command
// before it starts, OnStart sees its pid right after. Set once at start-up.
var (
	Prepare func(cmd *exec.Cmd)
	OnStart func(pid int)
)

// Converter is one "EXT=COMMAND" rule.
type Converter struct {
	Ext     string // lower case, without the dot
	Command string // argv template with {in} and optionally {out}
}

// Set holds converters by lower-case extension without the dot.
type Set map[string]Converter

const (
	inPlaceholder  = "{in}"
	outPlaceholder = "{out}"
	stderrLines    = 10
	stderrKeep     = 64 << 10
	maxOutput      = 1 << 30
)

// Parse reads a "--converter" value: "pdf=marker_single {in} --output {out}".
func Parse(spec string) (Converter, error) {
	ext, cmd, ok := strings.Cut(spec, "=")
	if !ok {
		return Converter{}, fmt.Errorf("converter %q: want EXT=COMMAND", spec)
	}
	ext = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(ext), "."))
	cmd = strings.TrimSpace(cmd)
	if ext == "" || strings.ContainsAny(ext, "./\\ \t") {
		return Converter{}, fmt.Errorf("converter %q: bad extension %q", spec, ext)
	}
	if cmd == "" {
		return Converter{}, fmt.Errorf("converter %q: empty command", spec)
	}
	argv, err := splitArgs(cmd)
	if err != nil {
		return Converter{}, fmt.Errorf("converter %q: %v", spec, err)
	}
	if !strings.Contains(cmd, inPlaceholder) {
		return Converter{}, fmt.Errorf("converter %q: command lacks the %s placeholder", spec, inPlaceholder)
	}
	if len(argv) == 0 {
		return Converter{}, fmt.Errorf("converter %q: empty command", spec)
	}
	return Converter{Ext: ext, Command: cmd}, nil
}

// Add parses spec and stores it, replacing an earlier rule for the same
// extension.
func (s Set) Add(spec string) error {
	c, err := Parse(spec)
	if err != nil {
		return err
	}
	s[c.Ext] = c
	return nil
}

// For returns the converter for a file extension (with or without dot, any
// case).
func (s Set) For(ext string) (Converter, bool) {
	c, ok := s[strings.ToLower(strings.TrimPrefix(ext, "."))]
	return c, ok
}

// splitArgs splits a command line like a POSIX shell would for words:
// single quotes are literal, double quotes allow \" \\ \$ \` escapes, and a
// backslash outside quotes escapes the next character. No expansion.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
		case c == '\\':
			inWord = true
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// Run converts data: it writes it to {in} (keeping the extension) in a
// fresh directory under tmpDir ("" = system default), runs the command and
// returns the contents of {out}, or the command's stdout when the command
// has no {out}. If the command treats {out} as a directory, the largest
// markdown file written under it is returned.
func (c Converter) Run(ctx context.Context, data []byte, gpu int, tmpDir string) ([]byte, error) {
	argv, err := splitArgs(c.Command)
	if err != nil || len(argv) == 0 {
		return nil, fmt.Errorf("convert %s: bad command %q: %v", c.Ext, c.Command, err)
	}
	dir, err := os.MkdirTemp(tmpDir, "ragnode-convert-")
	if err != nil {
		return nil, fmt.Errorf("convert %s: temp dir: %w", c.Ext, err)
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "input."+c.Ext)
	out := filepath.Join(dir, "output.md")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		return nil, fmt.Errorf("convert %s: write input: %w", c.Ext, err)
	}
	useOut := strings.Contains(c.Command, outPlaceholder)
	for i, a := range argv {
		a = strings.ReplaceAll(a, inPlaceholder, in)
		argv[i] = strings.ReplaceAll(a, outPlaceholder, out)
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = withCUDA(os.Environ(), gpu)
	stderr := &tailBuffer{max: stderrKeep}
	cmd.Stderr = stderr
	var stdout limitedBuffer
	if !useOut {
		cmd.Stdout = &stdout
	}
	setProcessGroup(cmd)
	// A background child that inherited stderr would otherwise keep Wait
	// blocked after the leader exits; the group is killed right after.
	cmd.WaitDelay = time.Second
	if Prepare != nil {
		Prepare(cmd)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("convert %s: start %s: %w", c.Ext, argv[0], err)
	}
	if OnStart != nil {
		OnStart(cmd.Process.Pid)
	}
	// exec.CommandContext would kill only the leader; converters spawn
	// workers (python, GPU helpers) that must die with it.
	done := make(chan struct{})
	exited := make(chan struct{})
	killed := false
	go func() {
		defer close(exited)
		select {
		case <-ctx.Done():
			killGroup(cmd)
			killed = true
		case <-done:
		}
	}()
	waitErr := cmd.Wait()
	close(done)
	// Wait for the watcher: Wait can return (the leader died of our kill)
	// before the watcher records that it was the one that killed it.
	<-exited
	if killed {
		return nil, fmt.Errorf("convert %s: %s killed: %w%s", c.Ext, argv[0], ctx.Err(), stderr.lastLines(stderrLines))
	}
	// The leader exited; stray children must not outlive the run either.
	killGroup(cmd)
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		return nil, fmt.Errorf("convert %s: %s failed: %v%s", c.Ext, argv[0], waitErr, stderr.lastLines(stderrLines))
	}
	if stdout.over {
		return nil, fmt.Errorf("convert %s: output larger than %d MiB", c.Ext, maxOutput>>20)
	}
	if !useOut {
		return stdout.Bytes(), nil
	}
	return readOutput(c.Ext, out, stderr)
}

func readOutput(ext, out string, stderr *tailBuffer) ([]byte, error) {
	fi, err := os.Stat(out)
	if err != nil {
		return nil, fmt.Errorf("convert %s: command exited 0 but wrote no output file%s", ext, stderr.lastLines(stderrLines))
	}
	if !fi.IsDir() {
		if fi.Size() > maxOutput {
			return nil, fmt.Errorf("convert %s: output larger than %d MiB", ext, maxOutput>>20)
		}
		return os.ReadFile(out)
	}
	best, size := "", int64(-1)
	_ = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.EqualFold(filepath.Ext(p), ".md") {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Size() > size && info.Size() <= maxOutput {
			best, size = p, info.Size()
		}
		return nil
	})
	if best == "" {
		return nil, fmt.Errorf("convert %s: output directory holds no .md file", ext)
	}
	return os.ReadFile(best)
}

func withCUDA(env []string, gpu int) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, "CUDA_VISIBLE_DEVICES=") {
			out = append(out, e)
		}
	}
	v := ""
	if gpu >= 0 {
		v = strconv.Itoa(gpu)
	}
	return append(out, "CUDA_VISIBLE_DEVICES="+v)
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) lastLines(n int) string {
	s := strings.TrimRight(string(bytes.ToValidUTF8(t.buf, []byte("?"))), "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "; stderr: " + strings.Join(lines, "\n")
}

type limitedBuffer struct {
	bytes.Buffer
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > maxOutput {
		l.over = true
		return len(p), nil
	}
	return l.Buffer.Write(p)
}
