package rules_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/rules"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

// normalisedDefault is DefaultRule as a parsed rule set holds it: with the
// actions of its (off) deadlines filled in.
var normalisedDefault = func() rules.Rule {
	r := rules.Default
	r.Action.NoDSNAction, r.Action.UnreadAction = rules.FallbackWorklist, rules.FallbackWorklist
	return r
}()

// normalAction is a normalised action with the given send mode.
func normalAction(send string) rules.Action {
	return rules.Action{Send: send, Patient: rules.PatientSend, Paper: rules.PaperDirectory,
		AddressMismatch: rules.MismatchSend, OnFailure: rules.FallbackPaper,
		NoDSNAction: rules.FallbackWorklist, UnreadAction: rules.FallbackWorklist}
}

func TestParseRulesValid(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/valid.yaml")
	require.NoError(t, err)
	rs, err := rules.Parse(src)
	require.NoError(t, err)
	bio := normalAction(rules.SendDelay)
	bio.DelayHours = 48
	require.Equal(t, rules.Set{Comment: "test set", Rules: []rules.Rule{
		{Name: "Biologie au patient", Match: rules.Match{DocumentCodes: []string{"11502-2"}, RecipientKinds: []string{"patient"}},
			Action: bio},
		{Name: "Cardiologie", Match: rules.Match{Services: []string{"CARDIO"}, Authors: []string{"99900000010", "99900000011"},
			Confidentiality: []string{"N", "R"}},
			Action: rules.Action{Send: rules.SendReview, Patient: rules.PatientNever, Paper: rules.PaperAlways,
				AddressMismatch: rules.MismatchReview, OnFailure: rules.FallbackWorklist,
				NoDSNHours: 24, NoDSNAction: rules.FallbackPaper, UnreadHours: 72, UnreadAction: rules.FallbackPaper}},
		normalisedDefault,
	}}, rs, "names trimmed, defaults filled, an unquoted RPPS read as text, the default rule appended")
}

