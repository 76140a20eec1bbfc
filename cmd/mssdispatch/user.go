package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/mssdispatch/mssdispatch/auth"
)

// isUserCommand reports whether cmd (the first two arguments) is a user command.
func isUserCommand(cmd string) bool {
	sub, ok := strings.CutPrefix(cmd, "user ")
	return ok && slices.Contains([]string{"add", "list", "passwd", "disable", "enable", "grant", "revoke"}, sub)
}

// userArgs are the arguments of a user command.
type userArgs struct {
	username     string
	role         auth.Role
	name         string
	services     []string
	passwordFile string // "" or "-": stdin
	grant        string // of grant and revoke
}

// parseUserArgs reads the arguments after `user SUB`: USERNAME but for
// list, and the flags of each (--flag VALUE or --flag=VALUE).
func parseUserArgs(sub string, args []string) (userArgs, error) {
	var a userArgs
	allowed := map[string][]string{
		"add":    {"--role", "--name", "--service", "--password-file"},
		"passwd": {"--password-file"},
	}[sub]
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			switch {
			case sub != "list" && a.username == "":
				a.username = arg
			case (sub == "grant" || sub == "revoke") && a.grant == "":
				a.grant = arg
			default:
				return userArgs{}, configErrorf("user %s: unexpected argument %q", sub, arg)
			}
			continue
		}
		name, value, hasValue := strings.Cut(arg, "=")
		if !strings.HasPrefix(name, "--") || !slices.Contains(allowed, name) {
			return userArgs{}, configErrorf("user %s: unknown flag %q", sub, name)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return userArgs{}, configErrorf("user %s: %s needs a value", sub, name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "--role":
			a.role = auth.Role(value)
			if !a.role.Valid() {
				return userArgs{}, configErrorf("user %s: --role %q: want %s, %s or %s", sub, value,
					auth.RoleSecretary, auth.RoleCME, auth.RoleAdmin)
			}
		case "--name":
			a.name = value
		case "--service":
			a.services = append(a.services, value)
		case "--password-file":
			a.passwordFile = value
		}
	}
	switch {
	case sub != "list" && a.username == "":
		return userArgs{}, configErrorf("user %s: USERNAME missing", sub)
	case sub == "add" && a.role == "":
		return userArgs{}, configErrorf("user add: --role missing (%s, %s or %s)", auth.RoleSecretary, auth.RoleCME, auth.RoleAdmin)
	case (sub == "grant" || sub == "revoke") && a.grant != auth.GrantCorrespondents:
		return userArgs{}, configErrorf("user %s USERNAME %s: the grant %q is unknown", sub, auth.GrantCorrespondents, a.grant)
	}
	return a, nil
}

