package dashboard_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// seedStats inserts, straight into the tables, a mix of two services:
//
//	cardio, 10/01/2025: Alpha email delivered (+2 h, in the directory) — served; Bravo letter
//	   (in the directory) — equipped; Charlie letter — not equipped; Delta email failed 5.1.1 — equipped
//	   → 4 recipients, 3 equipped, 1 served: 33,3 %
//	pneumo, 05/02/2025: Echo email delivered (+1 h) — served; Foxtrot email failed 4.4.1 — equipped;
//	   Golf letter, a name starting with "=" — not equipped
//	   → 3 recipients, 2 equipped, 1 served: 50,0 %
//
// Overall: 7 recipients, 5 equipped, 2 served: 40,0 %.
func seedStats(t *testing.T, b *webtest.Server) {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := b.Pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO directory_entries (address, national_id, box_type, dematerialised) VALUES
		('alpha@medecin-demo.mssante.fr', '8A1', 'PER', true), ('bravo@medecin-demo.mssante.fr', '8B2', 'PER', false)`)
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	report := func(key, service string, at time.Time) int64 {
		t.Helper()
		var id int64
		require.NoError(t, b.Pool.QueryRow(ctx, `INSERT INTO reports (source, message_control_id, message_type, document_id,
				document_code, document_title, status, service, received_at)
			VALUES ('api', $1, 'report', $1, '11490-0', 'Lettre de liaison', 'resolved', $2, $3) RETURNING id`,
			key, service, at).Scan(&id))
		return id
	}
	type delivery struct {
		nationalID, family, given, channel, status, reason, lastError, name, postal string
		delivered                                                                   time.Duration
	}
	position := 0
	add := func(report int64, d delivery) {
		t.Helper()
		position++
		var rc int64
		require.NoError(t, b.Pool.QueryRow(ctx, `INSERT INTO recipients (report_id, position, role, kind, national_id, family, given)
			VALUES ($1, $2, 'RCT', 'professional', $3, $4, $5) RETURNING id`,
			report, position, d.nationalID, d.family, d.given).Scan(&rc))
		if d.postal == "" {
			d.postal = "{}"
		}
		var delivered any
		if d.delivered > 0 {
			delivered = d.delivered.String()
		}
		exec(`INSERT INTO deliveries (report_id, recipient_id, channel, status, reason, reason_text, last_error,
				recipient_name, postal_address, created_at, sent_at, delivered_at)
			SELECT r.id, $2, $3, $4, $5, 'fixture', $6, $7, $8::jsonb, r.received_at + interval '1 minute',
				CASE WHEN $9::interval IS NOT NULL THEN r.received_at + interval '10 minutes' END,
				r.received_at + $9::interval
			FROM reports r WHERE r.id = $1`,
			report, rc, d.channel, d.status, d.reason, d.lastError, d.name, d.postal, delivered)
	}
	cardio := report("STATS-1", "cardio", time.Date(2025, 1, 10, 10, 0, 0, 0, paris))
	add(cardio, delivery{nationalID: "8A1", family: "ALPHA", given: "Anne", channel: "mssante", status: "delivered",
		reason: "directory_address", delivered: 2 * time.Hour})
	add(cardio, delivery{nationalID: "8B2", family: "BRAVO", given: "Béatrice", channel: "paper", status: "paper_pending",
		reason: "local_paper", name: "Béatrice BRAVO",
		postal: `{"lines": ["1 place du Marché"], "postal_code": "33000", "city": "BORDEAUX"}`})
	add(cardio, delivery{nationalID: "8C3", family: "CHARLIE", given: "Claude", channel: "paper", status: "paper_pending",
		reason: "no_address", name: "Claude CHARLIE", postal: `{"lines": ["2 rue Neuve"], "postal_code": "64000", "city": "PAU"}`})
	add(cardio, delivery{nationalID: "8D4", family: "DELTA", channel: "mssante", status: "failed", reason: "dpi_address",
		lastError: "DSN failed 5.1.1 smtp; 550 5.1.1 user unknown"})
	pneumo := report("STATS-2", "pneumo", time.Date(2025, 2, 5, 10, 0, 0, 0, paris))
	add(pneumo, delivery{nationalID: "8E5", family: "ECHO", channel: "mssante", status: "delivered", reason: "dpi_address",
		delivered: time.Hour})
	add(pneumo, delivery{nationalID: "8F6", family: "FOXTROT", channel: "mssante", status: "failed", reason: "dpi_address",
		lastError: "mail: RCPT TO: SMTP error 451: 4.4.1 Connection timed out"})
	add(pneumo, delivery{nationalID: "8G7", family: "GOLF", channel: "paper", status: "paper_pending", reason: "no_address",
		name: "=GOLF Gaston", postal: `{"postal_code": "64100", "city": "BAYONNE"}`})
}

const statsPeriodQuery = "?from=2025-01&to=2025-02"

func TestStatsPage(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	seedStats(t, b)

	t.Run("AllServices", func(t *testing.T) {
		t.Parallel()
		c := b.Login(t, "cme", auth.RoleCME)
		status, body := c.Get(t, "/stats"+statsPeriodQuery)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, `<strong id="rate-overall">40,0`+"\u00a0"+`%</strong>`)
		require.Contains(t, body, "2 sur 5 destinataires équipés servis par MSSanté (7 destinataires au total)")
		require.Contains(t, body, "de janvier 2025 à février 2025")
		for _, want := range []string{"cardio", "pneumo", "33,3\u00a0%", "50,0\u00a0%", "<code>5.1.1</code>", "<code>4.4.1</code>",
			`role="img"`, "Objectif 60\u00a0%", "janvier 2025", "février 2025", "2 h 00", "Lettre de liaison"} {
			require.Contains(t, body, want)
		}
		require.Equal(t, 2, strings.Count(body, `role="img"`), "the rate chart, and a delay chart for MSSanté (no letter posted)")
	})

	t.Run("SecretaryOfCardio", func(t *testing.T) {
		t.Parallel()
		c := b.Login(t, "sec-cardio", auth.RoleSecretary, "cardio")
		status, body := c.Get(t, "/stats"+statsPeriodQuery)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, `<strong id="rate-overall">33,3`+"\u00a0"+`%</strong>`)
		require.Contains(t, body, "1 sur 3 destinataires équipés servis par MSSanté (4 destinataires au total)")
		require.Contains(t, body, "Chiffres de vos services : cardio.")
		require.Contains(t, body, "<code>5.1.1</code>")
		for _, hidden := range []string{"pneumo", "50,0\u00a0%", "<code>4.4.1</code>", "40,0\u00a0%"} {
			require.NotContains(t, body, hidden, "pneumo's figures")
		}
	})

	t.Run("Periods", func(t *testing.T) {
		t.Parallel()
		c := b.Login(t, "sec-periods", auth.RoleSecretary)
		status, body := c.Get(t, "/stats")
		require.Equal(t, http.StatusOK, status, body)
		now := time.Now()
		require.Contains(t, body, `name="to" type="month" value="`+now.Format("2006-01")+`"`, "the last 12 months by default")
		require.Contains(t, body, `name="from" type="month" value="`+now.AddDate(0, -11, -now.Day()+1).Format("2006-01")+`"`)
		for _, bad := range []string{"?from=2025-13", "?from=2025-03&to=2025-01", "?to=janvier"} {
			status, body = c.Get(t, "/stats"+bad)
			require.Equal(t, http.StatusBadRequest, status, bad)
			require.Contains(t, body, "Période invalide", bad)
		}
		status, body = c.Get(t, "/stats?from=2025-02&to=2025-02")
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, "en février 2025")
		require.Contains(t, body, `<strong id="rate-overall">50,0`)
	})

	t.Run("LoggedOut", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/stats", "/campaign", "/campaign.csv", "/campaign/letters"} {
			status, loc := b.Anonymous(t).Get(t, path)
			require.Equal(t, http.StatusSeeOther, status, path)
			require.Contains(t, loc, "/login", path)
		}
	})
}

// fetch gets path with c's session and returns the response and its body.
func fetch(t *testing.T, c *webtest.Browser, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, c.URL+path, nil)
	require.NoError(t, err)
	resp, err := c.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// campaignCSV fetches the campaign's CSV file and parses it.
func campaignCSV(t *testing.T, c *webtest.Browser, query string) [][]string {
	t.Helper()
	resp, body := fetch(t, c, "/campaign.csv"+query)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="campagne-mssante-2025-01-2025-02.csv"`, resp.Header.Get("Content-Disposition"))
	require.True(t, bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")), "a UTF-8 BOM, for Excel")
	require.Contains(t, string(body), "\r\n", "CRLF lines")
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF"))))
	r.Comma = ';'
	rows, err := r.ReadAll()
	require.NoError(t, err)
	return rows
}

