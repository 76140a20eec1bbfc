package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// TestREADMEDemo follows the demo section of the README as a newcomer does
// (issue #20, item 12): it starts the demo the way `make run` does, then
// runs every command of the section's code blocks as written, in one shell
// of "another terminal" that has only what a new terminal has (PATH, HOME),
// and checks what each shows; the command `send-sample` prints to follow
// the report is then run in a shell of its own.
//
// One difference from `make run`: scripts/demo is given a test database
// (MSSDISPATCH_DATABASE_URL, which it documents) instead of starting its
// private PostgreSQL with initdb, and free ports for HTTP and MLLP instead
// of 8080 and 2575, which a developer's own demo may hold; the commands
// read them from .run/demo.env as the README's do. It runs in a copy of the
// repository made of links, so that its .run/ is its own.
func TestREADMEDemo(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary and runs the demo")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the README's commands need curl")
	}
	blocks := readmeDemoBlocks(t, "../../README.md")
	require.GreaterOrEqual(t, len(blocks), 2, "the demo section: how to start it, then commands")
	require.Equal(t, []string{"make run", "make test"}, withoutComments(blocks[0]), "the demo starts with make run")
	makefile, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^run: build ##.*\n\tscripts/demo\n`, string(makefile), "make run is build, then scripts/demo: what this test runs")

	root := demoCheckout(t)
	dbURL := pgtest.NewDatabase(t)
	httpAddr := freeAddr(t)
	newcomer := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	demo := startDemo(t, root, append(slices.Clone(newcomer), "MSSDISPATCH_DATABASE_URL="+dbURL,
		"MSSDISPATCH_HTTP_ADDR="+httpAddr, "MSSDISPATCH_MLLP_ADDR="+freeAddr(t)))
	banner := demo.output.String()
	require.Contains(t, banner, "Database:  "+dbURL, "make run prints the database URL")
	require.Contains(t, banner, ". .run/demo.env")

	term := newShell(t, root, newcomer)
	var follow string // the command send-sample prints
	used := map[*readmeExpectation]bool{}
	for _, block := range blocks[1:] {
		for _, command := range shellCommands(block) {
			e := expectationOf(t, command)
			used[e] = true
			deadline := time.Now().Add(30 * time.Second)
			for {
				out, status := term.run(t, command)
				t.Logf("$ %s\n%s[exit status %d]", command, out, status)
				err := e.check(out, status)
				if err == nil {
					if e.follow {
						follow = followLine(t, out)
					}
					break
				}
				if !e.eventually || time.Now().After(deadline) {
					t.Fatalf("README command\n%s\nexit status %d, output:\n%s\n%v\ndemo's output:\n%s", command, status, out, err, demo.output)
				}
				time.Sleep(200 * time.Millisecond) // polls the check: the service works in the background
			}
		}
	}
	for i := range readmeExpectations {
		require.True(t, used[&readmeExpectations[i]], "the README no longer runs %s", readmeExpectations[i].command)
	}

	// What send-sample prints works in a new terminal, with nothing set.
	require.NotEmpty(t, follow)
	require.Eventually(t, func() bool {
		cmd := exec.Command("sh", "-c", follow)
		cmd.Dir, cmd.Env = t.TempDir(), newcomer
		out, err := cmd.CombinedOutput()
		if err != nil {
			return false
		}
		return sampleFollowed(out) == nil
	}, 30*time.Second, 200*time.Millisecond, "%s", follow)

	demo.stop(t)
}

// readmeExpectation is what a command of the README shows.
type readmeExpectation struct {
	command *regexp.Regexp // matches the command, its continuation lines and here-document included
	// eventually: the command is run again until check holds, as a reader
	// would after a moment, the service working in the background.
	eventually bool
	// follow: the output holds the line "follow it:" (send-sample).
	follow bool
	check  func(out string, status int) error
}