func TestParseRules(t *testing.T) {
	t.Parallel()
	one := func(act string) string { return "rules:\n  - name: Règle A\n    action: {" + act + "}\n" }
	tests := []struct {
		name string
		src  string // or file, under testdata/rules
		file string
		// want is the rule set when no error is expected.
		want *rules.Set
		// rule, field, line and msg are the expected mistake, the only
		// one unless mistakes says how many; ruleName, when set, the name
		// of its rule.
		rule     int
		field    string
		line     int
		msg      string
		ruleName string
		mistakes int
	}{
		{name: "minimal", src: "rules:\n  - name: tout\n", want: &rules.Set{Rules: []rules.Rule{
			{Name: "tout", Action: normalAction(rules.SendAuto)}}}},
		{name: "default rule appended", src: "rules:\n  - name: psy\n    match: {services: [PSY]}\n    action: {send: review}\n",
			want: &rules.Set{Rules: []rules.Rule{
				{Name: "psy", Match: rules.Match{Services: []string{"PSY"}}, Action: normalAction(rules.SendReview)}, normalisedDefault}}},
		{name: "empty lists match everything", src: "rules:\n  - name: tout\n    match: {services: []}\n",
			want: &rules.Set{Rules: []rules.Rule{{Name: "tout", Action: normalAction(rules.SendAuto)}}}},
		{name: "anchors and merge keys", src: "rules:\n  - &psy {name: psy, match: {services: [PSY]}, action: {send: review}}\n  - <<: *psy\n    name: tout\n    match: {}\n",
			want: &rules.Set{Rules: []rules.Rule{
				{Name: "psy", Match: rules.Match{Services: []string{"PSY"}}, Action: normalAction(rules.SendReview)},
				{Name: "tout", Action: normalAction(rules.SendReview)}}}},

		{name: "unknown key", file: "unknown_key.yaml", rule: 1, field: "action.delay", line: 7, msg: `clé inconnue "delay"`},
		{name: "unknown top-level key", src: "rule:\n  - name: a\n", field: "rule", line: 1, msg: `clé inconnue "rule" (clés possibles: comment, rules)`},
		{name: "unknown match key", src: "rules:\n  - name: a\n    match:\n      service: [PSY]\n", rule: 1, field: "match.service", line: 4, msg: `clé inconnue "service"`},
		{name: "unknown rule key", src: "rules:\n  - name: a\n  - name: b\n    actions: {}\n", rule: 2, field: "actions", line: 4},
		{name: "repeated key", src: "rules:\n  - name: a\n    name: b\n", rule: 1, field: "name", line: 3, msg: "déjà donnée ligne 2"},
		{name: "wrong type", file: "wrong_type.yaml", rule: 1, field: "action.delay_hours", line: 5, msg: `"deux jours": un nombre entier est attendu`,
			ruleName: "Biologie"},
		{name: "huge hours", src: one("no_dsn_hours: 99999999999999999999"), rule: 1, field: "action.no_dsn_hours", line: 3, msg: "un nombre entier est attendu"},
		{name: "float hours", src: one("send: delay, delay_hours: 1.5"), rule: 1, field: "action.delay_hours", line: 3, msg: "un nombre entier est attendu"},
		{name: "list for a value", src: one("send: [auto]"), rule: 1, field: "action.send", line: 3, msg: "une seule valeur est attendue"},
		{name: "value for a list", src: "rules:\n  - name: a\n    match: {services: PSY}\n", rule: 1, field: "match.services", line: 3, msg: "une liste est attendue"},
		{name: "rules not a list", src: "rules: {name: a}\n", field: "rules", line: 1, msg: "une liste est attendue"},
		{name: "rule not a mapping", src: "rules:\n  - a\n", rule: 1, line: 2, msg: "une table de name, match, action est attendue"},
		{name: "top level not a mapping", src: "- name: a\n", line: 1, msg: "le premier niveau doit être une table"},
		{name: "syntax", src: "rules:\n  - name: a\n    action: send: auto\n", line: 3, msg: "syntaxe YAML: mapping values are not allowed"},
		{name: "two documents", src: "rules:\n  - name: a\n---\nrules: []\n", line: 3, msg: "un seul document YAML"},
		{name: "empty", src: "", msg: "le fichier est vide"},
		{name: "comments only", src: "# rien\n", msg: "le fichier est vide"},
		{name: "no rule", src: "rules: []\n", line: 1, msg: "aucune règle"},
		{name: "not UTF-8", src: "rules:\n  - name: \xff\n", msg: "UTF-8"},

		{name: "missing name", file: "missing_name.yaml", rule: 2, field: "name", line: 5, msg: "chaque règle a besoin d'un nom"},
		{name: "blank name", src: "rules:\n  - name: '  '\n", rule: 1, field: "name", line: 2, msg: "chaque règle a besoin d'un nom"},
		{name: "duplicate names", file: "duplicate_names.yaml", rule: 2, field: "name", line: 5, msg: `"Psychiatrie" est déjà le nom de la règle 1`},
		{name: "default name taken", src: "rules:\n  - name: défaut\n    match: {services: [PSY]}\n", rule: 1, field: "name", line: 2,
			msg: "est le nom de la règle par défaut"},
		{name: "delay out of range", file: "delay_out_of_range.yaml", rule: 1, field: "action.delay_hours", line: 6,
			msg: `721: un délai va de 1 à 720 heures`, ruleName: "Biologie"},
		{name: "delay missing", src: one("send: delay"), rule: 1, field: "action.delay_hours", line: 3, msg: "0: un délai va de 1 à 720 heures"},
		{name: "delay without send delay", src: one("delay_hours: 4"), rule: 1, field: "action.delay_hours", line: 3, msg: "seulement avec send: delay"},
		{name: "authors not RPPS", file: "authors_not_rpps.yaml", rule: 1, field: "match.authors", line: 4, msg: `"1234" n'est pas un RPPS à 11 chiffres`},
		{name: "recipient kind", src: "rules:\n  - name: a\n    match: {recipient_kinds: [médecin]}\n", rule: 1, field: "match.recipient_kinds", line: 3,
			msg: "valeurs possibles professional, organisation, patient"},
		{name: "send", src: one("send: later"), rule: 1, field: "action.send", line: 3, msg: `"later": valeurs possibles auto, review, delay`, ruleName: "Règle A"},
		{name: "patient", src: one("patient: maybe"), rule: 1, field: "action.patient", line: 3, msg: `"maybe": valeurs possibles send, never`},
		{name: "paper", src: one("paper: sometimes"), rule: 1, field: "action.paper", line: 3, msg: `"sometimes": valeurs possibles directory, always, never`},
		{name: "address mismatch", src: one("address_mismatch: ignore"), rule: 1, field: "action.address_mismatch", line: 3, msg: `valeurs possibles send, review`},
		{name: "on failure", src: one("on_failure: retry"), rule: 1, field: "action.on_failure", line: 3, msg: `valeurs possibles paper, worklist`},
		{name: "no DSN action", src: one("no_dsn_hours: 24, no_dsn_action: email"), rule: 1, field: "action.no_dsn_action", line: 3, msg: `valeurs possibles paper, worklist`},
		{name: "unread action", src: one("unread_hours: 72, unread_action: email"), rule: 1, field: "action.unread_action", line: 3, msg: `valeurs possibles paper, worklist`},
		{name: "no DSN hours", src: one("no_dsn_hours: 721"), rule: 1, field: "action.no_dsn_hours", line: 3, msg: "de 0 (désactivé) à 720 heures"},
		{name: "negative no DSN hours", src: one("no_dsn_hours: -1"), rule: 1, field: "action.no_dsn_hours", line: 3, msg: "de 0 (désactivé) à 720 heures"},
		{name: "unread hours", src: one("unread_hours: 2161"), rule: 1, field: "action.unread_hours", line: 3, msg: "de 0 (désactivé) à 2160 heures"},

		{name: "every mistake", src: "rules:\n  - name: a\n    action: {send: later}\n  - name: b\n    action: {paper: sometimes}\n",
			rule: 1, field: "action.send", line: 3, msg: `"later"`, mistakes: 2},
		{name: "mistakes in line order", src: "rules:\n  - name: a\n    action: {send: later, unknown: 1}\n",
			rule: 1, field: "action.unknown", line: 3, msg: `clé inconnue "unknown"`, mistakes: 2},
		{name: "a send that cannot be read says nothing of the delay", src: one("send: [delay], delay_hours: 48"),
			rule: 1, field: "action.send", line: 3, msg: "une seule valeur est attendue"},
		{name: "a value that cannot be read is not also out of range", src: one("send: delay, delay_hours: 2.5"),
			rule: 1, field: "action.delay_hours", line: 3, msg: "un nombre entier est attendu"},
		{name: "a merged mistake is at its line", src: "rules:\n  - &a {name: a, match: {services: [A]}, action: {paper: sometimes}}\n  - <<: *a\n    name: b\n",
			rule: 1, field: "action.paper", line: 2, msg: `"sometimes"`, mistakes: 2},
		{name: "a rules key that is not a list is not also no rule", src: "rules: 3\n", field: "rules", line: 1, msg: "une liste est attendue"},
		{name: "a self-merging anchor", src: "rules:\n  - &a {<<: *a, name: a}\n", rule: 1, line: 2, msg: "trop de nœuds YAML"},
		{name: "a rule holding itself", src: "rules:\n  - &a [*a]\n  - name: b\n", rule: 1, line: 2, msg: "une table de name, match, action est attendue"},
		{name: "a key holding its mapping", src: "rules:\n  - &a {name: a, match: {? *a : x}}\n", rule: 1, field: "match", line: 2,
			msg: "une clé est l'une de"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := []byte(tt.src)
			if tt.file != "" {
				var err error
				src, err = os.ReadFile(filepath.Join("testdata", tt.file))
				require.NoError(t, err)
			}
			rs, err := rules.Parse(src)
			if tt.want != nil {
				require.NoError(t, err)
				require.Equal(t, *tt.want, rs)
				return
			}
			var errs rules.Errors
			require.ErrorAs(t, err, &errs)
			require.Len(t, errs, max(tt.mistakes, 1), "%v", err)
			var re *rules.Error
			require.ErrorAs(t, err, &re)
			require.Same(t, errs[0], re, "errors.As finds the first mistake")
			require.Equal(t, tt.rule, re.Rule, "rule: %v", err)
			require.Equal(t, tt.field, re.Field, "field: %v", err)
			require.Equal(t, tt.line, re.Line, "line: %v", err)
			require.Contains(t, re.Msg, tt.msg)
			if tt.ruleName != "" {
				require.Equal(t, tt.ruleName, re.Name)
			}
		})
	}
}

