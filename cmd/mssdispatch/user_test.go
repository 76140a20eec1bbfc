package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

func TestParseUserArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sub     string
		args    []string
		want    userArgs
		wantErr string
	}{
		{sub: "list", want: userArgs{}},
		{sub: "add", args: []string{"alice", "--role", "secretary"}, want: userArgs{username: "alice", role: auth.RoleSecretary}},
		{sub: "add", args: []string{"--role=cme", "--name", "Dr Anne Girard", "anne", "--service", "cardiologie", "--service=pneumologie"},
			want: userArgs{username: "anne", role: auth.RoleCME, name: "Dr Anne Girard", services: []string{"cardiologie", "pneumologie"}}},
		{sub: "add", args: []string{"bob", "--role", "admin", "--password-file", "/run/secrets/pw"},
			want: userArgs{username: "bob", role: auth.RoleAdmin, passwordFile: "/run/secrets/pw"}},
		{sub: "passwd", args: []string{"bob"}, want: userArgs{username: "bob"}},
		{sub: "passwd", args: []string{"bob", "--password-file=-"}, want: userArgs{username: "bob", passwordFile: "-"}},
		{sub: "disable", args: []string{"bob"}, want: userArgs{username: "bob"}},
		{sub: "add", args: []string{"alice"}, wantErr: "user add: --role missing (secretary, cme or admin)"},
		{sub: "add", args: []string{"alice", "--role", "nurse"}, wantErr: `user add: --role "nurse": want secretary, cme or admin`},
		{sub: "add", args: []string{"alice", "--role"}, wantErr: "user add: --role needs a value"},
		{sub: "add", args: []string{"--role", "cme"}, wantErr: "user add: USERNAME missing"},
		{sub: "add", args: []string{"alice", "bob", "--role", "cme"}, wantErr: `user add: unexpected argument "bob"`},
		{sub: "add", args: []string{"alice", "--role", "cme", "--password", "x"}, wantErr: `user add: unknown flag "--password"`},
		{sub: "list", args: []string{"alice"}, wantErr: `user list: unexpected argument "alice"`},
		{sub: "passwd", args: []string{"alice", "--role", "cme"}, wantErr: `user passwd: unknown flag "--role"`},
		{sub: "enable", args: []string{}, wantErr: "user enable: USERNAME missing"},
		{sub: "disable", args: []string{"-f", "bob"}, wantErr: `user disable: unknown flag "-f"`},
		{sub: "grant", args: []string{"bob", "correspondents"}, want: userArgs{username: "bob", grant: auth.GrantCorrespondents}},
		{sub: "revoke", args: []string{"bob", "correspondents"}, want: userArgs{username: "bob", grant: auth.GrantCorrespondents}},
		{sub: "grant", args: []string{"bob"}, wantErr: `user grant USERNAME correspondents: the grant "" is unknown`},
		{sub: "grant", args: []string{"bob", "rules"}, wantErr: `user grant USERNAME correspondents: the grant "rules" is unknown`},
		{sub: "disable", args: []string{"bob", "correspondents"}, wantErr: `user disable: unexpected argument "correspondents"`},
	}
	for _, tt := range tests {
		got, err := parseUserArgs(tt.sub, tt.args)
		if tt.wantErr != "" {
			require.EqualError(t, err, tt.wantErr, tt.args)
			continue
		}
		require.NoError(t, err, tt.args)
		require.Equal(t, tt.want, got, tt.args)
	}
	require.True(t, isUserCommand("user add"))
	require.True(t, isUserCommand("user list"))
	require.False(t, isUserCommand("user"))
	require.False(t, isUserCommand("user frobnicate"))
}

