package admin_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// quarantine stores a refused message and returns its id.
func quarantine(t *testing.T, b *webtest.Server, controlID, reason, raw string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, b.Pool.QueryRow(context.Background(), `INSERT INTO quarantine (kind, source, message_control_id, reason, raw)
		VALUES ('hl7', 'mllp', $1, $2, $3) RETURNING id`, controlID, reason, []byte(raw)).Scan(&id))
	return id
}

// sent is msg (sampleORU or a variant) as the DPI sends it with the
// control id controlID from the care unit service (PV1-3; none when empty).
func sent(msg, controlID, service string) string {
	msg = strings.Replace(msg, "|MSG0001|", "|"+controlID+"|", 1)
	if service != "" {
		msg = strings.Replace(msg, "\rPV1|1|O\r", "\rPV1|1|O|"+service+"^^^CH\r", 1)
	}
	return msg
}

// replacementORU is sampleORU replacing its document by version 2
// (dispatch/hl7intake/testdata/n1-pdf-v2.xml).
func replacementORU(t *testing.T) string {
	t.Helper()
	v1, err := os.ReadFile(webtest.File("cda/testdata/n1-pdf.xml"))
	require.NoError(t, err)
	v2, err := os.ReadFile(webtest.File("dispatch/hl7intake/testdata/n1-pdf-v2.xml"))
	require.NoError(t, err)
	msg := strings.Replace(webtest.SampleORU(t), "^Base64^"+base64.StdEncoding.EncodeToString(v1)+"||||||F",
		"^Base64^"+base64.StdEncoding.EncodeToString(v2)+"||||||C", 1)
	return strings.Replace(msg, "\rORC|NW|", "\rORC|RO|", 1)
}

// sendHL7 posts msg to the HL7 route of the API and checks its ACK code (AA, AE).
func sendHL7(t *testing.T, b *webtest.Server, msg, want string) {
	t.Helper()
	code, _, ack := b.Call(t, "POST", "/api/v1/hl7", msg)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, ack, "MSA|"+want+"|", ack)
}

// quarantineID returns the id of the quarantine's row of the message controlID.
func quarantineID(t *testing.T, b *webtest.Server, controlID string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, b.Pool.QueryRow(context.Background(), `SELECT id FROM quarantine WHERE message_control_id = $1`,
		controlID).Scan(&id))
	return id
}

func TestAdminPermissions(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	id := quarantine(t, b, "MSG-1", "PID-3 absent", "MSH|^~\\&|DPI|CH|||PID|||DURAND")
	sec := b.Login(t, "alice", auth.RoleSecretary)
	cme := b.Login(t, "dr-cme", auth.RoleCME)

	for _, path := range []string{"/audit", "/admin/users", fmt.Sprintf("/quarantine/%d/raw", id), "/quarantine/999/raw"} {
		status, _ := sec.Get(t, path)
		require.Equal(t, http.StatusForbidden, status, path)
		status, _ = cme.Get(t, path)
		require.Equal(t, http.StatusForbidden, status, path)
	}
	for _, path := range []string{"/rules", "/rules/dry-run", "/rules/move", "/admin/users", "/admin/users/alice/disable"} {
		status, _ := sec.Post(t, path, url.Values{"source": {"rules:\n  - name: x\n"}, "username": {"mallory"},
			"password": {"a long enough password"}, "role": {"admin"}})
		require.Equal(t, http.StatusForbidden, status, path)
	}
	status, _ := cme.Post(t, "/directory/local", url.Values{"national_id": {"99900000002"}, "family": {"X"}})
	require.Equal(t, http.StatusForbidden, status, "the CME does not edit correspondents")
	status, _ = cme.Post(t, "/admin/users", url.Values{"username": {"mallory"}})
	require.Equal(t, http.StatusForbidden, status)
	users, err := b.Accounts.Users(context.Background())
	require.NoError(t, err)
	require.Len(t, users, 2, "no account was added")
	require.Empty(t, b.AuditEntries(t, "rules_changed"))
	require.Empty(t, b.AuditEntries(t, "quarantine_viewed"))

	// Every role reads the rules, the directory and the quarantine; only
	// the CME and the administrators get the editor.
	for _, path := range []string{"/rules", "/rules/history", "/rules/0", "/directory", "/quarantine"} {
		status, body := sec.Get(t, path)
		require.Equal(t, http.StatusOK, status, path)
		require.NotContains(t, body, `id="rules-form"`, path)
	}
	_, body := sec.Get(t, "/rules")
	require.Contains(t, body, "readonly")
	_, body = cme.Get(t, "/rules")
	require.Contains(t, body, `id="rules-form"`)
	_, body = sec.Get(t, "/worklists/review")
	require.NotContains(t, body, `href="/audit"`, "the menu hides the admin screens")

	// Signed out, the screens send to the login page.
	status, loc := b.Anonymous(t).Get(t, "/rules")
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "/login?next=%2Frules", loc)
}

