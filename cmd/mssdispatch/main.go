// Command mssdispatch receives validated reports from the hospital's DPI and
// delivers them to the patient's doctors by MSSanté secure email.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `mssdispatch: send the hospital's reports to correspondents by MSSanté.

Usage:
  mssdispatch serve                     run the service (MLLP, HTTP, workers)
  mssdispatch migrate                   bring the database schema up to date
  mssdispatch directory import FILE|URL [--force]
                                        import the Annuaire Santé extraction
                                        (Extraction_Correspondance_MSSante .txt or .zip)
  mssdispatch whitelist import FILE|URL [--force]
                                        import the MSSanté whitelist (liste blanche XML)
                                        (both: FILE is a path, URL must be https://;
                                        --force accepts an import that would remove more
                                        than half of the current entries)
  mssdispatch send-sample               send a sample ORU^R01 report over MLLP
  mssdispatch rules export [--version N]
                                        print the CME's rules in force (or version N;
                                        0 is the built-in default) as YAML
  mssdispatch rules import FILE [--comment TEXT]
                                        put the YAML rules of FILE in force as a new version
  mssdispatch rules dry-run FILE [--reports N]
                                        show what the rules of FILE would change on the
                                        newest N reports (default 50, at most 500)
  mssdispatch user add USERNAME --role secretary|cme|admin [--name NAME] [--service S]...
                                        create a dashboard account; the password is read
                                        from stdin (asked twice on a terminal, else the
                                        first line) or --password-file FILE; no --service:
                                        every service
  mssdispatch user list                 list the dashboard's accounts
  mssdispatch user passwd USERNAME [--password-file FILE]
                                        change a password (ends the user's sessions)
  mssdispatch user disable|enable USERNAME
                                        disable an account (ending its sessions) or enable it
  mssdispatch user grant|revoke USERNAME correspondents
                                        allow (or no longer) a user to change the local
                                        directory, which admins may; the others propose

Configuration is by environment ([default]):
`

func main() {
	os.Exit(run(os.Args[1:], osEnv(), os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(args []string, e env, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if err := writeUsage(stdout, ""); err != nil {
			complain(stderr, err)
			return 1
		}
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	logger, err := newLogger(e.get("LOG_LEVEL"), stderr)
	if err != nil {
		complain(stderr, err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()

	switch cmd := strings.Join(args[:min(len(args), 2)], " "); {
	case args[0] == "serve" && len(args) == 1:
		err = serveCommand(ctx, e, logger)
	case args[0] == "migrate" && len(args) == 1:
		err = migrateCommand(ctx, e, stdout)
	case (cmd == "directory import" || cmd == "whitelist import") && (len(args) == 3 || len(args) == 4):
		err = importCommand(ctx, e, args[0], args[2:], stdout, stderr)
	case cmd == "rules export" || cmd == "rules import" || cmd == "rules dry-run":
		err = rulesCommand(ctx, e, args[1], args[2:], logger, stdout)
	case isUserCommand(cmd):
		err = userCommand(ctx, e, args[1], args[2:], os.Stdin, stdout, stderr)
	case args[0] == "send-sample" && len(args) == 1:
		err = sendSampleCommand(ctx, e, stdout)
	default:
		// A failed write to stderr is left to the exit status to tell (see complain).
		_ = writeUsage(stderr, fmt.Sprintf("mssdispatch: unknown command %q\n\n", strings.Join(args, " ")))
		return 2
	}
	if err != nil {
		complain(stderr, err)
		var ce *configError
		if errors.As(err, &ce) {
			return 2
		}
		return 1
	}
	return 0
}

// writeUsage writes before, the usage and the environment variables.
func writeUsage(w io.Writer, before string) error {
	if _, err := io.WriteString(w, before+usage); err != nil {
		return err
	}
	return printEnv(w)
}

// complain writes the error that ends a command on stderr. An error writing
// it is dropped: stderr was the place left to tell it, and the exit status,
// which is not 0, still says the command failed.
func complain(stderr io.Writer, err error) {
	_, _ = fmt.Fprintln(stderr, "mssdispatch:", err)
}

// configError is a configuration mistake the user must fix.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, configErrorf("MSSDISPATCH_LOG_LEVEL %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// signalContext is cancelled at the first SIGINT or SIGTERM; a second one
// exits at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "mssdispatch: second signal, exiting now")
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