func TestUserCommands(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	e := mapEnv(map[string]string{"MSSDISPATCH_DATABASE_URL": dbURL})
	runCode := func(args ...string) (code int, stdout, stderr string) {
		var out, errs bytes.Buffer
		code = run(args, e, &out, &errs)
		return code, out.String(), errs.String()
	}
	dir := t.TempDir()
	secret := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	first := secret("first", "correct horse battery\r\n")
	second := secret("second", "another long passphrase\nignored second line\n")

	require.Equal(t, "no users yet: mssdispatch user add USERNAME --role admin\n", runOK(t, e, "user", "list"))

	out := runOK(t, e, "user", "add", "Alice", "--role", "secretary", "--name", "Alice Martin",
		"--service", "cardiologie", "--service=pneumologie", "--password-file", first)
	require.Equal(t, "user alice added (secretary)\n", out)
	require.Equal(t, "user dr-girard added (cme)\n", runOK(t, e, "user", "add", "dr-girard", "--role=cme", "--password-file", first))

	code, stdout, stderr := runCode("user", "add", "alice", "--role", "admin", "--password-file", first)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "add user alice: username already taken")
	code, _, stderr = runCode("user", "add", "bob", "--role", "admin", "--password-file", secret("short", "tooshort\n"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "invalid password: at least 12 characters")
	code, _, stderr = runCode("user", "add", "bob", "--role", "admin", "--password-file", secret("empty", "\n"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no password on "+dir)
	code, _, stderr = runCode("user", "add", "bob smith", "--role", "admin", "--password-file", first)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `invalid username "bob smith"`)
	code, _, stderr = runCode("user", "add", "bob", "--role", "nurse")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `--role "nurse": want secretary, cme or admin`)
	code, _, stderr = runCode("user", "add", "bob", "--role", "admin", "--password-file", filepath.Join(dir, "missing"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no such file")

	out = runOK(t, e, "user", "list")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^USERNAME +NAME +ROLE +SERVICES +GRANTS +DISABLED +LAST LOGIN$`, lines[0])
	require.Regexp(t, `^alice +Alice Martin +secretary +cardiologie,pneumologie +- +no +never$`, lines[1])
	require.Regexp(t, `^dr-girard +dr-girard +cme +all +- +no +never$`, lines[2])

	// The accounts work with the store, the password as written in the file
	// (without its line ending).
	ctx := context.Background()
	store := auth.NewStore(pgtest.Connect(t, dbURL))
	u, err := store.Authenticate(ctx, "alice", "correct horse battery", "")
	require.NoError(t, err)
	require.Equal(t, []string{"cardiologie", "pneumologie"}, u.Services)
	require.Regexp(t, `^alice +Alice Martin +secretary +cardiologie,pneumologie +- +no +\d{4}-\d\d-\d\d \d\d:\d\d$`,
		strings.Split(runOK(t, e, "user", "list"), "\n")[1])

	require.Equal(t, "password of alice changed, its sessions ended\n", runOK(t, e, "user", "passwd", "alice", "--password-file", second))
	_, err = store.Authenticate(ctx, "alice", "correct horse battery", "")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	_, err = store.Authenticate(ctx, "alice", "another long passphrase", "")
	require.NoError(t, err)

	require.Equal(t, "user alice disabled\n", runOK(t, e, "user", "disable", "ALICE"))
	require.Regexp(t, `^alice .* yes +\S+ \S+$`, strings.Split(runOK(t, e, "user", "list"), "\n")[1])
	_, err = store.Authenticate(ctx, "alice", "another long passphrase", "")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	require.Equal(t, "user alice enabled\n", runOK(t, e, "user", "enable", "alice"))
	_, err = store.Authenticate(ctx, "alice", "another long passphrase", "")
	require.NoError(t, err)

	require.Equal(t, "user alice: correspondents granted\n", runOK(t, e, "user", "grant", "alice", "correspondents"))
	require.Regexp(t, `^alice .* correspondents +no `, strings.Split(runOK(t, e, "user", "list"), "\n")[1])
	u, err = store.Authenticate(ctx, "alice", "another long passphrase", "")
	require.NoError(t, err)
	require.True(t, u.Can(auth.PermCorrespondents))
	require.Equal(t, "user alice: correspondents revoked\n", runOK(t, e, "user", "revoke", "alice", "correspondents"))
	code, _, stderr = runCode("user", "grant", "nobody", "correspondents")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no such user")

	code, _, stderr = runCode("user", "disable", "nobody")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "disable user nobody: no such user")
	code, _, stderr = runCode("user", "passwd", "nobody", "--password-file", first)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "set password of nobody: no such user")
	code, _, stderr = runCode("user", "frobnicate", "alice")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown command "user frobnicate alice"`)
	code, _, stderr = runCode("user", "list", "--all")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `user list: unknown flag "--all"`)

	// Every change is in the audit log, by the command line.
	records, err := audit.NewLog(pgtest.Connect(t, dbURL)).Read(ctx, audit.Filter{})
	require.NoError(t, err)
	var changes []string
	for _, r := range records {
		if strings.HasPrefix(r.Actor, "cli") {
			changes = append([]string{r.Action + " " + r.Object}, changes...)
		}
	}
	require.Equal(t, []string{"user_added user:alice", "user_added user:dr-girard", "password_changed user:alice",
		"user_disabled user:alice", "user_enabled user:alice", "grants_changed user:alice", "grants_changed user:alice"}, changes)

	// Without a database.
	code, _, stderr = runWith(t, mapEnv(nil), "user", "list")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "MSSDISPATCH_DATABASE_URL is required")
	require.Contains(t, runOK(t, mapEnv(nil), "-h"), "mssdispatch user add USERNAME --role secretary|cme|admin")
}