const twoRules = `# Règles de la CME
rules:
  - name: Psychiatrie relue
    match: {services: [PSY]}
    action: {send: review}
  # tout le reste
  - name: Tout relu
    action: {send: review, patient: never}
`

func TestAdminRulesEditor(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	report := b.ReviewReport(t, "rules-1", "CARDIO")
	cme := b.Login(t, "dr-cme", auth.RoleCME)

	status, body := cme.Get(t, "/rules")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "version 0")
	require.Contains(t, body, "défaut")
	require.Contains(t, body, "envoi automatique")

	// The dry run shows what would change, and saves nothing.
	status, body = cme.Post(t, "/rules/dry-run", url.Values{"source": {strings.ReplaceAll(twoRules, "\n", "\r\n")},
		"reports": {"10"}, "base": {"0"}})
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "Prévisualisation")
	require.Contains(t, body, fmt.Sprintf(`href="/reports/%d"`, report))
	require.Contains(t, body, "règle « Tout relu »")
	require.Contains(t, body, "À vérifier")
	require.Contains(t, body, "services: PSY")
	require.Contains(t, body, "jamais au patient")
	require.Contains(t, body, html.EscapeString("# tout le reste"), "the text is kept as typed")
	require.NotContains(t, body, "\r\n# tout le reste", "CRLF are read as LF")
	require.Zero(t, b.RuleVersions(t), "a dry run stores nothing")

	// Moving a rule rewrites the text's order, keeping its comments.
	status, body = cme.Post(t, "/rules/move", url.Values{"source": {twoRules}, "move": {"down:Psychiatrie relue"}})
	require.Equal(t, http.StatusOK, status, body)
	source := html.UnescapeString(body[strings.Index(body, `name="source"`):])
	require.Less(t, strings.Index(source, "name: Tout relu"), strings.Index(source, "name: Psychiatrie relue"))
	require.Contains(t, source, "# tout le reste")
	require.Contains(t, source, "# Règles de la CME")
	status, _ = cme.Post(t, "/rules/move", url.Values{"source": {twoRules}, "move": {"sideways:Tout relu"}})
	require.Equal(t, http.StatusBadRequest, status)

	// Bad YAML: 400, the error shown, the text kept.
	for _, bad := range []string{"rules: [\n  - name: x\n", "rules:\n  - name: Papier\n    action: {paper: sometimes}\n"} {
		for _, path := range []string{"/rules", "/rules/dry-run", "/rules/move"} {
			status, body = cme.Post(t, path, url.Values{"source": {bad}, "comment": {"essai"}, "move": {"up:x"}})
			require.Equal(t, http.StatusBadRequest, status, path)
			require.Contains(t, body, "Règles invalides", path)
			require.Contains(t, html.UnescapeString(body), bad, path)
		}
	}
	require.Contains(t, body, "action.paper")
	status, body = cme.Post(t, "/rules/dry-run", url.Values{"source": {twoRules}, "reports": {"9999"}})
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "nombre de comptes rendus")

	// Saving makes a version, in the history, with an audit entry.
	status, loc := cme.Post(t, "/rules", url.Values{"source": {twoRules}, "comment": {"Relecture générale"}, "base": {"0"}})
	require.Equal(t, http.StatusSeeOther, status, loc)
	require.Equal(t, "/rules", loc)
	status, body = cme.Get(t, "/rules")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "Règles enregistrées: version 1")
	require.Contains(t, body, "version 1")
	require.Contains(t, body, "dr-cme")
	require.Contains(t, body, "Relecture générale")
	require.Contains(t, body, `<input type="hidden" name="base" value="1">`)
	status, body = cme.Get(t, "/rules/history")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `href="/rules/1"`)
	require.Contains(t, body, `href="/rules/0"`)
	status, body = cme.Get(t, "/rules/1")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, html.UnescapeString(body), "# tout le reste")
	require.Contains(t, body, "Reprendre cette version")
	status, _ = cme.Get(t, "/rules/7")
	require.Equal(t, http.StatusNotFound, status)
	entries := b.AuditEntries(t, "rules_changed")
	require.Len(t, entries, 1)
	require.Equal(t, "dr-cme", entries[0].Actor)
	require.Equal(t, "rules:1", entries[0].Object)
	require.Contains(t, entries[0].Detail, "Relecture générale")

	// Saving over a version that changed meanwhile is refused, the text kept.
	status, body = cme.Post(t, "/rules", url.Values{"source": {webtest.RulesYAML}, "base": {"0"}})
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, body, "Les règles ont changé")
	require.Contains(t, body, `name="base" value="1"`)
	require.Len(t, b.AuditEntries(t, "rules_changed"), 1)

	// An administrator may change the rules too.
	admin := b.Login(t, "root", auth.RoleAdmin)
	status, _ = admin.Post(t, "/rules", url.Values{"source": {webtest.RulesYAML}, "base": {"1"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "root", b.AuditEntries(t, "rules_changed")[0].Actor)
}

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	admin := b.Login(t, "root", auth.RoleAdmin)

	status, body := admin.Get(t, "/admin/users")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `data-user="root"`)
	require.NotContains(t, body, `action="/admin/users/root/disable"`, "an administrator cannot disable themselves")

	form := url.Values{"username": {"Sec2"}, "display_name": {"Sophie Martin"}, "role": {"secretary"},
		"services": {"CARDIO, PNEUMO,,"}, "password": {"initial password 1"}}
	status, loc := admin.Post(t, "/admin/users", form)
	require.Equal(t, http.StatusSeeOther, status, loc)
	require.Equal(t, "/admin/users", loc)
	status, body = admin.Get(t, "/admin/users")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "Compte « sec2 » créé")
	require.Contains(t, body, `data-user="sec2"`)
	require.Contains(t, body, "Sophie Martin")
	require.Contains(t, body, "CARDIO, PNEUMO")
	added := b.AuditEntries(t, "user_added")
	require.NotEmpty(t, added)
	require.Equal(t, "root", added[0].Actor)
	require.Equal(t, "user:sec2", added[0].Object)

	// The new account works.
	c := b.Anonymous(t)
	status, _ = c.Post(t, "/login", url.Values{"username": {"sec2"}, "password": {"initial password 1"}})
	require.Equal(t, http.StatusSeeOther, status)

	// Refusals re-render the form, as typed but for the password.
	status, body = admin.Post(t, "/admin/users", form)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "Cet identifiant est déjà pris")
	for field, value := range map[string]string{"password": "short", "username": "x", "role": "boss"} {
		f := url.Values{"username": {"newbie"}, "display_name": {"Nouveau"}, "role": {"cme"}, "password": {"a long enough password"}}
		f.Set(field, value)
		status, body = admin.Post(t, "/admin/users", f)
		require.Equal(t, http.StatusBadRequest, status, field)
		require.Contains(t, body, `id="user-error"`, field)
		require.Contains(t, body, `value="Nouveau"`, field)
		require.NotContains(t, body, "a long enough password", field)
	}
	require.Contains(t, admin.MustGet(t, "/admin/users"), `data-user="sec2"`)

	// Disable, then enable again.
	status, _ = admin.Post(t, "/admin/users/sec2/disable", nil)
	require.Equal(t, http.StatusSeeOther, status)
	body = admin.MustGet(t, "/admin/users")
	require.Contains(t, body, "désactivé")
	require.Contains(t, body, `action="/admin/users/sec2/enable"`)
	status, _ = b.Anonymous(t).Post(t, "/login", url.Values{"username": {"sec2"}, "password": {"initial password 1"}})
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = admin.Post(t, "/admin/users/sec2/enable", nil)
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "user:sec2", b.AuditEntries(t, "user_disabled")[0].Object)
	require.Equal(t, "root", b.AuditEntries(t, "user_enabled")[0].Actor)
	status, _ = admin.Post(t, "/admin/users/root/disable", nil)
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, admin.MustGet(t, "/admin/users"), "propre compte")
	status, _ = admin.Post(t, "/admin/users/nobody/disable", nil)
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, admin.MustGet(t, "/admin/users"), "Ce compte n")

	// The password can be reset.
	status, _ = admin.Post(t, "/admin/users/sec2/password", url.Values{"password": {"short"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, admin.MustGet(t, "/admin/users"), "12 caractères")
	status, _ = admin.Post(t, "/admin/users/sec2/password", url.Values{"password": {"another password 2"}})
	require.Equal(t, http.StatusSeeOther, status)
	status, _ = b.Anonymous(t).Post(t, "/login", url.Values{"username": {"sec2"}, "password": {"another password 2"}})
	require.Equal(t, http.StatusSeeOther, status)

	// The audit log shows it all.
	status, body = admin.Get(t, "/audit?action=user_added")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "user:sec2")
	require.NotContains(t, body, `title="user_disabled"`)
	_, body = admin.Get(t, "/audit?actor=root")
	require.Contains(t, body, `title="user_disabled"`)
	require.Contains(t, body, `title="user_enabled"`)
	require.Contains(t, body, `title="password_changed"`)
}

