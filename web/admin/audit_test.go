package admin_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// TestAuditTrail: what a secretary and the API do with a patient's report
// is in the journal, and the admin finds it by patient, user, report and
// period, on screen and as CSV. Before, the journal held logins and the
// dashboard's settings changes only.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	alice := b.Login(t, "alice", auth.RoleSecretary)
	report := b.ReviewReport(t, "trail-1", "CARDIO")
	martin, _ := b.Delivery(t, report, "MARTIN", "mssante")
	letter, _ := b.Delivery(t, report, "DUPONT-DEMO", "paper")

	// What alice does.
	alice.MustGet(t, fmt.Sprintf("/reports/%d", report))
	status, _ := alice.Get(t, fmt.Sprintf("/reports/%d/document.pdf", report))
	require.Equal(t, http.StatusOK, status)
	status, _ = alice.Get(t, fmt.Sprintf("/deliveries/%d/letter.pdf", letter))
	require.Equal(t, http.StatusOK, status)
	alice.MustGet(t, "/worklists/review?patient=IPP-trail-1")
	status, _ = alice.Post(t, fmt.Sprintf("/deliveries/%d/edit", martin), url.Values{"address": {"jean.martin@ch-demo.mssante.fr"}})
	require.Equal(t, http.StatusSeeOther, status)
	status, _ = alice.Post(t, fmt.Sprintf("/deliveries/%d/approve", martin), nil)
	require.Equal(t, http.StatusSeeOther, status)
	// What the API does.
	code, _, _ := b.Call(t, "GET", fmt.Sprintf("/api/v1/reports/%d", report), "")
	require.Equal(t, http.StatusOK, code)
	code, _, body := b.Call(t, "POST", "/api/v1/correspondents", `{"rpps": "99900000002", "family": "DUPONT-DEMO",
		"mssante_address": "claire@ch-demo.mssante.fr"}`)
	require.Equal(t, http.StatusCreated, code, body)

	// The admin's journal, by patient: every access to her report, nothing else.
	admin := b.Login(t, "root", auth.RoleAdmin)
	page := admin.MustGet(t, "/audit?patient=IPP-trail-1")
	got := journal(page)
	require.ElementsMatch(t, []string{
		"alice report_viewed", "alice document_downloaded", "alice letter_printed", "alice patient_searched",
		"alice delivery_edited", "alice delivery_approved", "api report_viewed",
	}, got)
	require.Contains(t, page, fmt.Sprintf(`<a href="/reports/%d">%d</a>`, report, report))
	require.Contains(t, page, "adresse: (aucune) → jean.martin@ch-demo.mssante.fr")

	// By user and report, by period; a filter that cannot be read says so.
	byReport := journal(admin.MustGet(t, fmt.Sprintf("/audit?actor=alice&report=%d", report)))
	require.ElementsMatch(t, []string{"alice report_viewed", "alice document_downloaded", "alice letter_printed",
		"alice delivery_edited", "alice delivery_approved"}, byReport)
	require.Equal(t, []string{"api correspondent_created"}, journal(admin.MustGet(t, "/audit?actor=api&action=correspondent_created")))
	today := time.Now().In(dispatch.Zone).Format(time.DateOnly) // the journal's days are Paris days
	require.NotEmpty(t, journal(admin.MustGet(t, "/audit?patient=IPP-trail-1&from="+today+"&to="+today)))
	require.Empty(t, journal(admin.MustGet(t, "/audit?patient=IPP-trail-1&to=2020-01-01")))
	status, page = admin.Get(t, "/audit?report=abc&from=hier")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, page, "numéro de compte rendu invalide")
	require.Contains(t, page, "date de début invalide")

	// The CSV export of the filter, which is itself in the journal.
	resp, data := admin.Do(t, http.MethodGet, "/audit.csv?patient=IPP-trail-1", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
	lines, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	require.NoError(t, err)
	require.Len(t, lines, 1+7+1, "header, the seven accesses, the export")
	require.Equal(t, []string{"alice", "report_viewed", fmt.Sprintf("report:%d", report), fmt.Sprint(report)}, lines[1][2:6])
	require.Equal(t, []string{"root", "audit_exported"}, lines[8][2:4])
	require.Equal(t, "IPP-trail-1", lines[8][7])

	// Only admins read it.
	status, _ = alice.Get(t, "/audit")
	require.Equal(t, http.StatusForbidden, status)
	status, _ = alice.Get(t, "/audit.csv")
	require.Equal(t, http.StatusForbidden, status)
}

// journal lists the "actor action" of the entries of an audit page (the
// action's code is the title of its label).
func journal(page string) []string {
	var out []string
	for _, m := range journalRow.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1]+" "+m[2])
	}
	return out
}

var journalRow = regexp.MustCompile(`(?s)<tr data-audit="\d+">.*?</td>\s*<td>([^<]*)</td><td title="([^"]+)">`)