// runWith runs a command and returns its exit code, stdout and stderr.
func runWith(t *testing.T, e env, args ...string) (int, string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(args, e, &out, &errs)
	return code, out.String(), errs.String()
}

func TestUserCommandStdin(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	e := mapEnv(map[string]string{"MSSDISPATCH_DATABASE_URL": dbURL})
	ctx := context.Background()
	var out bytes.Buffer

	// Not a terminal: the first line of stdin, nothing prompted.
	var prompts bytes.Buffer
	err := userCommand(ctx, e, "add", []string{"carole", "--role", "admin"},
		strings.NewReader("pass phrase from a pipe\nnext line\n"), &out, &prompts)
	require.NoError(t, err)
	require.Equal(t, "user carole added (admin)\n", out.String())
	require.Empty(t, prompts.String())
	err = userCommand(ctx, e, "passwd", []string{"carole", "--password-file", "-"}, strings.NewReader("the newest pass phrase"), &out, io.Discard)
	require.NoError(t, err)
	_, err = auth.NewStore(pgtest.Connect(t, dbURL)).Authenticate(ctx, "carole", "the newest pass phrase", "")
	require.NoError(t, err)

	err = userCommand(ctx, e, "add", []string{"denis", "--role", "cme"}, strings.NewReader(""), &out, io.Discard)
	require.EqualError(t, err, "no password on stdin: the password is its first line")
	err = userCommand(ctx, e, "add", []string{"denis", "--role", "cme"}, strings.NewReader(strings.Repeat("x", 5000)), &out, io.Discard)
	require.EqualError(t, err, "read password from stdin: first line longer than 4096 bytes")
}

func TestFirstLine(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in, want, wantErr string
	}{
		{in: "secret", want: "secret"},
		{in: "secret\n", want: "secret"},
		{in: "secret\r\n", want: "secret"},
		{in: " spaced secret \nnext", want: " spaced secret "},
		{in: "", wantErr: "no password on test"},
		{in: "\nsecret", wantErr: "no password on test"},
		{in: strings.Repeat("x", 4096) + "\n", want: strings.Repeat("x", 4096)},
		{in: strings.Repeat("x", 4097), wantErr: "longer than 4096 bytes"},
	} {
		got, err := firstLine(strings.NewReader(tt.in), "test")
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr, tt.in)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tt.want, got)
	}
}