func TestRuleErrorMessage(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/unknown_key.yaml")
	require.NoError(t, err)
	_, err = rules.Parse(src)
	require.EqualError(t, err, `règle 1 (ligne 7): action.delay: clé inconnue "delay" (clés possibles: send, delay_hours, patient, paper, `+
		`address_mismatch, on_failure, no_dsn_hours, no_dsn_action, unread_hours, unread_action) (règle « Psychiatrie »)`)
	require.EqualError(t, rules.Errors{{Msg: "aucune règle"}, {Rule: 2, Line: 9, Field: "action.send", Msg: `"later": valeurs possibles auto, review, delay`, Name: "b"}},
		"règles: aucune règle\n"+`règle 2 (ligne 9): action.send: "later": valeurs possibles auto, review, delay (règle « b »)`, "one mistake a line")
	require.EqualError(t, &rules.Error{Rule: 2, Field: "name", Msg: "chaque règle a besoin d'un nom"}, "règle 2: name: chaque règle a besoin d'un nom")
}

// TestParseRulesMistakes checks that every mistake of a file is listed, in
// the order of the source, each at its line; -update rewrites the
// golden list.
func TestParseRulesMistakes(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/many_mistakes.yaml")
	require.NoError(t, err)
	_, err = rules.Parse(src)
	var errs rules.Errors
	require.ErrorAs(t, err, &errs)
	got := err.Error() + "\n"
	golden := "testdata/many_mistakes.golden.txt"
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), got)
	require.Len(t, errs, strings.Count(got, "\n"), "one mistake a line")
	require.True(t, slices.IsSortedFunc(errs, func(a, b *rules.Error) int { return a.Line - b.Line }), "in the order of the source")

	// A file of mistakes only: the list is bounded, its end says how many more.
	var many strings.Builder
	many.WriteString("rules:\n")
	for i := range 200 {
		fmt.Fprintf(&many, "  - name: r%d\n    action: {send: later}\n", i)
	}
	_, err = rules.Parse([]byte(many.String()))
	require.ErrorAs(t, err, &errs)
	require.Len(t, errs, 50)
	require.Equal(t, "151 autres erreurs, non listées", errs[49].Msg)
}

