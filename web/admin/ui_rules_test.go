package admin_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
	"github.com/mssdispatch/mssdispatch/rules"
)

// rulesText is the text of the rules' editor on a page, as a browser reads
// it (without the line break that follows <textarea>).
func rulesText(t *testing.T, body string) string {
	t.Helper()
	start := strings.Index(body, `name="source"`)
	require.Positive(t, start, "the page has the editor")
	start += strings.Index(body[start:], ">\n") + 2
	end := start + strings.Index(body[start:], "</textarea>")
	return html.UnescapeString(body[start:end])
}

// rulesForm is the editor's form: the text, its base version and the fields
// of the form of the common rules.
func rulesForm(source string, fields ...string) url.Values {
	v := url.Values{"source": {source}, "base": {"0"}}
	for i := 0; i+1 < len(fields); i += 2 {
		v.Set(fields[i], fields[i+1])
	}
	return v
}

func TestRulesScreenMistakes(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	cme := b.Login(t, "dr-cme", auth.RoleCME)
	bad := "rules:\n  - name: Biologie\n    action: {send: delay, delay_hours: 900}\n  - name: Imagerie\n" +
		"    match: {document_codes: [18748-4]}\n    action: {paper: sometimes}\n  - name: Biologie\n"
	for _, path := range []string{"/rules/dry-run", "/rules", "/rules/form"} {
		status, body := cme.Post(t, path, rulesForm(bad, "form", "write"))
		require.Equal(t, http.StatusBadRequest, status, path)
		require.Contains(t, body, "3 erreurs à corriger", path)
		text := html.UnescapeString(body)
		for _, want := range []string{
			`<a href="#rules-source" data-line="3">ligne 3</a>, règle 1 « Biologie », <code>action.delay_hours</code>: 900: un délai va de 1 à 720 heures`,
			`<a href="#rules-source" data-line="6">ligne 6</a>, règle 2 « Imagerie », <code>action.paper</code>`,
			`<a href="#rules-source" data-line="7">ligne 7</a>, règle 3, <code>name</code>: "Biologie" est déjà le nom de la règle 1`,
		} {
			require.Contains(t, text, want, path)
		}
		require.Equal(t, bad, rulesText(t, body), "the text kept as typed")
	}
}

