package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/rules"
)

func TestParseRulesArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sub     string
		args    []string
		want    rulesArgs
		wantErr string
	}{
		{sub: "export", want: rulesArgs{version: -1}},
		{sub: "export", args: []string{"--version", "3"}, want: rulesArgs{version: 3}},
		{sub: "export", args: []string{"--version=0"}, want: rulesArgs{version: 0}},
		{sub: "import", args: []string{"r.yaml", "--comment", "CME du 12 mars"}, want: rulesArgs{file: "r.yaml", version: -1, comment: "CME du 12 mars"}},
		{sub: "import", args: []string{"--comment=x", "r.yaml"}, want: rulesArgs{file: "r.yaml", version: -1, comment: "x"}},
		{sub: "dry-run", args: []string{"r.yaml", "--reports", "10"}, want: rulesArgs{file: "r.yaml", version: -1, reports: 10}},
		{sub: "export", args: []string{"r.yaml"}, wantErr: `rules export: unexpected argument "r.yaml"`},
		{sub: "export", args: []string{"--version", "x"}, wantErr: `rules export: --version "x": want a version number (0 is the built-in default)`},
		{sub: "export", args: []string{"--version"}, wantErr: "rules export: --version needs a value"},
		{sub: "import", args: []string{}, wantErr: "rules import: FILE missing"},
		{sub: "import", args: []string{"a", "b"}, wantErr: `rules import: unexpected argument "b"`},
		{sub: "import", args: []string{"a", "--reports", "3"}, wantErr: `rules import: unknown flag "--reports"`},
		{sub: "dry-run", args: []string{"a", "--reports", "501"}, wantErr: `rules dry-run: --reports "501": want 1 to 500`},
		{sub: "dry-run", args: []string{"a", "-r", "5"}, wantErr: `rules dry-run: unknown flag "-r"`},
	}
	for _, tt := range tests {
		got, err := parseRulesArgs(tt.sub, tt.args)
		if tt.wantErr != "" {
			require.EqualError(t, err, tt.wantErr, tt.args)
			continue
		}
		require.NoError(t, err, tt.args)
		require.Equal(t, tt.want, got, tt.args)
	}
}

func TestRulesCommands(t *testing.T) {
	t.Parallel()
	dbURL := demoDatabase(t)
	e := mapEnv(map[string]string{"MSSDISPATCH_DATABASE_URL": dbURL})
	runCode := func(args ...string) (code int, stdout, stderr string) {
		var out, errs bytes.Buffer
		code = run(args, e, &out, &errs)
		return code, out.String(), errs.String()
	}
	demo := "../../testdata/demo/regles-cme.yaml"
	source, err := os.ReadFile(demo)
	require.NoError(t, err)

	// Before any import: the built-in default.
	out := runOK(t, e, "rules", "export")
	rs, err := rules.Parse([]byte(out))
	require.NoError(t, err, out)
	require.Equal(t, rules.Default.Name, rs.Rules[0].Name)

	// A dry run with no report yet.
	out = runOK(t, e, "rules", "dry-run", demo)
	require.Equal(t, "0 reports checked against the rules in force (version 0): no delivery would change.\n", out)

	// A report, resolved by the service, then a dry run that changes it.
	r := start(t, serveConfig{DatabaseURL: dbURL, Transport: "outbox", OutboxDir: t.TempDir()})
	msg, documentID, err := sampleReport(time.Now())
	require.NoError(t, err)
	require.Equal(t, "AA", sendMLLP(t, r.mllpAddr, msg).Segment("MSA").Get(1))
	require.Eventually(t, func() bool { return getReport(t, r.httpAddr, documentID).Status == dispatch.ReportResolved },
		20*time.Second, 50*time.Millisecond)
	review := filepath.Join(t.TempDir(), "review.yaml")
	require.NoError(t, os.WriteFile(review, []byte("rules:\n  - name: Tout relu\n    action: {send: review}\n"), 0o644))
	out = runOK(t, e, "rules", "dry-run", review, "--reports", "5")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, "1 reports checked against the rules in force (version 0): 3 deliveries would change.", lines[0], out)
	require.Regexp(t, `^REPORT +DOCUMENT +RECIPIENT +CHANNEL +BEFORE +AFTER +CHANGED$`, lines[2])
	require.Len(t, lines, 6, out)
	require.Regexp(t, `^1 +\S+ +Claire DUPONT-DEMO +mssante +queued \[défaut\] +review \[Tout relu\] +status, rule$`, lines[3])
	require.NotContains(t, out, "Jean MARTIN", "in review under both: another rule's name changes nothing for him")

	// Import, then export: the source as written.
	out = runOK(t, e, "rules", "import", demo, "--comment", "CME du 12 mars")
	require.Regexp(t, `^rules version 1 in force: 7 rules \(Psychiatrie relue, .*, Règle générale\), by cli`, out)
	require.Equal(t, string(source), runOK(t, e, "rules", "export"))
	require.Equal(t, string(source), runOK(t, e, "rules", "export", "--version", "1"))
	rs, err = rules.Parse([]byte(runOK(t, e, "rules", "export", "--version", "0")))
	require.NoError(t, err)
	require.Equal(t, rules.Default.Name, rs.Rules[0].Name)

	code, _, stderr := runCode("rules", "export", "--version", "9")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no version 9 of the rules")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - name: x\n    action:\n      sendd: review\n"), 0o644))
	for _, sub := range []string{"import", "dry-run"} {
		code, stdout, stderr := runCode("rules", sub, bad)
		require.Equal(t, 1, code, sub)
		require.Empty(t, stdout)
		require.Contains(t, stderr, bad+`: règle 1 (ligne 4): action.sendd: clé inconnue "sendd"`, sub)
	}
	code, _, stderr = runCode("rules", "import", filepath.Join(t.TempDir(), "missing.yaml"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no such file")
	code, _, stderr = runCode("rules", "import")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "rules import: FILE missing")

	out = runOK(t, e, "rules", "export")
	require.Equal(t, string(source), out, "the failed imports changed nothing")
}
