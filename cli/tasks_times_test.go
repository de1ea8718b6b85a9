package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTasksTimesAndErrors: tasks show has the submitted, started and
// finished times in local time and the whole error; -o json has RFC 3339
// times; submit --wait to a non-terminal stderr writes plain lines that
// end exact.
func TestTasksTimesAndErrors(t *testing.T) {
	n := startNode(t, "tok")
	addr := n.HTTPAddr()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("beta"), 0o644)
	out, errOut, code := run(t, "submit", dir, "--addr", addr, "--token", "tok", "--wait", "-o", "json")
	if code != 0 {
		t.Fatalf("submit --wait: %d %s", code, errOut)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("carriage returns written to a non-terminal stderr: %q", errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "done 2  failed 0  running 0  queued 0") || !strings.Contains(last, "2/2 100%") {
		t.Errorf("last progress line %q (all: %q)", last, errOut)
	}
	var tasks []map[string]any
	if err := json.Unmarshal([]byte(out), &tasks); err != nil || len(tasks) != 2 {
		t.Fatalf("submit -o json: %v %s", err, out)
	}
	for _, tk := range tasks {
		for _, k := range []string{"submitted", "started", "finished"} {
			s, _ := tk[k].(string)
			if ts, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") || time.Since(ts) > time.Hour {
				t.Errorf("task %s %s = %v, want an RFC 3339 UTC time", tk["file_id"], k, tk[k])
			}
		}
	}
	id := tasks[0]["id"].(string)
	out, _, code = run(t, "tasks", "show", id, "--addr", addr, "--token", "tok")
	if code != 0 {
		t.Fatalf("tasks show: %d", code)
	}
	for _, k := range []string{"submitted", "started", "finished"} {
		re := k + ` +` + time.Now().Format("2006-01-02") + ` \d\d:\d\d:\d\d`
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("tasks show lacks %s in local time (%s):\n%s", k, re, out)
		}
	}
	if !strings.Contains(out, "(ran ") {
		t.Errorf("tasks show does not say how long the task ran:\n%s", out)
	}
	out, _, code = run(t, "tasks", "show", id, "--addr", addr, "--token", "tok", "-o", "json")
	var one map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &one) != nil {
		t.Fatalf("tasks show -o json: %d %s", code, out)
	}
	if _, err := time.Parse(time.RFC3339Nano, one["submitted"].(string)); err != nil {
		t.Errorf("tasks show -o json submitted: %v", one["submitted"])
	}
	out, _, _ = run(t, "tasks", "--addr", addr, "--token", "tok", "-o", "json")
	if !strings.Contains(out, `"finished": "`+time.Now().UTC().Format("2006-01-02")) {
		t.Errorf("tasks -o json without RFC 3339 times:\n%s", out)
	}
}

// TestLongErrorShown: a long error is whole in the task list's last column
// and wrapped in tasks show, never cut.
func TestLongErrorShown(t *testing.T) {
	msg := strings.Repeat("the converter could not read page seven because ", 5) + "END"
	if got := flat(msg + "\n"); !strings.HasSuffix(got, "END") || strings.Contains(got, "...") {
		t.Errorf("flat cut the error: %q", got)
	}
	lines := wrap(msg, 100)
	if len(lines) < 2 || strings.Join(lines, " ") != strings.TrimSpace(msg) {
		t.Errorf("wrap lost words: %q", lines)
	}
	for _, l := range lines {
		if len(l) > 100 {
			t.Errorf("wrapped line over 100: %q", l)
		}
	}
}