// userCommand runs `user add|list|passwd|disable|enable|grant|revoke` (sub) with the
// arguments after it; passwords are read from stdin (prompted for twice
// without echo on a terminal) or the --password-file, prompts go to stderr,
// the outcome to stdout.
func userCommand(ctx context.Context, e env, sub string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a, err := parseUserArgs(sub, args)
	if err != nil {
		return err
	}
	username := strings.ToLower(strings.TrimSpace(a.username))
	var password string
	if sub == "add" || sub == "passwd" {
		if password, err = readPassword(a.passwordFile, stdin, stderr, username); err != nil {
			return err
		}
	}
	pool, err := openMigratedPool(ctx, e.get("DATABASE_URL"), 0, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := auth.NewStore(pool)
	ctx = auth.WithActor(ctx, cliActor())
	var outcome string
	switch sub {
	case "add":
		u, err := store.AddUser(ctx, auth.NewUser{Username: a.username, DisplayName: a.name, Password: password,
			Role: a.role, Services: a.services})
		if err != nil {
			return err
		}
		outcome = fmt.Sprintf("user %s added (%s)", u.Username, u.Role)
	case "passwd":
		if err := store.SetPassword(ctx, username, password); err != nil {
			return err
		}
		outcome = fmt.Sprintf("password of %s changed, its sessions ended", username)
	case "disable", "enable":
		if err := store.SetDisabled(ctx, username, sub == "disable"); err != nil {
			return err
		}
		outcome = fmt.Sprintf("user %s %sd", username, sub)
	case "grant", "revoke":
		if err := store.SetGrant(ctx, username, a.grant, sub == "grant"); err != nil {
			return err
		}
		outcome = fmt.Sprintf("user %s: %s %s", username, a.grant, map[string]string{"grant": "granted", "revoke": "revoked"}[sub])
	default:
		users, err := store.Users(ctx)
		if err != nil {
			return err
		}
		return printUsers(stdout, users)
	}
	_, err = fmt.Fprintln(stdout, outcome)
	return err
}

// maxPasswordLine bounds the line a password is read from.
const maxPasswordLine = 4096

// readPassword reads the password of username: from file when it is given
// (but "-"), else from stdin, prompting twice without echo when it is a
// terminal; otherwise the first line is the password.
func readPassword(file string, stdin io.Reader, stderr io.Writer, username string) (string, error) {
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", err
		}
		defer func() { _ = f.Close() }() // only read: firstLine checks the reading
		return firstLine(f, file)
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		first, err := promptPassword(f, stderr, fmt.Sprintf("Password for %s: ", username))
		if err != nil {
			return "", err
		}
		again, err := promptPassword(f, stderr, "Repeat it: ")
		if err != nil {
			return "", err
		}
		if first != again {
			return "", errors.New("the two passwords differ")
		}
		if first == "" {
			return "", errors.New("empty password")
		}
		return first, nil
	}
	return firstLine(stdin, "stdin")
}

// promptPassword writes prompt on stderr and reads a password from the
// terminal without echo, then ends the line the terminal did not echo. A
// prompt that cannot be shown is an error: no one would know what to type.
func promptPassword(terminal *os.File, stderr io.Writer, prompt string) (string, error) {
	if _, err := io.WriteString(stderr, prompt); err != nil {
		return "", fmt.Errorf("password prompt: %w", err)
	}
	password, err := term.ReadPassword(int(terminal.Fd()))
	_, werr := fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if werr != nil {
		return "", fmt.Errorf("password prompt: %w", werr)
	}
	return string(password), nil
}

// firstLine returns the first line of r without its line ending.
func firstLine(r io.Reader, from string) (string, error) {
	// Room for the longest line and its CR LF, and one byte more when longer.
	const size = maxPasswordLine + 2
	line, err := bufio.NewReaderSize(io.LimitReader(r, size), size).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from %s: %w", from, err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if len(line) > maxPasswordLine {
		return "", fmt.Errorf("read password from %s: first line longer than %d bytes", from, maxPasswordLine)
	}
	if line == "" {
		return "", fmt.Errorf("no password on %s: the password is its first line", from)
	}
	return line, nil
}

// printUsers writes the users as a table.
func printUsers(w io.Writer, users []auth.User) error {
	if len(users) == 0 {
		_, err := fmt.Fprintln(w, "no users yet: mssdispatch user add USERNAME --role admin")
		return err
	}
	t := newTable(w)
	t.println("USERNAME\tNAME\tROLE\tSERVICES\tGRANTS\tDISABLED\tLAST LOGIN")
	for _, u := range users {
		services := "all"
		if len(u.Services) > 0 {
			services = strings.Join(u.Services, ",")
		}
		disabled := "no"
		if u.Disabled {
			disabled = "yes"
		}
		last := "never"
		if u.LastLoginAt != nil {
			last = u.LastLoginAt.Local().Format("2006-01-02 15:04")
		}
		grants := "-"
		if len(u.Grants) > 0 {
			grants = strings.Join(u.Grants, ",")
		}
		t.printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Username, u.DisplayName, u.Role, services, grants, disabled, last)
	}
	return t.done()
}