// readmeExpectations has one entry per command of the README's demo; a
// command without one fails the test.
var readmeExpectations = []readmeExpectation{
	{command: regexp.MustCompile(`^\. \.run/demo\.env\b`), check: quiet0},
	{command: regexp.MustCompile(`^bin/mssdispatch send-sample\b`), follow: true, check: func(out string, status int) error {
		return all(exit0(status), contains(out, ": ACK AA\n"), contains(out, "\ndocument_id: 1.2.250.1.999.42.1.4^DEMO-"),
			contains(out, "\nfollow it:   curl "))
	}},
	{command: regexp.MustCompile(`^ls \.run/outbox\b`), eventually: true, check: func(out string, status int) error {
		if n := strings.Count(out, ".eml\n"); status != 0 || n < 2 {
			return fmt.Errorf("want the emails to Claire DUPONT-DEMO and Julie ROUX, got %d .eml", n)
		}
		return nil
	}},
	{command: regexp.MustCompile(`^curl .*/api/v1/directory/resolve\?rpps=99900000001"`), check: func(out string, status int) error {
		return all(exit0(status), contains(out, `"name":"Jean MARTIN"`), contains(out, `"reason":"several_addresses"`),
			contains(out, "jean.martin@ch-demo.mssante.fr, jean.martin@medecin-demo.mssante.fr"))
	}},
	{command: regexp.MustCompile(`^bin/mssdispatch rules dry-run testdata/demo/regles-cme\.yaml\b`), check: func(out string, status int) error {
		return all(exit0(status), contains(out, "against the rules in force (version 1): no delivery would change."))
	}},
	{command: regexp.MustCompile(`^id="1\.2\.250\.1\.999\.42\.1\.4\^BIO-\$\(date \+%s\)"`), check: quiet0},
	{command: regexp.MustCompile(`^pdf=\$\(base64 < cmd/mssdispatch/sample/compte-rendu\.pdf`), check: quiet0},
	{command: regexp.MustCompile(`(?s)^curl .*-H "Idempotency-Key: \$id".*/api/v1/reports" <<EOF\n`), check: func(out string, status int) error {
		if err := exit0(status); err != nil {
			return err
		}
		var v readmodel.ReportView
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return fmt.Errorf("not a report: %w", err)
		}
		if v.ID == 0 || v.Status != dispatch.ReportReceived || !strings.HasPrefix(v.DocumentID, "1.2.250.1.999.42.1.4^BIO-") {
			return fmt.Errorf("want a new report received, got %+v", v)
		}
		if time.Since(v.ReceivedAt) > time.Minute || time.Until(v.ReceivedAt) > time.Minute {
			return fmt.Errorf("received_at %s is not when it was received", v.ReceivedAt)
		}
		return nil
	}},
	{command: regexp.MustCompile(`^curl -s -G --data-urlencode "document_id=\$id" .*/api/v1/reports"$`), eventually: true, check: func(out string, status int) error {
		if err := exit0(status); err != nil {
			return err
		}
		v, err := reportOf([]byte(out))
		if err != nil {
			return err
		}
		return all(hasDelivery(v, "280017512345678@patient.mssante.fr", dispatch.StatusScheduled),
			hasDelivery(v, "claire.dupont-demo@medecin-demo.mssante.fr", dispatch.StatusSent))
	}},
}

// sampleFollowed checks what the command send-sample prints shows: the
// sample's report, resolved as README.md says.
func sampleFollowed(out []byte) error {
	v, err := reportOf(out)
	if err != nil {
		return err
	}
	return all(hasDelivery(v, "claire.dupont-demo@medecin-demo.mssante.fr", dispatch.StatusSent),
		hasDelivery(v, "Claire DUPONT-DEMO", dispatch.StatusPaperPending),
		hasDelivery(v, "julie.roux@medecin-demo.mssante.fr", dispatch.StatusSent),
		hasDelivery(v, "Jean MARTIN", dispatch.StatusReview))
}

