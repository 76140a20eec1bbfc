package readmodel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// statsFixtures inserts rows straight into the tables, to give the
// statistics a known mix.
type statsFixtures struct {
	t    *testing.T
	ctx  context.Context
	pool *pgxpool.Pool
	n    int
}

func (f *statsFixtures) exec(sql string, args ...any) {
	f.t.Helper()
	_, err := f.pool.Exec(f.ctx, sql, args...)
	require.NoError(f.t, err)
}

// report inserts a report of service and document type received at.
func (f *statsFixtures) report(service, code, title string, at time.Time) int64 {
	f.t.Helper()
	f.n++
	var id int64
	require.NoError(f.t, f.pool.QueryRow(f.ctx, `INSERT INTO reports (source, message_control_id, message_type,
			document_id, document_code, document_title, status, service, received_at)
		VALUES ('mllp', $1, 'ORU^R01', $1, $2, $3, 'resolved', $4, $5) RETURNING id`,
		fmt.Sprintf("MSG-%d", f.n), code, title, service, at).Scan(&id))
	return id
}

// fxRecipient is a recipient listed by a report.
type fxRecipient struct {
	Kind, NationalID, FINESS, RPPS, Family, Given, Organisation string
}

// recipient inserts rc as a recipient of report.
func (f *statsFixtures) recipient(report int64, rc fxRecipient) int64 {
	f.t.Helper()
	f.n++
	if rc.Kind == "" {
		rc.Kind = dispatch.KindProfessional
	}
	var id int64
	require.NoError(f.t, f.pool.QueryRow(f.ctx, `INSERT INTO recipients (report_id, position, role, kind, national_id,
			finess, rpps, family, given, organisation)
		VALUES ($1, $2, 'RCT', $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		report, f.n, rc.Kind, rc.NationalID, rc.FINESS, rc.RPPS, rc.Family, rc.Given, rc.Organisation).Scan(&id))
	return id
}

// fxDelivery is a delivery; the times are offsets from the report's reception.
type fxDelivery struct {
	Channel, Status         string
	Reason                  correspondents.Reason
	LastError, Name, Postal string
	// Sent, Delivered and Posted are 0 when it did not happen; Posted
	// records the paper_sent event.
	Sent, Delivered, Posted time.Duration
	FallbackOf              int64
}

// delivery inserts d for the recipient rc of report, created a minute after
// the report's reception.
func (f *statsFixtures) delivery(report, rc int64, d fxDelivery) int64 {
	f.t.Helper()
	if d.Reason == "" {
		d.Reason = correspondents.ReasonDirectoryAddress
	}
	if d.Postal == "" {
		d.Postal = "{}"
	}
	offset := func(o time.Duration) any {
		if o == 0 {
			return nil
		}
		return o.String()
	}
	var id int64
	require.NoError(f.t, f.pool.QueryRow(f.ctx, `INSERT INTO deliveries (report_id, recipient_id, channel, status, reason,
			reason_text, last_error, recipient_name, postal_address, created_at, sent_at, delivered_at, fallback_of)
		SELECT r.id, $2, $3, $4, $5, 'fixture', $6, $7, $8::jsonb, r.received_at + interval '1 minute',
			r.received_at + $9::interval, r.received_at + $10::interval, $11
		FROM reports r WHERE r.id = $1 RETURNING id`,
		report, rc, d.Channel, d.Status, d.Reason, d.LastError, d.Name, d.Postal, offset(d.Sent), offset(d.Delivered),
		fxNullID(d.FallbackOf)).Scan(&id))
	if d.Posted != 0 {
		f.exec(`INSERT INTO delivery_events (delivery_id, from_status, to_status, event, actor_kind, actor, at)
			SELECT $1, 'paper_pending', 'paper_sent', 'paper_sent', 'user', 'sec', r.received_at + $2::interval
			FROM reports r WHERE r.id = $3`, id, d.Posted.String(), report)
	}
	return id
}

func fxNullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// directoryEntry lists a mailbox in the national directory.
func (f *statsFixtures) directoryEntry(address, nationalID, boxType, structureID string) {
	f.t.Helper()
	f.exec(`INSERT INTO directory_entries (address, national_id, box_type, structure_id, dematerialised)
		VALUES ($1, $2, $3, $4, true)`, address, nationalID, boxType, structureID)
}

// parisTime is a wall-clock time in Paris.
func parisTime(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, dispatch.Zone)
	if err != nil {
		panic(err)
	}
	return t
}

// setupStats builds the mix the tests below count (January and February
// 2025, services cardio and pneumo):
//
//	R0 cardio 01/01 00:30 (31/12 23:30 UTC)  Bravo: paper pending (directory lists a mailbox) — equipped
//	R1 cardio 10/01  Alpha: email delivered (+2 h) — served; Bravo: paper posted (+26 h) — equipped;
//	                 Charlie: paper (no mailbox); Legrand (no id): paper; a patient: email queued (not counted)
//	R2 cardio 20/01  Alpha: email failed 5.1.1 + paper fallback — equipped; Delta: email sent (+10 h, no DSN) — served
//	R3 pneumo 05/02  Alpha: email read (sent +1 h) — served; an organisation whose FINESS has a mailbox: paper
//	                 posted (+50 h) — equipped; Foxtrot: failed 4.4.1; Golf: failed 5.1.1; India: failed, no DSN —
//	                 equipped; Charlie and Legrand: paper; X: a cancelled email only (not counted)
//	R4 cardio 01/03 00:30 (28/02 23:30 UTC): out of the period.
func setupStats(t *testing.T) (*readmodel.Reader, *statsFixtures) {
	t.Helper()
	pool := pgtest.NewPool(t)
	svc := readmodel.New(pool)
	f := &statsFixtures{t: t, ctx: context.Background(), pool: pool}

	f.directoryEntry("alpha@medecin-demo.mssante.fr", "8A1", "PER", "")
	f.directoryEntry("bravo@medecin-demo.mssante.fr", "8B2", "PER", "")
	f.directoryEntry("secretariat@clinique-demo.mssante.fr", "", "ORG", "330000001")

	alpha := fxRecipient{NationalID: "8A1", RPPS: "10000000001", Family: "ALPHA", Given: "Anne"}
	bravo := fxRecipient{NationalID: "8B2", RPPS: "10000000002", Family: "BRAVO", Given: "Béatrice"}
	charlie := fxRecipient{NationalID: "8C3", Family: "CHARLIE", Given: "Claude"}
	legrand := fxRecipient{Family: "LEGRAND", Given: "Paul"}
	const legrandPostal = `{"lines": ["12 rue des Lilas"], "postal_code": "33000", "city": "BORDEAUX"}`
	paper := func(status string, reason correspondents.Reason, name, postal string) fxDelivery {
		return fxDelivery{Channel: "paper", Status: status, Reason: reason, Name: name, Postal: postal}
	}

	r0 := f.report("cardio", "11490-0", "Lettre de liaison", parisTime("2025-01-01 00:30"))
	f.delivery(r0, f.recipient(r0, bravo), paper("paper_pending", correspondents.ReasonLocalPaper, "Dr B. BRAVO", `{"city": "ANCIENNE VILLE"}`))

	r1 := f.report("cardio", "11490-0", "Lettre de sortie", parisTime("2025-01-10 10:00"))
	f.delivery(r1, f.recipient(r1, alpha), fxDelivery{Channel: "mssante", Status: "delivered", Sent: time.Hour, Delivered: 2 * time.Hour})
	bravoLetter := paper("paper_sent", correspondents.ReasonLocalPaper, "Béatrice BRAVO", `{"lines": ["1 place du Marché"], "postal_code": "33000", "city": "BORDEAUX"}`)
	bravoLetter.Posted = 26 * time.Hour
	f.delivery(r1, f.recipient(r1, bravo), bravoLetter)
	f.delivery(r1, f.recipient(r1, charlie), paper("paper_pending", correspondents.ReasonNoAddress, "Claude CHARLIE", `{"city": "PAU"}`))
	f.delivery(r1, f.recipient(r1, legrand), paper("paper_pending", correspondents.ReasonNoAddress, "", legrandPostal))
	f.delivery(r1, f.recipient(r1, fxRecipient{Kind: dispatch.KindPatient, Family: "DUPONT"}),
		fxDelivery{Channel: "mssante", Status: "queued", Reason: correspondents.ReasonPatientMailbox})

	r2 := f.report("cardio", "11490-0", "Lettre de sortie", parisTime("2025-01-20 10:00"))
	alpha2 := f.recipient(r2, alpha)
	failed := f.delivery(r2, alpha2, fxDelivery{Channel: "mssante", Status: "failed", Sent: time.Hour,
		LastError: "DSN failed 5.1.1 smtp; 550 5.1.1 <alpha@medecin-demo.mssante.fr>: user unknown"})
	fallback := paper("paper_pending", dispatch.ReasonFallbackPaper, "Anne ALPHA", `{"city": "TALENCE"}`)
	fallback.FallbackOf = failed
	f.delivery(r2, alpha2, fallback)
	f.delivery(r2, f.recipient(r2, fxRecipient{NationalID: "8D4", Family: "DELTA"}),
		fxDelivery{Channel: "mssante", Status: "sent", Reason: correspondents.ReasonDPIAddress, Sent: 10 * time.Hour})

	r3 := f.report("pneumo", "34133-9", "Synthèse", parisTime("2025-02-05 10:00"))
	f.delivery(r3, f.recipient(r3, alpha), fxDelivery{Channel: "mssante", Status: "read", Sent: time.Hour})
	org := fxRecipient{Kind: dispatch.KindOrganisation, FINESS: "330000001", Organisation: "Clinique Démo"}
	orgLetter := paper("paper_sent", correspondents.ReasonLocalPaper, "", `{"city": "MERIGNAC"}`)
	orgLetter.Posted = 50 * time.Hour
	f.delivery(r3, f.recipient(r3, org), orgLetter)
	f.delivery(r3, f.recipient(r3, fxRecipient{NationalID: "8F6", Family: "FOXTROT"}), fxDelivery{Channel: "mssante", Status: "failed",
		LastError: "temporary failures for 72h0m0s, giving up: mail: RCPT TO: SMTP error 451: 4.4.1 Connection timed out"})
	f.delivery(r3, f.recipient(r3, fxRecipient{NationalID: "8G7", Family: "GOLF"}), fxDelivery{Channel: "mssante", Status: "failed",
		LastError: "mail: RCPT TO: SMTP error 550: 5.1.1 Mailbox unknown"})
	f.delivery(r3, f.recipient(r3, fxRecipient{NationalID: "8I9", Family: "INDIA"}), fxDelivery{Channel: "mssante", Status: "failed",
		Sent: time.Hour, LastError: "pas d'accusé de réception 48 h après l'envoi"})
	f.delivery(r3, f.recipient(r3, charlie), paper("paper_pending", correspondents.ReasonNoAddress, "Claude CHARLIE", `{"city": "PAU"}`))
	f.delivery(r3, f.recipient(r3, legrand), paper("paper_pending", correspondents.ReasonNoAddress, "", legrandPostal))
	f.delivery(r3, f.recipient(r3, fxRecipient{NationalID: "8X0", Family: "XRAY"}), fxDelivery{Channel: "mssante", Status: "cancelled"})

	r4 := f.report("cardio", "11490-0", "Lettre de sortie", parisTime("2025-03-01 00:30"))
	f.delivery(r4, f.recipient(r4, alpha), fxDelivery{Channel: "mssante", Status: "failed", LastError: "SMTP error 554: refused"})
	f.delivery(r4, f.recipient(r4, charlie), paper("paper_pending", correspondents.ReasonNoAddress, "Claude CHARLIE", `{"city": "PAU"}`))
	return svc, f
}

// statsPeriod is January and February 2025 in Paris.
var statsPeriod = readmodel.StatsFilter{From: parisTime("2025-01-01 00:00"), To: parisTime("2025-03-01 00:00")}

func TestStats(t *testing.T) {
	t.Parallel()
	svc, f := setupStats(t)

	t.Run("Rates", func(t *testing.T) {
		t.Parallel()
		st, err := svc.Stats(f.ctx, statsPeriod)
		require.NoError(t, err)
		require.Equal(t, readmodel.Rate{Recipients: 14, Equipped: 10, Served: 3}, st.Rate)
		require.InDelta(t, 0.3, st.Rate.Value(), 1e-9)
		require.False(t, st.Rate.MeetsTarget())
		require.Equal(t, []readmodel.MonthRate{
			{Month: "2025-01", Rate: readmodel.Rate{Recipients: 7, Equipped: 5, Served: 2}},
			{Month: "2025-02", Rate: readmodel.Rate{Recipients: 7, Equipped: 5, Served: 1}},
		}, st.Months)
		require.Equal(t, []readmodel.ServiceRate{
			{Service: "cardio", Rate: readmodel.Rate{Recipients: 7, Equipped: 5, Served: 2}},
			{Service: "pneumo", Rate: readmodel.Rate{Recipients: 7, Equipped: 5, Served: 1}},
		}, st.Services)
		require.Equal(t, []readmodel.DocumentRate{
			{Code: "11490-0", Title: "Lettre de sortie", Rate: readmodel.Rate{Recipients: 7, Equipped: 5, Served: 2}},
			{Code: "34133-9", Title: "Synthèse", Rate: readmodel.Rate{Recipients: 7, Equipped: 5, Served: 1}},
		}, st.Documents)
	})

	t.Run("Deliveries", func(t *testing.T) {
		t.Parallel()
		st, err := svc.Stats(f.ctx, statsPeriod)
		require.NoError(t, err)
		require.Equal(t, []readmodel.ChannelCount{
			{Channel: "mssante", Status: "cancelled", Count: 1},
			{Channel: "mssante", Status: "delivered", Count: 1},
			{Channel: "mssante", Status: "failed", Count: 4},
			{Channel: "mssante", Status: "queued", Count: 1},
			{Channel: "mssante", Status: "read", Count: 1},
			{Channel: "mssante", Status: "sent", Count: 1},
			{Channel: "paper", Status: "paper_pending", Count: 6},
			{Channel: "paper", Status: "paper_sent", Count: 2},
		}, st.Deliveries)
	})

	t.Run("Delays", func(t *testing.T) {
		t.Parallel()
		st, err := svc.Stats(f.ctx, statsPeriod)
		require.NoError(t, err)
		h := time.Hour
		require.Equal(t, []readmodel.Delay{
			// 1 h, 2 h, 10 h: the median 2 h, the 90th percentile 2 + 0.8 × 8 h.
			{Month: "", Channel: "mssante", Count: 3, P50: 2 * h, P90: 8*h + 24*time.Minute},
			{Month: "2025-01", Channel: "mssante", Count: 2, P50: 6 * h, P90: 9*h + 12*time.Minute},
			{Month: "2025-02", Channel: "mssante", Count: 1, P50: h, P90: h},
			// 26 h, 50 h (the paper_sent events).
			{Month: "", Channel: "paper", Count: 2, P50: 38 * h, P90: 47*h + 36*time.Minute},
			{Month: "2025-01", Channel: "paper", Count: 1, P50: 26 * h, P90: 26 * h},
			{Month: "2025-02", Channel: "paper", Count: 1, P50: 50 * h, P90: 50 * h},
		}, st.Delays)
	})

	t.Run("Failures", func(t *testing.T) {
		t.Parallel()
		st, err := svc.Stats(f.ctx, statsPeriod)
		require.NoError(t, err)
		require.Equal(t, []readmodel.FailureReason{
			{Reason: "5.1.1", Count: 2, Example: "DSN failed 5.1.1 smtp; 550 5.1.1 <alpha@medecin-demo.mssante.fr>: user unknown"},
			{Reason: "4.4.1", Count: 1, Example: "temporary failures for 72h0m0s, giving up: mail: RCPT TO: SMTP error 451: 4.4.1 Connection timed out"},
			{Reason: "pas d'accusé de réception", Count: 1, Example: "pas d'accusé de réception 48 h après l'envoi"},
		}, st.Failures)

		all, err := svc.Stats(f.ctx, readmodel.StatsFilter{})
		require.NoError(t, err)
		require.Contains(t, all.Failures, readmodel.FailureReason{Reason: "554", Count: 1, Example: "SMTP error 554: refused"},
			"the reply code when there is no enhanced status code")
	})

	t.Run("Services", func(t *testing.T) {
		t.Parallel()
		st, err := svc.Stats(f.ctx, readmodel.StatsFilter{From: statsPeriod.From, To: statsPeriod.To, Services: []string{"pneumo"}})
		require.NoError(t, err)
		require.Equal(t, readmodel.Rate{Recipients: 7, Equipped: 5, Served: 1}, st.Rate)
		require.Equal(t, []readmodel.MonthRate{
			{Month: "2025-01"}, // no report of pneumo in January: a zero month for the chart
			{Month: "2025-02", Rate: readmodel.Rate{Recipients: 7, Equipped: 5, Served: 1}},
		}, st.Months)
		require.Len(t, st.Services, 1)
		require.Equal(t, "pneumo", st.Services[0].Service)
		require.Len(t, st.Documents, 1)
		for _, d := range st.Delays {
			require.NotEqual(t, "2025-01", d.Month, "January's delays are cardio's")
		}
		require.Len(t, st.Failures, 3)

		none, err := svc.Stats(f.ctx, readmodel.StatsFilter{Services: []string{}})
		require.NoError(t, err)
		require.Equal(t, readmodel.Rate{}, none.Rate, "an empty list of services is none, not all")
		require.Empty(t, none.Deliveries)
	})

	t.Run("Unbounded", func(t *testing.T) {
		t.Parallel()
		st, err := svc.Stats(f.ctx, readmodel.StatsFilter{})
		require.NoError(t, err)
		require.Equal(t, readmodel.Rate{Recipients: 16, Equipped: 11, Served: 3}, st.Rate, "R4 counted")
		require.Len(t, st.Months, 3)
		require.Equal(t, "2025-03", st.Months[2].Month, "28/02 23:30 UTC is March in Paris")
	})

	t.Run("BadPeriod", func(t *testing.T) {
		t.Parallel()
		_, err := svc.Stats(f.ctx, readmodel.StatsFilter{From: statsPeriod.To, To: statsPeriod.From})
		require.ErrorIs(t, err, readmodel.ErrBadFilter)
		_, err = svc.Campaign(f.ctx, readmodel.CampaignFilter{From: statsPeriod.To, To: statsPeriod.To})
		require.ErrorIs(t, err, readmodel.ErrBadFilter)
	})
}

func TestCampaign(t *testing.T) {
	t.Parallel()
	svc, f := setupStats(t)

	type line struct {
		Name, NationalID, FINESS, RPPS, Kind, City string
		Letters, Convertible                       int64
		Equipped                                   bool
		Address                                    string
		Last                                       time.Time
	}
	lines := func(entries []readmodel.CampaignEntry) []line {
		var out []line
		for _, e := range entries {
			out = append(out, line{e.Name, e.NationalID, e.FINESS, e.RPPS, e.Kind, e.PostalAddress.City,
				e.Letters, e.Convertible, e.Equipped, e.DirectoryAddress, e.LastLetter.In(dispatch.Zone)})
		}
		return out
	}
	const prof, org = dispatch.KindProfessional, dispatch.KindOrganisation
	charlie := line{"Claude CHARLIE", "8C3", "", "", prof, "PAU", 2, 2, false, "", parisTime("2025-02-05 10:01")}
	legrand := line{"Paul LEGRAND", "", "", "", prof, "BORDEAUX", 2, 2, false, "", parisTime("2025-02-05 10:01")}
	bravo := line{"Béatrice BRAVO", "8B2", "", "10000000002", prof, "BORDEAUX", 2, 2, true, "bravo@medecin-demo.mssante.fr",
		parisTime("2025-01-10 10:01")}
	clinic := line{"Clinique Démo", "", "330000001", "", org, "MERIGNAC", 1, 1, true, "secretariat@clinique-demo.mssante.fr",
		parisTime("2025-02-05 10:01")}
	alpha := line{"Anne ALPHA", "8A1", "", "10000000001", prof, "TALENCE", 1, 0, true, "alpha@medecin-demo.mssante.fr",
		parisTime("2025-01-20 10:01")}

	t.Run("Period", func(t *testing.T) {
		t.Parallel()
		entries, err := svc.Campaign(f.ctx, readmodel.CampaignFilter{From: statsPeriod.From, To: statsPeriod.To})
		require.NoError(t, err)
		require.Equal(t, []line{charlie, legrand, bravo, clinic, alpha}, lines(entries))
		require.Equal(t, []string{"1 place du Marché"}, entries[2].PostalAddress.Lines, "the latest letter's address")
	})

	t.Run("Services", func(t *testing.T) {
		t.Parallel()
		entries, err := svc.Campaign(f.ctx, readmodel.CampaignFilter{From: statsPeriod.From, To: statsPeriod.To, Services: []string{"cardio"}})
		require.NoError(t, err)
		charlie, legrand := charlie, legrand
		charlie.Letters, charlie.Convertible, charlie.Last = 1, 1, parisTime("2025-01-10 10:01")
		legrand.Letters, legrand.Convertible, legrand.Last = 1, 1, parisTime("2025-01-10 10:01")
		require.Equal(t, []line{bravo, alpha, charlie, legrand}, lines(entries))
	})

	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		entries, err := svc.Campaign(f.ctx, readmodel.CampaignFilter{From: statsPeriod.From, To: statsPeriod.To, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []line{charlie, legrand}, lines(entries))
	})

	t.Run("Unbounded", func(t *testing.T) {
		t.Parallel()
		entries, err := svc.Campaign(f.ctx, readmodel.CampaignFilter{})
		require.NoError(t, err)
		require.Equal(t, "Claude CHARLIE", entries[0].Name)
		require.Equal(t, int64(3), entries[0].Letters, "R4 counted")
	})
}