func TestAdminAuditLog(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	admin := b.Login(t, "root", auth.RoleAdmin)
	ctx := context.Background()
	for i := range 60 {
		require.NoError(t, audit.Write(ctx, b.Pool, audit.Entry{Actor: "robot", Action: "test_entry",
			Object: fmt.Sprintf("thing:%d", i)}))
	}
	status, body := admin.Get(t, "/audit?actor=robot")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 50, strings.Count(body, "data-audit="))
	require.Contains(t, body, "thing:59")
	require.NotContains(t, body, "thing:9<")
	start := strings.Index(body, `<a rel="next" href="`)
	require.Positive(t, start, "a link to older entries")
	next := html.UnescapeString(body[start+len(`<a rel="next" href="`):])
	next = next[:strings.Index(next, `"`)]
	require.Contains(t, next, "actor=robot")
	status, body = admin.Get(t, next)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 10, strings.Count(body, "data-audit="))
	require.Contains(t, body, "thing:0<")
	require.NotContains(t, body, `rel="next"`)
	status, _ = admin.Get(t, "/audit?before=abc")
	require.Equal(t, http.StatusBadRequest, status)
}

func TestAdminQuarantine(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	const raw = "MSH|^~\\&|DPI|CH|||20240312||ORU^R01|MSG-Q|P|2.5\rPID|||IPP9||SECRETPATIENT^Jeanne"
	id := quarantine(t, b, "MSG-Q", "PID-3: IPP absent", raw)
	sec := b.Login(t, "alice", auth.RoleSecretary)
	admin := b.Login(t, "root", auth.RoleAdmin)

	status, body := sec.Get(t, "/quarantine")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "PID-3: IPP absent")
	require.Contains(t, body, "MSG-Q")
	require.NotContains(t, body, "SECRETPATIENT")
	require.NotContains(t, body, "/raw")
	status, _ = sec.Get(t, fmt.Sprintf("/quarantine/%d/raw", id))
	require.Equal(t, http.StatusForbidden, status)

	_, body = admin.Get(t, "/quarantine")
	require.NotContains(t, body, "SECRETPATIENT")
	require.Contains(t, body, fmt.Sprintf(`href="/quarantine/%d/raw"`, id))
	resp, data := admin.Do(t, http.MethodGet, fmt.Sprintf("/quarantine/%d/raw", id), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, raw, data)
	require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
	viewed := b.AuditEntries(t, "quarantine_viewed")
	require.Len(t, viewed, 1)
	require.Equal(t, "root", viewed[0].Actor)
	require.Equal(t, fmt.Sprintf("quarantine:%d", id), viewed[0].Object)

	status, _ = admin.Get(t, "/quarantine/99999/raw")
	require.Equal(t, http.StatusNotFound, status)
	_, err := b.Pool.Exec(context.Background(), `UPDATE quarantine SET raw = ''::bytea, purged_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	status, _ = admin.Get(t, fmt.Sprintf("/quarantine/%d/raw", id))
	require.Equal(t, http.StatusGone, status)
	require.Len(t, b.AuditEntries(t, "quarantine_viewed"), 1)
	_, body = sec.Get(t, "/quarantine")
	require.Contains(t, body, "purgé")
	require.Contains(t, body, "PID-3: IPP absent", "the reason outlives the bytes")

	// A message refused by the API's HL7 route lands there too; pages go
	// from the newest to the oldest.
	code, _, ack := b.Call(t, "POST", "/api/v1/hl7", "not hl7")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, ack, "MSA|AE")
	for i := range 50 {
		quarantine(t, b, fmt.Sprintf("MSG-P-%02d", i), "test", "x")
	}
	_, body = sec.Get(t, "/quarantine")
	require.Equal(t, 50, strings.Count(body, "data-quarantine="))
	require.Contains(t, body, "MSG-P-49")
	require.NotContains(t, body, "MSG-Q<br>")
	start := strings.Index(body, `<a rel="next" href="`)
	require.Positive(t, start)
	next := html.UnescapeString(body[start+len(`<a rel="next" href="`):])
	_, body = sec.Get(t, next[:strings.Index(next, `"`)])
	require.Equal(t, 2, strings.Count(body, "data-quarantine="))
	require.Contains(t, body, "MSG-Q<br>")
	require.NotContains(t, body, `rel="next"`)
}

