package web

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
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
		form   ruleForm
		want   string
		line   int
	}{{
		name:   "a new rule goes before the rule for everything, the text untouched around it",
		source: string(demo),
		form:   ruleForm{Name: "Consultations relues", Code: "11488-4", Send: "review", Patient: "send", Paper: "directory"},
		want:   strings.Replace(string(demo), general, consultations+general, 1),
		line:   strings.Count(string(demo[:strings.Index(string(demo), general)]), "\n") + 1,
	}, {
		name:   "without a rule for everything, last",
		source: "rules:\n  - name: a\n    match: {services: [PSY]}\n",
		form:   ruleForm{Name: "oui: non", Code: "11488-4", Send: "delay", Delay: "024", Patient: "never", Paper: "always"},
		want: "rules:\n  - name: a\n    match: {services: [PSY]}\n  - name: 'oui: non'\n    match:\n      document_codes: [\"11488-4\"]\n" +
			"    action:\n      send: delay\n      delay_hours: 24\n      patient: never\n      paper: always\n",
		line: 4,
	}, {
		name: "a rule edited keeps what the form does not set, and its comments",
		source: "rules:\n  - name: Bio\n    match: {document_codes: [\"11502-2\"], recipient_kinds: [patient]}\n" +
			"    action: {send: delay, delay_hours: 48, on_failure: worklist} # suivi\n  - name: Tout\n",
		form: ruleForm{Old: "Bio", Name: "Biologie", Code: "11502-2", Send: "review", Patient: "never", Paper: "always"},
		want: "rules:\n  - name: Biologie\n    match: {document_codes: [\"11502-2\"], recipient_kinds: [patient]}\n" +
			"    action: {send: review, on_failure: worklist, patient: never, paper: always} # suivi\n  - name: Tout\n",
		line: 2,
	}, {
		name:   "a delay goes after the send mode",
		source: "rules:\n  - name: Img\n    match:\n      document_codes: [18748-4] # imagerie\n    action:\n      send: review\n      paper: never\n",
		form:   ruleForm{Old: "Img", Name: "Img", Code: "18748-4", Send: "delay", Delay: "24", Patient: "send", Paper: "never"},
		want: "rules:\n  - name: Img\n    match:\n      document_codes: [\"18748-4\"] # imagerie\n    action:\n      send: delay\n" +
			"      delay_hours: 24\n      patient: send\n      paper: never\n",
		line: 2,
	}, {
		name:   "no action yet",
		source: "rules:\n  - name: Img\n    match: {document_codes: [18748-4]}\n",
		form:   ruleForm{Old: "Img", Name: "Img", Code: "18748-4", Send: "auto", Patient: "send", Paper: "never"},
		want: "rules:\n  - name: Img\n    match: {document_codes: [\"18748-4\"]}\n    action:\n      send: auto\n" +
			"      patient: send\n      paper: never\n",
		line: 2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs, err := dispatch.ParseRules([]byte(tt.source))
			require.NoError(t, err)
			require.Empty(t, tt.form.check(rs, []byte(tt.source)))
			out, line, err := writeRule([]byte(tt.source), tt.form, rs)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(out))
			require.Equal(t, tt.line, line)
			written, err := dispatch.ParseRules(out)
			require.NoError(t, err)
			f, ok := formOf(written, out, tt.form.Name)
			require.True(t, ok, "the form edits the rule it wrote")
			require.Equal(t, tt.form.Code, f.Code)
			require.Equal(t, tt.form.Send, f.Send)
		})
	}
}

func TestMoveRuleKeepsTheText(t *testing.T) {
	t.Parallel()
	demo, err := os.ReadFile("../testdata/demo/regles-cme.yaml")
	require.NoError(t, err)
	out, err := moveRule(demo, "Lettre de liaison suivie", 1)
	require.NoError(t, err)
	blocks := strings.Split(string(demo), "\n\n")
	i := len(blocks) - 3 // the blocks of the last three rules, comments and all
	require.Contains(t, blocks[i], "Lettre de liaison suivie")
	blocks[i], blocks[i+1] = blocks[i+1], blocks[i]
	require.Equal(t, strings.Join(blocks, "\n\n"), string(out), "the rules swapped, comments and blank lines kept")

	// A blank line inside a block scalar is part of its value: kept as it is.
	src := "comment: |\n  a\n\n  b\nrules:\n  - name: a\n  - name: b\n"
	out, err = moveRule([]byte(src), "b", -1)
	require.NoError(t, err)
	require.Equal(t, "comment: |\n  a\n\n  b\nrules:\n  - name: b\n  - name: a\n", string(out))

	_, err = moveRule([]byte(src), "c", 1)
	require.EqualError(t, err, "aucune règle ne s'appelle « c »")
}

func TestRuleFormCheck(t *testing.T) {
	t.Parallel()
	source := []byte("rules:\n  - name: Bio\n    match: {document_codes: [\"11502-2\"]}\n" +
		"  - name: Deux\n    match: {document_codes: [\"1-1\", \"2-2\"]}\n  - name: Tout\n")
	rs, err := dispatch.ParseRules(source)
	require.NoError(t, err)
	ok := ruleForm{Name: "Imagerie", Code: "18748-4", Send: "delay", Delay: "48", Patient: "send", Paper: "never"}
	require.Empty(t, ok.check(rs, source))
	for _, tt := range []struct {
		change func(*ruleForm)
		want   string
	}{
		{func(f *ruleForm) { f.Name = "" }, "Donnez un nom"},
		{func(f *ruleForm) { f.Code = "compte rendu" }, "code LOINC"},
		{func(f *ruleForm) { f.Send = "later" }, "parmi ceux proposés"},
		{func(f *ruleForm) { f.Paper = "" }, "parmi ceux proposés"},
		{func(f *ruleForm) { f.Delay = "0" }, "de 1 à 720"},
		{func(f *ruleForm) { f.Delay = "" }, "de 1 à 720"},
		{func(f *ruleForm) { f.Name = "Tout" }, "Une règle s'appelle déjà « Tout »"},
		{func(f *ruleForm) { f.Code = "11502-2" }, "La règle « Bio » décide déjà de ce type de document"},
		{func(f *ruleForm) { f.Old = "Deux" }, "La règle « Deux » a changé dans le texte"},
		{func(f *ruleForm) { f.Old = "Partie" }, "La règle « Partie » a changé dans le texte"},
	} {
		f := ok
		tt.change(&f)
		require.Contains(t, f.check(rs, source), tt.want, "%+v", f)
	}
	edit := ok
	edit.Old, edit.Name, edit.Code = "Bio", "Bio", "11502-2"
	require.Empty(t, edit.check(rs, source), "a rule keeps its name and type when edited")
}
