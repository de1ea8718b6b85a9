// Package catalogtest starts a real, throw-away PostgreSQL for tests: the
// server binaries of Debian's postgresql package (initdb and pg_ctl under
// /usr/lib/postgresql/<version>/bin, which are not on PATH), a data
// directory in a temporary folder, listening only on a unix socket there.
// PostgreSQL refuses to run as root, so under root the server runs as the
// unprivileged user nobody (setuid through exec's SysProcAttr).
package catalogtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// Bin returns the directory holding initdb and pg_ctl (the newest
// installed version), or "" when none is installed.
func Bin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// Start runs a PostgreSQL server for the test and returns its DSN; the
// server is stopped when the test ends. The test is skipped, naming what
// is missing, when PostgreSQL is not installed.
func Start(t testing.TB) string {
	t.Helper()
	bin := Bin()
	if bin == "" {
		t.Skip("PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql")
	}
	root, err := os.MkdirTemp("", "ragnode-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	data, sock := filepath.Join(root, "data"), filepath.Join(root, "sock")
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534} // nobody:nogroup
	}
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = root
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + root}
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"); err != nil {
		t.Fatal(err)
	}
	// No TCP at all: the socket in the temp dir is the only way in.
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -p 5432 -c fsync=off", sock)
	if err := run("pg_ctl", "start", "-D", data, "-w", "-t", "60", "-l", filepath.Join(data, "log"), "-o", opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run("pg_ctl", "stop", "-D", data, "-m", "immediate", "-w") })
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres sslmode=disable", sock)
}