func TestAdminDirectory(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	editor := b.Login(t, "claude", auth.RoleSecretary)
	admin := b.Login(t, "root", auth.RoleAdmin)
	status, _ := editor.Post(t, "/directory/local", url.Values{"national_id": {"899900000002"}, "family": {"X"}})
	require.Equal(t, http.StatusForbidden, status, "a secretary proposes")
	// The administrator trusts claude with the local directory.
	status, _ = admin.Post(t, "/admin/users/claude/grant-correspondents", nil)
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, admin.MustGet(t, "/admin/users"), "peut désormais modifier l&#39;annuaire local")
	require.Equal(t, "droits : correspondents", b.AuditEntries(t, "grants_changed")[0].Detail)

	status, body := editor.Get(t, "/directory?q=dupont-demo")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "claire.dupont-demo@medecin-demo.mssante.fr")
	require.Contains(t, body, "RPPS 99900000002")
	require.Contains(t, body, "Créer une fiche locale")
	require.NotContains(t, body, "Imports de l", "imports are for administrators")
	_, body = editor.Get(t, "/directory?q=zzzz")
	require.Contains(t, body, "Aucune boîte aux lettres trouvée")

	// A local override, by RPPS typed without its prefix.
	form := url.Values{"national_id": {"99900000002"}, "family": {"DUPONT-DEMO"}, "given": {"Claire"},
		"mssante_address": {"claire.dupont-demo@medecin-demo.mssante.fr"}, "postal_lines": {"Cabinet\r\n3 rue des Lilas"},
		"postal_code": {"33000"}, "postal_city": {"Bordeaux"}, "preference": {"paper"}, "note": {"Préfère le courrier"}}
	status, loc := editor.Post(t, "/directory/local", form)
	require.Equal(t, http.StatusSeeOther, status, loc)
	require.True(t, strings.HasPrefix(loc, "/directory?edit="), loc)
	status, body = editor.Get(t, loc)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "Fiche locale de Claire DUPONT-DEMO enregistrée")
	require.Contains(t, body, `value="899900000002"`)
	require.Contains(t, body, "Papier seulement")
	require.Contains(t, body, "Cabinet, 3 rue des Lilas 33000 BORDEAUX")
	saved := b.AuditEntries(t, "correspondent_created")
	require.Len(t, saved, 1)
	require.Equal(t, "claude", saved[0].Actor)
	id := strings.TrimPrefix(saved[0].Object, "correspondent:")
	require.Equal(t, "/directory?edit="+id, loc)
	var pref string
	require.NoError(t, b.Pool.QueryRow(context.Background(), `SELECT preference FROM local_correspondents WHERE national_id = '899900000002'`).Scan(&pref))
	require.Equal(t, "paper", pref)

	// Edit it: the journal keeps the before and after.
	form.Set("id", id)
	form.Set("preference", "both")
	status, _ = editor.Post(t, "/directory/local", form)
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, editor.MustGet(t, "/directory"), "MSSanté et papier")
	require.Equal(t, "préférence : paper → both", b.AuditEntries(t, "correspondent_changed")[0].Detail)

	// Refusals keep the form.
	status, body = editor.Post(t, "/directory/local", url.Values{"national_id": {"123"}, "family": {"NOUVEAU"}})
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "Fiche refusée: identifiant national")
	require.Contains(t, body, `value="NOUVEAU"`)
	form.Del("id")
	status, body = editor.Post(t, "/directory/local", form)
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, body, "Une fiche locale existe déjà")

	// An administrator sees the imports.
	body = admin.MustGet(t, "/directory")
	require.Contains(t, body, `data-import="directory"`)
	require.Contains(t, body, `data-import="whitelist"`)

	// Delete it.
	status, loc = editor.Post(t, "/directory/local/"+id+"/delete", nil)
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "/directory", loc)
	body = editor.MustGet(t, "/directory")
	require.Contains(t, body, "supprimée")
	require.Contains(t, body, "Aucun correspondant local")
	deleted := b.AuditEntries(t, "correspondent_deleted")
	require.Len(t, deleted, 1)
	require.Equal(t, "correspondent:"+id, deleted[0].Object)
	require.Contains(t, deleted[0].Detail, "préférence both")
	status, _ = editor.Post(t, "/directory/local/"+id+"/delete", nil)
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, editor.MustGet(t, "/directory"), "existe plus")
	status, _ = editor.Get(t, "/directory?edit="+id)
	require.Equal(t, http.StatusNotFound, status)

	// Taken back, claude proposes again.
	status, _ = admin.Post(t, "/admin/users/claude/revoke-correspondents", nil)
	require.Equal(t, http.StatusSeeOther, status)
	status, _ = editor.Post(t, "/directory/local", form)
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "droits : aucun", b.AuditEntries(t, "grants_changed")[0].Detail)
}