func TestParseRulesSize(t *testing.T) {
	t.Parallel()
	big := make([]byte, rules.MaxSize+1)
	_, err := rules.Parse(big)
	var re *rules.Error
	require.ErrorAs(t, err, &re)
	require.Contains(t, re.Msg, "dépassent")
}

func TestMarshalRulesRoundTrip(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(t, err)
	files = append(files, "../testdata/demo/regles-cme.yaml")
	parsed := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		rs, err := rules.Parse(src)
		if err != nil {
			continue // the invalid examples
		}
		parsed++
		out, err := rules.Marshal(rs)
		require.NoError(t, err)
		again, err := rules.Parse(out)
		require.NoError(t, err, "%s exported:\n%s", f, out)
		require.Equal(t, rs, again, f)
		again2, err := rules.Marshal(again)
		require.NoError(t, err)
		require.Equal(t, string(out), string(again2), "the export is stable")
	}
	require.GreaterOrEqual(t, parsed, 3, "the valid files, the golden and the demo")

	// Values YAML would not keep in a block: escaped in double quotes.
	odd := rules.Set{Comment: "ligne 1\r\nligne 2\ttab", Rules: []rules.Rule{
		{Name: "a\u2028b", Match: rules.Match{Services: []string{" PSY ", "", "#x", "- y", "null", "true", "42"}}, Action: normalAction(rules.SendAuto)},
		normalisedDefault,
	}}
	out, err := rules.Marshal(odd)
	require.NoError(t, err)
	again, err := rules.Parse(out)
	require.NoError(t, err, string(out))
	require.Equal(t, odd, again, string(out))
}

// TestMarshalRulesGolden checks the export of the demo's rules; -update rewrites it.
func TestMarshalRulesGolden(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../testdata/demo/regles-cme.yaml")
	require.NoError(t, err)
	rs, err := rules.Parse(src)
	require.NoError(t, err)
	out, err := rules.Marshal(rs)
	require.NoError(t, err)
	golden := "testdata/regles-cme.golden.yaml"
	if *update {
		require.NoError(t, os.WriteFile(golden, out, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), string(out))
}

func FuzzParseRules(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range append(files, "../testdata/demo/regles-cme.yaml") {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("rules:\n  - &a {name: a, match: {services: [A]}}\n  - {<<: *a, name: b, match: {}}\n"))
	f.Add([]byte("rules: [{name: \"\\r\\n\", action: {send: delay, delay_hours: 0x10}}]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		rs, err := rules.Parse(src)
		if err != nil {
			var errs rules.Errors
			if !errors.As(err, &errs) || len(errs) == 0 || slices.Contains(errs, nil) {
				t.Fatalf("ParseRules: %T %v, want RuleErrors", err, err)
			}
			return
		}
		out, err := rules.Marshal(rs)
		if err != nil {
			t.Fatalf("MarshalRules: %v", err)
		}
		again, err := rules.Parse(out)
		if err != nil {
			t.Fatalf("ParseRules(Marshal(rs)): %v\n%s", err, out)
		}
		require.Equal(t, rs, again, "export:\n%s", out)
	})
}