func TestRulesScreenForm(t *testing.T) {
	t.Parallel()
	b := webtest.SetupDemo(t)
	report := b.ReviewReport(t, "form-1", "CARDIO")
	cme := b.Login(t, "dr-cme", auth.RoleCME)

	// The form offers the types of document received, by their title.
	status, body := cme.Get(t, "/rules")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `<option value="11490-0">Lettre de liaison de sortie</option>`)
	require.Contains(t, body, "Ajouter une règle pour un type de document")
	inForce := rulesText(t, body)

	// A new rule: written into the text before the rule for everything,
	// then previewed; nothing is saved.
	add := rulesForm(inForce, "form", "write", "rule_name", "Lettres de sortie différées", "rule_code", "11490-0",
		"rule_send", "delay", "rule_delay", "24", "rule_patient", "send", "rule_paper", "directory")
	status, body = cme.Post(t, "/rules/form", add)
	require.Equal(t, http.StatusOK, status, body)
	written := rulesText(t, body)
	require.True(t, strings.HasPrefix(written, "rules:\n  - name: Lettres de sortie différées\n    match:\n"+
		"      document_codes: [\"11490-0\"]\n    action:\n      send: delay\n      delay_hours: 24\n      patient: send\n"+
		"      paper: directory\n  - name: défaut\n"), written)
	require.Contains(t, html.UnescapeString(body), `La règle « Lettres de sortie différées » est écrite dans le texte, <a href="#rules-source" data-line="2">ligne 2</a>.`)
	require.Contains(t, body, "Prévisualisation")
	require.Contains(t, body, `href="/reports/`)
	require.Contains(t, body, "24 h après la réception", "the preview says when the emails would go")
	require.Contains(t, html.UnescapeString(body), "Modifier la règle « Lettres de sortie différées »", "the form now edits the rule it wrote")
	require.Zero(t, b.RuleVersions(t), "the form saves nothing")

	// Saving is the editor's: the text as a new version.
	status, loc := cme.Post(t, "/rules", rulesForm(written, "comment", "Lettres différées"))
	require.Equal(t, http.StatusSeeOther, status, loc)
	code, _, rulesJSON := b.Call(t, "GET", "/api/v1/rules", "")
	require.Equal(t, http.StatusOK, code)
	rs := webtest.DecodeRuleSet(t, rulesJSON)
	require.Equal(t, 1, rs.Version)
	require.Equal(t, "Lettres de sortie différées", rs.Rules[0].Name)
	require.Equal(t, rules.Action{Send: rules.SendDelay, DelayHours: 24, Patient: rules.PatientSend,
		Paper: rules.PaperDirectory, AddressMismatch: rules.MismatchSend, OnFailure: rules.FallbackPaper,
		NoDSNAction: rules.FallbackWorklist, UnreadAction: rules.FallbackWorklist}, rs.Rules[0].Action)

	// Editing a rule fills the form with it; writing it changes it in place.
	status, body = cme.Get(t, "/rules")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `aria-label="Modifier la règle Lettres de sortie différées avec le formulaire"`)
	require.NotContains(t, body, `aria-label="Modifier la règle défaut avec le formulaire"`, "a rule for every document is the text's")
	saved := rulesText(t, body)
	edit := rulesForm(saved, "form", "edit:Lettres de sortie différées")
	edit.Set("base", "1")
	status, body = cme.Post(t, "/rules/form", edit)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `name="rule_old" value="Lettres de sortie différées"`)
	require.Contains(t, body, `name="rule_code" size="12" list="document-types" value="11490-0"`)
	require.Contains(t, body, `value="delay" checked`)
	require.Contains(t, body, `name="rule_delay" type="number" min="1" max="720" size="4" value="24"`)
	require.Equal(t, saved, rulesText(t, body), "editing changes nothing in the text yet")

	review := rulesForm(saved, "form", "write", "rule_old", "Lettres de sortie différées", "rule_name", "Lettres de sortie relues",
		"rule_code", "11490-0", "rule_send", "review", "rule_patient", "never", "rule_paper", "directory")
	review.Set("base", "1")
	status, body = cme.Post(t, "/rules/form", review)
	require.Equal(t, http.StatusOK, status, body)
	require.True(t, strings.HasPrefix(rulesText(t, body), "rules:\n  - name: Lettres de sortie relues\n    match:\n"+
		"      document_codes: [\"11490-0\"]\n    action:\n      send: review\n      patient: never\n      paper: directory\n  - name: défaut\n"),
		rulesText(t, body))

	// What the form refuses, in French, the text unchanged.
	for _, tt := range []struct{ field, value, want string }{
		{"rule_code", "lettre", "Le type de document est un code LOINC"},
		{"rule_delay", "0", "Le délai est un nombre d'heures de 1 à 720."},
		{"rule_name", "défaut", "Une règle s'appelle déjà « défaut »"},
		{"rule_name", "", "Donnez un nom à la règle."},
	} {
		bad := rulesForm(inForce, "form", "write", "rule_name", "Lettres", "rule_code", "11490-0", "rule_send", "delay",
			"rule_delay", "24", tt.field, tt.value)
		status, body = cme.Post(t, "/rules/form", bad)
		require.Equal(t, http.StatusBadRequest, status, tt.want)
		require.Contains(t, html.UnescapeString(body), tt.want)
		require.Equal(t, inForce, rulesText(t, body))
	}

	// A rule the form cannot edit says so.
	two := "rules:\n  - name: Deux types\n    match: {document_codes: [\"11490-0\", \"11502-2\"]}\n    action: {send: review}\n"
	status, _ = cme.Post(t, "/rules/form", rulesForm(two, "form", "edit:Deux types"))
	require.Equal(t, http.StatusBadRequest, status)

	// The rules in force renamed: the preview sees no change for anyone.
	renamed := strings.ReplaceAll(saved, "Lettres de sortie différées", "Lettres de liaison, 24 h")
	status, body = cme.Post(t, "/rules/dry-run", rulesForm(renamed))
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "aucun envoi ne changerait pour son destinataire")
	require.NotContains(t, body, `href="/reports/`, "report %d is not listed", report)
}