// TestLocalDirectoryScope: a local correspondent changes where every
// service's letters go. A secretary limited to CARDIO could, before, change
// through the directory screen the address a PNEUMO report then went to;
// now she can only propose it, and it applies once an administrator
// approves.
func TestLocalDirectoryScope(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	cardio := b.Login(t, "alice", auth.RoleSecretary, "CARDIO")
	admin := b.Login(t, "root", auth.RoleAdmin)
	form := url.Values{"national_id": {"99900000002"}, "family": {"DUPONT-DEMO"}, "given": {"Claire"},
		"mssante_address": {"cabinet@ch-demo.mssante.fr"}, "why": {"nouvelle adresse donnée au téléphone"}}

	status, body := cardio.Post(t, "/directory/local", form)
	require.Equal(t, http.StatusForbidden, status, body)
	body = cardio.MustGet(t, "/directory?q=dupont-demo")
	require.Contains(t, body, "Proposer une fiche locale")
	require.NotContains(t, body, `action="/directory/local"`)
	require.Contains(t, body, `action="/directory/proposals"`)

	status, loc := cardio.Post(t, "/directory/proposals", form)
	require.Equal(t, http.StatusSeeOther, status, loc)
	body = cardio.MustGet(t, loc)
	require.Contains(t, body, "Proposition n° ")
	require.Contains(t, body, "Vos propositions")
	require.Contains(t, body, "en attente")
	var n int
	require.NoError(t, b.Pool.QueryRow(context.Background(), `SELECT count(*) FROM local_correspondents`).Scan(&n))
	require.Zero(t, n, "nothing changes before approval")
	report := b.ReviewReport(t, "pneumo-1", "PNEUMO")
	_, address := b.DeliveryAddress(t, report, "DUPONT-DEMO")
	require.Equal(t, "claire.dupont-demo@medecin-demo.mssante.fr", address, "the PNEUMO report goes to the directory's address")

	// The administrator sees it with its changes, and applies it.
	body = admin.MustGet(t, "/directory")
	require.Contains(t, body, "Propositions à examiner")
	require.Contains(t, body, "adresse MSSanté cabinet@ch-demo.mssante.fr")
	require.Contains(t, body, "nouvelle adresse donnée au téléphone")
	m := regexp.MustCompile(`action="(/directory/proposals/\d+)/apply"`).FindStringSubmatch(body)
	require.NotNil(t, m, body)
	status, _ = cardio.Post(t, m[1]+"/apply", nil)
	require.Equal(t, http.StatusForbidden, status, "she cannot apply her own")
	status, _ = admin.Post(t, m[1]+"/apply", nil)
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, admin.MustGet(t, "/directory"), "Proposition appliquée")
	require.Contains(t, cardio.MustGet(t, "/directory"), "appliquée par root")
	report = b.ReviewReport(t, "pneumo-2", "PNEUMO")
	_, address = b.DeliveryAddress(t, report, "DUPONT-DEMO")
	require.Equal(t, "cabinet@ch-demo.mssante.fr", address)

	// The journal: who proposed, who applied, with the before and after.
	changed := b.AuditEntries(t, "correspondent_created")
	require.Len(t, changed, 1)
	require.Equal(t, "root", changed[0].Actor)
	require.Contains(t, changed[0].Detail, "proposition n° ")
	require.Contains(t, changed[0].Detail, "de alice")
	proposed := b.AuditEntries(t, "correspondent_proposed")
	require.Len(t, proposed, 1)
	require.Equal(t, "alice", proposed[0].Actor)

	// A rejected proposal says why.
	form.Set("mssante_address", "autre@ch-demo.mssante.fr")
	_, _ = cardio.Post(t, "/directory/proposals", form)
	m = regexp.MustCompile(`action="(/directory/proposals/\d+)/reject"`).FindStringSubmatch(admin.MustGet(t, "/directory"))
	require.NotNil(t, m)
	status, _ = admin.Post(t, m[1]+"/reject", url.Values{"why": {"adresse non vérifiée"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, cardio.MustGet(t, "/directory"), "refusée par root : adresse non vérifiée")
	status, _ = admin.Post(t, m[1]+"/apply", nil)
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, admin.MustGet(t, "/directory"), "déjà été traitée")
}

