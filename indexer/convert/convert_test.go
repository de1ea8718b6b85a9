package convert

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	c, err := Parse(" .PDF = marker_single {in} --output {out} ")
	if err != nil || c.Ext != "pdf" || c.Command != "marker_single {in} --output {out}" {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	for _, bad := range []string{"pdf", "=cmd {in}", "pdf=", "pdf=cmd {out}", "pdf=cmd '{in}", `pdf=cmd "{in}`, "a/b=cmd {in}"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	s := Set{}
	if err := s.Add("DOCX=pandoc {in} -o {out}"); err != nil {
		t.Fatal(err)
	}
	if c, ok := s.For(".Docx"); !ok || c.Ext != "docx" {
		t.Fatalf("For = %+v %v", c, ok)
	}
}

func TestSplitArgs(t *testing.T) {
	tests := map[string][]string{
		`a b  c`:                  {"a", "b", "c"},
		`sh -c "echo $X > {out}"`: {"sh", "-c", "echo $X > {out}"},
		`x 'single "q" \n' y`:     {"x", `single "q" \n`, "y"},
		`x "a \"b\" \\ \n"`:       {"x", `a "b" \ \n`},
		`x a\ b ""`:               {"x", "a b", ""},
		`x pre"mid"'end'`:         {"x", "premidend"},
		"":                        nil,
	}
	for in, want := range tests {
		got, err := splitArgs(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := splitArgs(`x \`); err == nil {
		t.Error("trailing backslash accepted")
	}
}

func run(t *testing.T, spec string, data []byte, gpu int) ([]byte, error) {
	t.Helper()
	c, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Run(ctx, data, gpu, t.TempDir())
}

func TestRunOutFileAndGPU(t *testing.T) {
	out, err := run(t, `pdf=sh -c "echo gpu=$CUDA_VISIBLE_DEVICES > {out}; cat {in} >> {out}; case {in} in *.pdf) echo ext-ok >> {out};; esac"`, []byte("DATA"), 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != "gpu=3\nDATAext-ok\n" {
		t.Fatalf("out = %q", got)
	}
	out, err = run(t, `pdf=sh -c "echo gpu=[$CUDA_VISIBLE_DEVICES] > {out}" {in}`, nil, -1)
	if err != nil || string(out) != "gpu=[]\n" {
		t.Fatalf("out = %q, %v", out, err)
	}
}

func TestRunStdout(t *testing.T) {
	out, err := run(t, "txt=cat {in}", []byte("# Hello\n"), 0)
	if err != nil || string(out) != "# Hello\n" {
		t.Fatalf("out = %q, %v", out, err)
	}
}

func TestRunOutDirectory(t *testing.T) {
	out, err := run(t, `pdf=sh -c "mkdir -p {out}/x && echo small > {out}/a.md && echo much-larger-text > {out}/x/b.md" {in}`, nil, 0)
	if err != nil || string(out) != "much-larger-text\n" {
		t.Fatalf("out = %q, %v", out, err)
	}
}

func TestRunNoShellInjection(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	out, err := run(t, "txt=echo {in} ; touch "+marker, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("command went through a shell")
	}
	if !strings.Contains(string(out), "; touch") {
		t.Fatalf("out = %q", out)
	}
}

func TestRunFailure(t *testing.T) {
	_, err := run(t, `pdf=sh -c "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i >&2; done; exit 3" {in}`, nil, 0)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "convert pdf") || !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, "line12") || strings.Contains(msg, "line2\n") {
		t.Fatalf("err = %q", msg)
	}
	if _, err := run(t, "pdf=true {in} {out}", nil, 0); err == nil || !strings.Contains(err.Error(), "no output file") {
		t.Fatalf("missing output: err = %v", err)
	}
	if _, err := run(t, "pdf=/nonexistent/converter {in}", nil, 0); err == nil || !strings.Contains(err.Error(), "start") {
		t.Fatalf("missing binary: err = %v", err)
	}
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A killed child reparented to a non-reaping init stays a zombie.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func TestRunTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	c, err := Parse(`pdf=sh -c "sleep 10 & echo $! > ` + pidFile + `; sleep 10" {in}`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Run(ctx, nil, 0, dir)
	if err == nil || !strings.Contains(err.Error(), "killed") || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Run returned after %v", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("background child %d survived", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "ragnode-convert-") {
			t.Fatalf("temp dir %s left behind", e.Name())
		}
	}
}

func TestRunBackgroundChildDoesNotBlock(t *testing.T) {
	start := time.Now()
	out, err := run(t, `txt=sh -c "sleep 30 & echo done" {in}`, nil, 0)
	if err != nil || string(out) != "done\n" {
		t.Fatalf("out = %q, %v", out, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}