func reportOf(out []byte) (readmodel.ReportView, error) {
	var v readmodel.ReportView
	if err := json.Unmarshal(out, &v); err != nil {
		return v, fmt.Errorf("not a report: %w: %s", err, out)
	}
	if v.ReceivedAt.IsZero() {
		return v, errors.New("no received_at")
	}
	return v, nil
}

func hasDelivery(v readmodel.ReportView, recipient string, status dispatch.Status) error {
	for _, d := range v.Deliveries {
		if d.Recipient == recipient && d.Status == status {
			return nil
		}
	}
	return fmt.Errorf("no delivery to %s %s in %+v", recipient, status, v.Deliveries)
}

// quiet0 checks that a command succeeded without a word.
func quiet0(out string, status int) error {
	if out != "" {
		return fmt.Errorf("unexpected output")
	}
	return exit0(status)
}

func exit0(status int) error {
	if status != 0 {
		return fmt.Errorf("exit status %d", status)
	}
	return nil
}

func contains(out, want string) error {
	if !strings.Contains(out, want) {
		return fmt.Errorf("%q not shown", want)
	}
	return nil
}

func all(errs ...error) error { return errors.Join(errs...) }

// expectationOf returns the one expectation of a command.
func expectationOf(t *testing.T, command string) *readmeExpectation {
	t.Helper()
	var found *readmeExpectation
	for i := range readmeExpectations {
		if readmeExpectations[i].command.MatchString(command) {
			require.Nil(t, found, "two expectations for %s", command)
			found = &readmeExpectations[i]
		}
	}
	require.NotNil(t, found, "the README runs\n%s\nsay in readmeExpectations what it shows", command)
	return found
}

// followLine returns the command of send-sample's line "follow it:".
func followLine(t *testing.T, out string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(line, "follow it:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no follow it: line in %s", out)
	return ""
}

// readmeDemoBlocks returns the sh code blocks of the README's demo section
// ("## Two commands"), each as its lines.
func readmeDemoBlocks(t *testing.T, path string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(data), "\n## Two commands\n")
	require.True(t, ok, "README.md has no demo section")
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks [][]string
	var block []string
	in := false
	for line := range strings.Lines(section) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case !in && line == "```sh":
			in, block = true, nil
		case in && line == "```":
			in, blocks = false, append(blocks, block)
		case in:
			block = append(block, line)
		}
	}
	require.False(t, in, "a code block is not closed")
	return blocks
}