// TestQuarantineScopedByService: a refused message's reason repeats its
// patient data (here both INS), and names its patient and document, so the
// quarantine shows them only to the users who see the message's service,
// admins and the users of every service (issue #19); the others get the
// row without them: where it came from, its type, service and error,
// marked "service non autorisé", and no action on it (issue #20).
func TestQuarantineScopedByService(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	insMismatch := strings.Replace(webtest.SampleORU(t), "PID|1||280017512345678^", "PID|1||299127512300012^", 1)
	sendHL7(t, b, sent(insMismatch, "MSG-CARDIO", "CARDIO"), "AE")
	sendHL7(t, b, sent(insMismatch, "MSG-PNEUMO", "PNEUMO"), "AE")
	sendHL7(t, b, sent(insMismatch, "MSG-NONE", ""), "AE") // no service named

	// row returns the quarantine's row of controlID in page.
	row := func(page, controlID string) string {
		for _, r := range strings.Split(page, "<tr id=\"q-")[1:] {
			if r = r[:strings.Index(r, "</tr>")]; strings.Contains(r, "(MSH-10) : "+controlID+"<br>") {
				return r
			}
		}
		t.Fatalf("no row of %s in %s", controlID, page)
		return ""
	}
	for _, c := range []struct {
		user     *webtest.Browser
		who      string
		visible  []string
		withheld []string
		acts     bool
	}{
		{b.Login(t, "cardio", auth.RoleSecretary, "CARDIO"), "a secretary of cardiology", []string{"MSG-CARDIO"}, []string{"MSG-PNEUMO", "MSG-NONE"}, true},
		{b.Login(t, "cme", auth.RoleCME), "the CME, every service, read-only", []string{"MSG-CARDIO", "MSG-PNEUMO", "MSG-NONE"}, nil, false},
		{b.Login(t, "root", auth.RoleAdmin, "PNEUMO"), "an admin", []string{"MSG-CARDIO", "MSG-PNEUMO", "MSG-NONE"}, nil, true},
	} {
		status, page := c.user.Get(t, "/quarantine")
		require.Equal(t, http.StatusOK, status)
		for _, id := range c.visible {
			r := row(page, id)
			require.Contains(t, r, "299127512300012", "%s reads the reason of %s", c.who, id)
			require.Contains(t, r, "DUPONT Marie · né(e) le 15/01/1980 · IPP IPP0012345", "and whom it is about")
			require.Contains(t, r, "Lettre de sortie du 12/03/2024", "and what")
			require.NotContains(t, r, "service non autorisé", c.who)
			require.Equal(t, c.acts, strings.Contains(r, "Retraiter"), c.who)
			require.Equal(t, c.acts, strings.Contains(r, "Écarter"), c.who)
		}
		for _, id := range c.withheld {
			r := row(page, id)
			for _, data := range []string{"299127512300012", "280017512345678", "INS", "DUPONT", "Lettre de sortie"} {
				require.NotContains(t, r, data, "%s does not read the reason of %s", c.who, id)
			}
			require.Contains(t, r, "service non autorisé", c.who)
			require.Contains(t, r, "DPI_TEST <small>(CH_TEST)</small>", "where it came from is no patient data")
			require.Contains(t, r, "ORU^R01", "the message type is no patient data")
			require.Contains(t, r, "Erreur : 102 PID^1^3", "nor is the error")
			require.Contains(t, r, "valeur incorrecte", "said in French")
			require.NotContains(t, r, "Retraiter", "no action on what one does not see")
			require.NotContains(t, r, "Écarter")
		}
		require.Contains(t, row(page, "MSG-PNEUMO"), "Service PNEUMO")
		require.Contains(t, row(page, "MSG-NONE"), "Service inconnu")
	}
}

