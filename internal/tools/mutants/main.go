// Command mutants checks that the tests catch known bugs. It reads a list of
// named one-line bugs (mutants.txt next to this file), applies each to a
// temporary copy of the module (never the working tree), runs the tests
// named for it, and reports whether they failed (killed) or passed
// (survived). It exits 1 if any bug survived, or if a bug's snippet is no
// longer found in its file (stale: update the list), or its mutated code
// does not build.
//
// It is slow (each bug re-runs tests), so it is not part of CI. From the
// module root:
//
//	go run ./internal/tools/mutants                  # every bug
//	go run ./internal/tools/mutants -run 'origin'     # bugs whose name matches
//	go run ./internal/tools/mutants -race -v          # tests with -race, print their output
//
// The list's format: blocks separated by blank lines, "key: value" lines,
// "#" comments. Keys: name, file (relative to the module root), find (an
// exact snippet that must occur exactly once in the file), replace, run
// (the -run regular expression), pkg (default "."; several, space-separated,
// for a bug whose tests live in more than one package), race (true: always with
// -race, for a test that needs the race detector's slower scheduling to see
// the bug every time). A value in double
// quotes is a Go string literal (for \n and \t); otherwise it is taken as
// is, without its surrounding spaces.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A mutant is one deliberate bug and the tests that must catch it.
type mutant struct {
	Name, File, Find, Replace, Run, Pkg string
	Race                                bool // always run its tests with -race
	line                                int  // in the list, for messages
}

func main() {
	list := flag.String("list", "", "the list of bugs (default: internal/tools/mutants/mutants.txt under the module root)")
	only := flag.String("run", "", "only the bugs whose name matches this regular expression")
	race := flag.Bool("race", false, "run the tests with -race")
	verbose := flag.Bool("v", false, "print the test output of every bug")
	timeout := flag.Duration("timeout", 5*time.Minute, "per test run")
	flag.Parse()

	root, err := moduleRoot()
	if err != nil {
		fatal(err)
	}
	if *list == "" {
		*list = filepath.Join(root, "internal", "tools", "mutants", "mutants.txt")
	}
	ms, err := readList(*list)
	if err != nil {
		fatal(err)
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fatal(err)
		}
		var keep []mutant
		for _, m := range ms {
			if re.MatchString(m.Name) {
				keep = append(keep, m)
			}
		}
		ms = keep
	}
	if len(ms) == 0 {
		fatal(errors.New("no bugs to try"))
	}

	tmp, err := os.MkdirTemp("", "mutants-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := copyModule(root, tmp); err != nil {
		fatal(err)
	}
	r := runner{dir: tmp, race: *race, timeout: *timeout}

	// The tests must pass before any bug is applied, or "killed" means nothing.
	baseline := map[string]bool{}
	for _, m := range ms {
		key := fmt.Sprint(m.Pkg, " ", m.Run, " ", m.Race)
		if baseline[key] {
			continue
		}
		baseline[key] = true
		if out, err := r.test(m); err != nil {
			fmt.Printf("BASELINE FAILS  go test -run %q %s\n%s\n", m.Run, m.Pkg, out)
			os.Exit(1)
		}
	}

	counts := map[string]int{}
	for _, m := range ms {
		status, out := r.try(m)
		counts[status]++
		fmt.Printf("%-8s %s\n", status, m.Name)
		if *verbose || status != "killed" {
			fmt.Printf("         %s: %q -> %q, -run %q\n", m.File, m.Find, m.Replace, m.Run)
		}
		if *verbose || status == "error" {
			fmt.Println(indent(out))
		}
	}
	fmt.Printf("\n%d bugs: %d killed, %d survived, %d stale, %d error\n",
		len(ms), counts["killed"], counts["survived"], counts["stale"], counts["error"])
	if counts["killed"] != len(ms) {
		os.Exit(1)
	}
}

type runner struct {
	dir     string
	race    bool
	timeout time.Duration
}

// try applies m to the copy, runs its tests and restores the file. The
// status is killed, survived, stale (the snippet is not found, or found
// more than once) or error (the mutated code does not build).
func (r runner) try(m mutant) (status, output string) {
	path := filepath.Join(r.dir, filepath.FromSlash(m.File))
	orig, err := os.ReadFile(path)
	if err != nil {
		return "stale", err.Error()
	}
	switch n := bytes.Count(orig, []byte(m.Find)); n {
	case 1:
	case 0:
		return "stale", "snippet not found in " + m.File
	default:
		return "stale", fmt.Sprintf("snippet found %d times in %s: make it unique", n, m.File)
	}
	mutated := bytes.Replace(orig, []byte(m.Find), []byte(m.Replace), 1)
	if err := os.WriteFile(path, mutated, 0o644); err != nil {
		return "error", err.Error()
	}
	defer os.WriteFile(path, orig, 0o644)

	out, err := r.test(m)
	switch {
	case err == nil:
		return "survived", out
	case strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]"):
		return "error", out
	}
	return "killed", out
}

// test runs m's tests in the copy.
func (r runner) test(m mutant) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout+time.Minute)
	defer cancel()
	args := []string{"test", "-count=1", "-timeout", r.timeout.String(), "-run", m.Run}
	if r.race || m.Race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, strings.Fields(m.Pkg)...)...)
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// readList parses the list of bugs.
func readList(path string) ([]mutant, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []mutant
	var cur *mutant
	names := map[string]bool{}
	finish := func() error {
		if cur == nil {
			return nil
		}
		m := *cur
		cur = nil
		if m.Name == "" || m.File == "" || m.Find == "" || m.Run == "" {
			return fmt.Errorf("%s:%d: a bug needs name, file, find and run", path, m.line)
		}
		if m.Find == m.Replace {
			return fmt.Errorf("%s:%d: %s: replace is the same as find", path, m.line, m.Name)
		}
		if names[m.Name] {
			return fmt.Errorf("%s:%d: %s: a second bug of that name", path, m.line, m.Name)
		}
		names[m.Name] = true
		if m.Pkg == "" {
			m.Pkg = "."
		}
		ms = append(ms, m)
		return nil
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if trimmed == "" {
			if err := finish(); err != nil {
				return nil, err
			}
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want key: value", path, n)
		}
		value = strings.TrimSpace(value)
		if strings.HasPrefix(value, `"`) {
			v, err := strconv.Unquote(value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, n, err)
			}
			value = v
		}
		if cur == nil {
			cur = &mutant{line: n}
		}
		switch strings.TrimSpace(key) {
		case "name":
			cur.Name = value
		case "file":
			cur.File = value
		case "find":
			cur.Find = value
		case "replace":
			cur.Replace = value
		case "run":
			cur.Run = value
		case "pkg":
			cur.Pkg = value
		case "race":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: race: %v", path, n, err)
			}
			cur.Race = b
		default:
			return nil, fmt.Errorf("%s:%d: unknown key %q", path, n, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return ms, nil
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in this directory or above")
		}
		dir = parent
	}
}

// copyModule copies the module's files to dst, without version control
// directories.
func copyModule(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if d.Name() == ".git" || (rel != "." && strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci") {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "         | " + strings.ReplaceAll(s, "\n", "\n         | ")
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mutants:", err)
	os.Exit(2)
}
