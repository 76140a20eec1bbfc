package admin

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/rules"
)

func TestRuleFormCheck(t *testing.T) {
	t.Parallel()
	source := []byte("rules:\n  - name: Bio\n    match: {document_codes: [\"11502-2\"]}\n" +
		"  - name: Deux\n    match: {document_codes: [\"1-1\", \"2-2\"]}\n  - name: Tout\n")
	rs, err := rules.Parse(source)
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