// TestQuarantineActions: a secretary of the message's service processes a
// refused message again once its cause is gone (here the document a
// replacement replaces arrived after it), or sets one aside saying why;
// she comes back to the row, which says what became of it. The others
// cannot, nor can the CME, and the raw bytes stay the admins'. Before
// issue #20 the quarantine could only be looked at.
func TestQuarantineActions(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	sendHL7(t, b, sent(replacementORU(t), "RPLC-1", "CARDIO"), "AE")
	sendHL7(t, b, sent(strings.Replace(webtest.SampleORU(t), "PID|1||280017512345678^", "PID|1||299127512300012^", 1), "INS-1", "CARDIO"), "AE")
	rplc, ins := quarantineID(t, b, "RPLC-1"), quarantineID(t, b, "INS-1")
	cardio := b.Login(t, "cardio", auth.RoleSecretary, "CARDIO")
	pneumo := b.Login(t, "pneumo", auth.RoleSecretary, "PNEUMO")
	cme := b.Login(t, "cme", auth.RoleCME)
	follow := func(c *webtest.Browser, path string, form url.Values) string {
		t.Helper()
		status, loc := c.Post(t, path, form)
		require.Equal(t, http.StatusSeeOther, status, loc)
		status, page := c.Get(t, loc)
		require.Equal(t, http.StatusOK, status)
		return page
	}

	for _, action := range []string{"reprocess", "dismiss"} {
		path := fmt.Sprintf("/quarantine/%d/%s", rplc, action)
		status, _ := pneumo.Post(t, path, url.Values{"why": {"pas à moi"}})
		require.Equal(t, http.StatusNotFound, status, "a message of another service: %s", action)
		status, _ = cme.Post(t, path, url.Values{"why": {"pas à moi"}})
		require.Equal(t, http.StatusForbidden, status, "the CME reads: %s", action)
	}

	// Processed again before the DPI sent the original: still refused.
	page := follow(cardio, fmt.Sprintf("/quarantine/%d/reprocess", rplc), nil)
	require.Contains(t, page, "Toujours refusé : le motif affiché est celui d&#39;aujourd&#39;hui.")
	require.Contains(t, page, "par cardio : toujours refusé.")
	require.Contains(t, page, "est inconnu de ce service")

	// The DPI sent it: processed again, it is a report, linked from its row.
	sendHL7(t, b, sent(webtest.SampleORU(t), "ORIG-1", "CARDIO"), "AA")
	status, loc := cardio.Post(t, fmt.Sprintf("/quarantine/%d/reprocess", rplc), nil)
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, fmt.Sprintf("/quarantine?all=1#q-%d", rplc), loc)
	_, page = cardio.Get(t, loc)
	var report int64
	require.NoError(t, b.Pool.QueryRow(context.Background(), `SELECT report_id FROM quarantine WHERE id = $1`, rplc).Scan(&report))
	require.Contains(t, page, fmt.Sprintf("Message accepté : compte rendu n° %d.", report))
	require.Contains(t, page, fmt.Sprintf(`<a href="/reports/%d">compte rendu n° %d</a>`, report, report))
	_, page = cardio.Get(t, "/quarantine")
	require.NotContains(t, page, fmt.Sprintf(`id="q-%d"`, rplc), "no longer to deal with")
	require.Contains(t, page, fmt.Sprintf(`id="q-%d"`, ins))

	// Set aside: a reason is required, then it is shown with the row.
	page = follow(cardio, fmt.Sprintf("/quarantine/%d/dismiss", ins), url.Values{"why": {" "}})
	require.Contains(t, page, "Message non écarté : indiquez pourquoi le message est écarté.")
	page = follow(cardio, fmt.Sprintf("/quarantine/%d/dismiss", ins), url.Values{"why": {"Renvoyé corrigé par le DPI"}})
	require.Contains(t, page, "Message écarté.")
	require.Contains(t, page, "Aucun message à traiter.")
	_, page = cardio.Get(t, "/quarantine?all=1")
	require.Contains(t, page, "par cardio : « Renvoyé corrigé par le DPI »")

	// A second click, from a page left open, finds it dealt with.
	page = follow(cardio, fmt.Sprintf("/quarantine/%d/reprocess", rplc), nil)
	require.Contains(t, page, "Ce message a déjà été retraité ou écarté entre-temps.")

	require.Len(t, b.AuditEntries(t, "quarantine_reprocessed"), 2)
	dismissed := b.AuditEntries(t, "quarantine_dismissed")
	require.Len(t, dismissed, 1)
	require.Equal(t, "cardio", dismissed[0].Actor)
	status, _ = cardio.Get(t, fmt.Sprintf("/quarantine/%d/raw", rplc))
	require.Equal(t, http.StatusForbidden, status)
}