func TestCampaignPages(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	seedStats(t, b)

	t.Run("Table", func(t *testing.T) {
		t.Parallel()
		c := b.Login(t, "admin", auth.RoleAdmin)
		status, body := c.Get(t, "/campaign"+statsPeriodQuery)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, "3 correspondants, 3 courriers papier de janvier 2025 à février 2025")
		golf, bravo, charlie := strings.Index(body, "=GOLF Gaston"), strings.Index(body, "Béatrice BRAVO"), strings.Index(body, "Claude CHARLIE")
		require.True(t, golf > 0 && golf < bravo && bravo < charlie, "the latest letter first, then by name")
		require.Contains(t, body, "bravo@medecin-demo.mssante.fr — reste au papier par préférence")
		require.Contains(t, body, `href="/campaign.csv?from=2025-01&amp;to=2025-02"`)
		require.Contains(t, body, `href="/campaign/letters?from=2025-01&amp;to=2025-02"`)
	})

	t.Run("CSV", func(t *testing.T) {
		t.Parallel()
		c := b.Login(t, "admin-csv", auth.RoleAdmin)
		rows := campaignCSV(t, c, statsPeriodQuery)
		require.Len(t, rows, 4)
		require.Equal(t, []string{"Rang", "Nom", "Type", "Identifiant national", "RPPS", "FINESS", "Adresse",
			"Code postal", "Ville", "Courriers papier", "Dont convertibles", "Équipé MSSanté", "Adresse MSSanté (annuaire)",
			"Dernier courrier"}, rows[0])
		require.Equal(t, []string{"1", "'=GOLF Gaston", "Professionnel", "8G7", "", "", "", "64100", "BAYONNE", "1", "1",
			"non", "", "05/02/2025"}, rows[1], "a leading = is neutralised")
		require.Equal(t, []string{"2", "Béatrice BRAVO", "Professionnel", "8B2", "", "", "1 place du Marché", "33000",
			"BORDEAUX", "1", "1", "oui", "bravo@medecin-demo.mssante.fr", "10/01/2025"}, rows[2])
		require.Equal(t, "Claude CHARLIE", rows[3][1])
	})

	t.Run("SecretaryOfCardio", func(t *testing.T) {
		t.Parallel()
		c := b.Login(t, "sec-campaign", auth.RoleSecretary, "cardio")
		rows := campaignCSV(t, c, statsPeriodQuery)
		require.Len(t, rows, 3)
		require.Equal(t, "Béatrice BRAVO", rows[1][1])
		require.Equal(t, "Claude CHARLIE", rows[2][1])
		status, body := c.Get(t, "/campaign"+statsPeriodQuery)
		require.Equal(t, http.StatusOK, status, body)
		require.NotContains(t, body, "GOLF", "pneumo's correspondent")
		require.Contains(t, body, "2 correspondants, 2 courriers papier")
	})

	t.Run("Letters", func(t *testing.T) {
		t.Parallel()
		c := b.Login(t, "sec-letters", auth.RoleSecretary, "cardio")
		status, body := c.Get(t, "/campaign/letters"+statsPeriodQuery)
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, 2, strings.Count(body, `<article class="letter"`), "one page per correspondent")
		require.NotContains(t, body, "Menu principal", "a layout of its own")
		for _, want := range []string{"CH Démo", "secretariat@ch-test.mssante.fr", "esante.gouv.fr/mssante", "GRADeS",
			"Béatrice BRAVO", "1 place du Marché", "33000 BORDEAUX", "Claude CHARLIE", "64000 PAU",
			"Un de nos comptes rendus vous a été adressé", "par courrier papier de janvier 2025 à février 2025",
			"vous disposez déjà d'une adresse MSSanté (bravo@medecin-demo.mssante.fr)"} {
			require.Contains(t, body, want)
		}
		require.NotContains(t, body, "GOLF")
	})

	t.Run("BadFilter", func(t *testing.T) {
		t.Parallel()
		c := b.Login(t, "sec-bad", auth.RoleSecretary)
		for _, path := range []string{"/campaign?limit=0", "/campaign.csv?limit=abc", "/campaign/letters?from=2025-02&to=2024-01"} {
			status, _ := c.Get(t, path)
			require.Equal(t, http.StatusBadRequest, status, path)
		}
	})
}
