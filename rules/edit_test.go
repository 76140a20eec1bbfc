package rules_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/rules"
)

func TestWriteRule(t *testing.T) {
	t.Parallel()
	demo, err := os.ReadFile("../testdata/demo/regles-cme.yaml")
	require.NoError(t, err)
	consultations := `  - name: Consultations relues
    match:
      document_codes: ["11488-4"]
    action:
      send: review
      patient: send
      paper: directory

`
	general := "  # Tout le reste : envoi automatique"
	tests := []struct {
		name   string
		source string
		old    string
		rule   rules.Simple
		want   string
		line   int
	}{{
		name:   "a new rule goes before the rule for everything, the text untouched around it",
		source: string(demo),
		rule:   rules.Simple{Name: "Consultations relues", Code: "11488-4", Send: "review", Patient: "send", Paper: "directory"},
		want:   strings.Replace(string(demo), general, consultations+general, 1),
		line:   strings.Count(string(demo[:strings.Index(string(demo), general)]), "\n") + 1,
	}, {
		name:   "without a rule for everything, last",
		source: "rules:\n  - name: a\n    match: {services: [PSY]}\n",
		rule:   rules.Simple{Name: "oui: non", Code: "11488-4", Send: "delay", DelayHours: 24, Patient: "never", Paper: "always"},
		want: "rules:\n  - name: a\n    match: {services: [PSY]}\n  - name: 'oui: non'\n    match:\n      document_codes: [\"11488-4\"]\n" +
			"    action:\n      send: delay\n      delay_hours: 24\n      patient: never\n      paper: always\n",
		line: 4,
	}, {
		name: "a rule edited keeps what the form does not set, and its comments",
		source: "rules:\n  - name: Bio\n    match: {document_codes: [\"11502-2\"], recipient_kinds: [patient]}\n" +
			"    action: {send: delay, delay_hours: 48, on_failure: worklist} # suivi\n  - name: Tout\n",
		old: "Bio", rule: rules.Simple{Name: "Biologie", Code: "11502-2", Send: "review", Patient: "never", Paper: "always"},
		want: "rules:\n  - name: Biologie\n    match: {document_codes: [\"11502-2\"], recipient_kinds: [patient]}\n" +
			"    action: {send: review, on_failure: worklist, patient: never, paper: always} # suivi\n  - name: Tout\n",
		line: 2,
	}, {
		name:   "a delay goes after the send mode",
		source: "rules:\n  - name: Img\n    match:\n      document_codes: [18748-4] # imagerie\n    action:\n      send: review\n      paper: never\n",
		old:    "Img", rule: rules.Simple{Name: "Img", Code: "18748-4", Send: "delay", DelayHours: 24, Patient: "send", Paper: "never"},
		want: "rules:\n  - name: Img\n    match:\n      document_codes: [\"18748-4\"] # imagerie\n    action:\n      send: delay\n" +
			"      delay_hours: 24\n      patient: send\n      paper: never\n",
		line: 2,
	}, {
		name:   "no action yet",
		source: "rules:\n  - name: Img\n    match: {document_codes: [18748-4]}\n",
		old:    "Img", rule: rules.Simple{Name: "Img", Code: "18748-4", Send: "auto", Patient: "send", Paper: "never"},
		want: "rules:\n  - name: Img\n    match: {document_codes: [\"18748-4\"]}\n    action:\n      send: auto\n" +
			"      patient: send\n      paper: never\n",
		line: 2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs, err := rules.Parse([]byte(tt.source))
			require.NoError(t, err)
			out, line, err := rules.Write([]byte(tt.source), tt.old, tt.rule, rs)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(out))
			require.Equal(t, tt.line, line)
			written, err := rules.Parse(out)
			require.NoError(t, err)
			i := slices.IndexFunc(written.Rules, func(r rules.Rule) bool { return r.Name == tt.rule.Name })
			require.GreaterOrEqual(t, i, 0)
			editable, _ := rules.Editable(written, out)
			require.True(t, editable[i], "the form edits the rule it wrote")
			require.Equal(t, []string{tt.rule.Code}, written.Rules[i].Match.DocumentCodes)
			require.Equal(t, tt.rule.Send, written.Rules[i].Action.Send)
			require.Equal(t, tt.rule.DelayHours, written.Rules[i].Action.DelayHours)
		})
	}
}

func TestMoveRuleKeepsTheText(t *testing.T) {
	t.Parallel()
	demo, err := os.ReadFile("../testdata/demo/regles-cme.yaml")
	require.NoError(t, err)
	out, err := rules.Move(demo, "Lettre de liaison suivie", 1)
	require.NoError(t, err)
	blocks := strings.Split(string(demo), "\n\n")
	i := len(blocks) - 3 // the blocks of the last three rules, comments and all
	require.Contains(t, blocks[i], "Lettre de liaison suivie")
	blocks[i], blocks[i+1] = blocks[i+1], blocks[i]
	require.Equal(t, strings.Join(blocks, "\n\n"), string(out), "the rules swapped, comments and blank lines kept")

	// A blank line inside a block scalar is part of its value: kept as it is.
	src := "comment: |\n  a\n\n  b\nrules:\n  - name: a\n  - name: b\n"
	out, err = rules.Move([]byte(src), "b", -1)
	require.NoError(t, err)
	require.Equal(t, "comment: |\n  a\n\n  b\nrules:\n  - name: b\n  - name: a\n", string(out))

	_, err = rules.Move([]byte(src), "c", 1)
	require.EqualError(t, err, "aucune règle ne s'appelle « c »")
}