// withoutComments returns the lines of a block without their comments.
func withoutComments(block []string) []string {
	var out []string
	for _, l := range block {
		l, _, _ = strings.Cut(l, "#")
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

var heredoc = regexp.MustCompile(`<<-?\s*['"]?(\w+)['"]?`)

// shellCommands splits a block into the commands a reader pastes one by
// one: a line, with the lines it continues (a trailing backslash) and its
// here-document. Blank and comment lines are left out.
func shellCommands(block []string) []string {
	var out []string
	for i := 0; i < len(block); i++ {
		if l := strings.TrimSpace(block[i]); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		command := []string{block[i]}
		for strings.HasSuffix(block[i], `\`) && i+1 < len(block) {
			i++
			command = append(command, block[i])
		}
		if m := heredoc.FindStringSubmatch(block[i]); m != nil {
			for i+1 < len(block) {
				i++
				command = append(command, block[i])
				if strings.TrimSpace(block[i]) == m[1] {
					break
				}
			}
		}
		out = append(out, strings.Join(command, "\n"))
	}
	return out
}

// demoCheckout returns a copy of the repository made of links to its
// files, with the binary built in bin/ as `make build` does and a .run/ of
// its own.
func demoCheckout(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	root := t.TempDir()
	entries, err := os.ReadDir(repo)
	require.NoError(t, err)
	for _, e := range entries {
		if name := e.Name(); name != "bin" && name != ".run" && name != ".git" {
			require.NoError(t, os.Symlink(filepath.Join(repo, name), filepath.Join(root, name)))
		}
	}
	require.NoError(t, os.Mkdir(filepath.Join(root, "bin"), 0o755))
	require.NoError(t, os.Rename(buildBinary(t), filepath.Join(root, "bin", "mssdispatch")))
	return root
}

// runningDemo is scripts/demo running.
type runningDemo struct {
	cmd     *exec.Cmd
	output  *lockedBuffer
	done    chan error
	stopped bool
}

// startDemo runs scripts/demo in root with env, in a process group of its
// own as in a terminal, and waits until it serves.
func startDemo(t *testing.T, root string, env []string) *runningDemo {
	t.Helper()
	d := &runningDemo{cmd: exec.Command("scripts/demo"), output: &lockedBuffer{}, done: make(chan error, 1)}
	d.cmd.Dir, d.cmd.Env, d.cmd.Stdout, d.cmd.Stderr = root, env, d.output, d.output
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, d.cmd.Start())
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if !d.stopped {
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			t.Logf("scripts/demo killed: %v", <-d.done)
		}
	})
	deadline := time.After(time.Minute)
	for !strings.Contains(d.output.String(), "Ctrl-C stops") {
		select {
		case err := <-d.done:
			d.stopped = true
			t.Fatalf("scripts/demo stopped: %v\n%s", err, d.output)
		case <-deadline:
			t.Fatalf("scripts/demo did not start in a minute:\n%s", d.output)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, kv := range env {
		if addr, ok := strings.CutPrefix(kv, "MSSDISPATCH_HTTP_ADDR="); ok {
			waitReady(t, addr, d.output)
		}
	}
	return d
}

// stop presses Ctrl-C: the service and the script end cleanly.
func (d *runningDemo) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT))
	select {
	case err := <-d.done:
		d.stopped = true
		require.NoError(t, err, "%s", d.output)
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatalf("the demo did not stop on Ctrl-C:\n%s", d.output)
	}
}

// shell is one sh, as in a terminal: commands written to it one at a time
// share its state (variables, directory).
type shell struct {
	stdin io.WriteCloser
	lines chan string
	n     int
}

// marker ends the output of each command, with its exit status.
const marker = "@@readme-test-done"

func newShell(t *testing.T, dir string, env []string) *shell {
	t.Helper()
	cmd := exec.Command("sh")
	cmd.Dir, cmd.Env = dir, env
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	w.Close()
	s := &shell{stdin: stdin, lines: make(chan string)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(s.lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		go func() {
			for range s.lines { // drain
			}
		}()
		_ = cmd.Wait()
		wg.Wait()
		r.Close()
	})
	return s
}

// run runs one command and returns its output and exit status.
func (s *shell) run(t *testing.T, command string) (string, int) {
	t.Helper()
	s.n++
	end := fmt.Sprintf("%s %d", marker, s.n)
	_, err := fmt.Fprintf(s.stdin, "%s\nprintf '\\n%s %%d\\n' \"$?\"\n", command, end)
	require.NoError(t, err)
	var out []string
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-s.lines:
			require.True(t, ok, "the shell ended: %s", strings.Join(out, "\n"))
			if rest, found := strings.CutPrefix(line, end+" "); found {
				var status int
				_, err := fmt.Sscan(rest, &status)
				require.NoError(t, err)
				// The marker starts a line of its own: an output that
				// ended a line leaves an empty one before it.
				if len(out) > 0 && out[len(out)-1] == "" {
					out = out[:len(out)-1]
				}
				if len(out) == 0 {
					return "", status
				}
				return strings.Join(out, "\n") + "\n", status
			}
			out = append(out, line)
		case <-timeout:
			t.Fatalf("%s: no end after a minute: %s", command, strings.Join(out, "\n"))
		}
	}
}
