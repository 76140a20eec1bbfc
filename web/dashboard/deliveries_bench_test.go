package dashboard_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// benchDeliveries is the size of the table "Tous les envois" is measured on.
const benchDeliveries = 1_000_000

// seedDeliveries fills b's database with n deliveries of n/4 reports (four
// recipients each), spread over two years, with the statuses of a hospital
// that sends most of its letters by MSSanté: about 3 % in review, 2 %
// failed, 2 % to print, 1 % scheduled, the rest sent or acknowledged.
func seedDeliveries(tb testing.TB, b *webtest.Server, n int) {
	tb.Helper()
	ctx := context.Background()
	reports := n / 4
	for i, sql := range []string{
		`INSERT INTO reports (source, message_control_id, message_type, document_id, document_code, document_title,
			patient_family, patient_given, patient_ipp, patient_ins, patient_key, service, status, received_at)
		SELECT 'mllp', 'MSG' || i, 'ORU^R01', '1.2.250.1.999.42.1.4^DOC' || i,
			(ARRAY['11490-0', '34112-3', '11502-2', '18748-4'])[1 + i % 4],
			(ARRAY['Lettre de liaison', 'Compte rendu opératoire', 'Biologie', 'Imagerie'])[1 + i % 4],
			f || (i % 997), g, 'IPP' || (i % 150000), CASE WHEN i % 3 = 0 THEN lpad((1000000000000 + i % 150000)::text, 15, '2') ELSE '' END,
			lower(f || (i % 997) || ' ' || g),
			(ARRAY['CARDIO', 'ONCO', 'URG', 'PNEUMO', 'CHIR', 'MATER'])[1 + i % 6], 'resolved',
			now() - make_interval(secs => ($1::int - i) * 63072000.0 / $1::int)
		FROM generate_series(1, $1::int) i,
			LATERAL (SELECT (ARRAY['MARTIN', 'BERNARD', 'THOMAS', 'PETIT', 'ROBERT', 'RICHARD', 'DURAND', 'DUBOIS',
				'MOREAU', 'LAURENT', 'SIMON', 'MICHEL', 'LEFEBVRE', 'LEROY', 'ROUX', 'DAVID', 'BERTRAND', 'MOREL',
				'FOURNIER', 'GIRARD'])[1 + i % 20] AS f,
				(ARRAY['Marie', 'Jean', 'Léa', 'Louis', 'Emma', 'Hugo', 'Chloé', 'Paul'])[1 + (i / 20) % 8] AS g) names`,
		`INSERT INTO recipients (report_id, position, role, national_id, rpps, family, given, name_key)
		SELECT r.id, p, 'RCT', '8' || rpps, rpps, fam, 'Claire', lower(fam || ' claire')
		FROM reports r, generate_series(1, 4) p,
			LATERAL (SELECT lpad(((r.id * 4 + p) % 20000)::text, 11, '9') AS rpps,
				'DOCTEUR' || ((r.id * 4 + p) % 20000) AS fam) d`,
		`INSERT INTO deliveries (report_id, recipient_id, channel, status, address, reason, reason_text,
			created_at, updated_at, attention)
		SELECT rc.report_id, rc.id, CASE WHEN s IN ('paper_pending', 'paper_sent') THEN 'paper' ELSE 'mssante' END, s,
			CASE WHEN s IN ('paper_pending', 'paper_sent') THEN '' ELSE lower(rc.family) || '@medecin-demo.mssante.fr' END,
			'directory_address', 'Adresse trouvée dans l''annuaire.', r.received_at, r.received_at,
			CASE WHEN rc.id % 211 = 0 AND s = 'sent' THEN 'unread' ELSE '' END
		FROM recipients rc JOIN reports r ON r.id = rc.report_id,
			LATERAL (SELECT CASE WHEN rc.id % 100 < 3 THEN 'review' WHEN rc.id % 100 < 5 THEN 'failed'
				WHEN rc.id % 100 < 7 THEN 'paper_pending' WHEN rc.id % 100 < 8 THEN 'scheduled'
				WHEN rc.id % 100 < 20 THEN 'paper_sent' WHEN rc.id % 100 < 40 THEN 'sent'
				WHEN rc.id % 100 < 70 THEN 'delivered' ELSE 'read' END AS s) st`,
		// What autovacuum does to a live database: hint bits, visibility map,
		// statistics; then the seed's dirty pages are written now rather than
		// by a checkpoint in the middle of the measures.
		`VACUUM ANALYZE reports, recipients, deliveries`,
		`CHECKPOINT`,
	} {
		var args []any
		if i == 0 {
			args = []any{reports}
		}
		_, err := b.Pool.Exec(ctx, sql, args...)
		require.NoError(tb, err)
	}
}

// BenchmarkAllDeliveries measures the dashboard's "Tous les envois" and the
// worklists over a million deliveries, as a secretary's browser gets them
// (HTTP, session, the page's worklist counts, the template): each sub
// benchmark reports its p50 and p95 in ms. BENCHMARKS.md has the figures.
func BenchmarkAllDeliveries(bm *testing.B) {
	b := webtest.Setup(bm)
	start := time.Now()
	seedDeliveries(bm, b, benchDeliveries)
	bm.Logf("seeded %d deliveries in %s", benchDeliveries, time.Since(start).Round(time.Second))
	c := b.Login(bm, "alice", auth.RoleSecretary)
	// A cursor in the middle of the table, for a deep page.
	var middle int64
	require.NoError(bm, b.Pool.QueryRow(context.Background(), `SELECT max(id) / 2 FROM deliveries`).Scan(&middle))
	from := time.Now().AddDate(0, -3, 0).Format(time.DateOnly)
	cases := []struct{ name, path string }{
		{"all", "/worklists/all"},
		{"all_deep_page", "/worklists/all?after=" + strconv.FormatInt(middle, 36)},
		{"review", "/worklists/review"},
		{"failed", "/worklists/failed"},
		{"paper", "/worklists/paper"},
		{"patient_name", "/worklists/all?patient=durand42"},
		{"patient_ipp", "/worklists/all?patient=IPP4242"},
		{"correspondent_name", "/worklists/all?correspondent=docteur1234"},
		{"correspondent_address", "/worklists/all?correspondent=docteur77@medecin"},
		{"patient_short_prefix", "/worklists/all?patient=d"},
		{"type_and_dates", "/worklists/all?document_code=34112-3&from=" + from},
		{"service_status", "/worklists/all?service=ONCO&status=failed"},
		{"rare_status_old_range", "/worklists/all?status=scheduled&from=2025-01-01&to=2025-01-31"},
	}
	for _, tc := range cases {
		bm.Run(tc.name, func(bm *testing.B) {
			var took []time.Duration
			for bm.Loop() {
				t0 := time.Now()
				status, body := c.Get(bm, tc.path)
				took = append(took, time.Since(t0))
				if status != http.StatusOK {
					bm.Fatalf("%s: %d %s", tc.path, status, body)
				}
			}
			slices.Sort(took)
			ms := func(q float64) float64 {
				return float64(took[int(q*float64(len(took)-1))].Microseconds()) / 1000
			}
			bm.ReportMetric(ms(0.50), "p50-ms")
			bm.ReportMetric(ms(0.95), "p95-ms")
		})
	}
}
