package dispatch_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/internal/dispatchtest"
	"github.com/mssdispatch/mssdispatch/internal/mailtest"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

const sender = dispatchtest.Sender

// The shared helpers (internal/dispatchtest), under this package's names.
var (
	testReport    = dispatchtest.Report
	setDocumentID = dispatchtest.SetDocumentID
	inbound       = dispatchtest.Inbound
	respond       = dispatchtest.Respond
	delivery      = dispatchtest.Delivery
)

// testBundle is the domain running for a test: env, and its parts under
// this package's names.
type testBundle struct {
	env      *dispatchtest.Env
	ctx      context.Context
	pool     *pgxpool.Pool
	svc      *dispatch.Service
	desk     *desk.Desk           // the secretaries' actions
	views    *readmodel.Reader    // what the dashboard and the REST API read
	registry *prometheus.Registry // the workers' metrics
}

// setup starts the service's workers on a fresh database holding the demo
// directory, sending through transport; configure may change the workers'
// configuration.
func setup(t *testing.T, transport mail.Transport, configure ...func(*worker.WorkerConfig)) *testBundle {
	t.Helper()
	e := dispatchtest.Start(t, transport, nil, configure...)
	return bundle(e)
}

// bundle is the testBundle of e.
func bundle(e *dispatchtest.Env) *testBundle {
	return &testBundle{env: e, ctx: e.Ctx, pool: e.Pool, svc: e.Service, desk: e.Desk, views: e.Views, registry: e.Registry}
}

// setupOutbox is setup with an outbox transport writing to dir, a new
// directory.
func setupOutbox(t *testing.T) (b *testBundle, dir string) {
	t.Helper()
	e, dir := dispatchtest.StartOutbox(t)
	return bundle(e), dir
}

// receive stores r as a message keyed by its action and document.
func (b *testBundle) receive(t *testing.T, r dispatch.Report) dispatch.Receipt {
	t.Helper()
	return b.env.Receive(t, r)
}

// waitDeliveries waits until the report has want deliveries none of which is queued.
func (b *testBundle) waitDeliveries(t *testing.T, reportID int64, want int) readmodel.ReportView {
	t.Helper()
	return b.env.WaitDeliveries(t, reportID, want)
}

// waitReport waits until the report satisfies cond, described by what. The
// minute it allows is for loaded machines (the whole package's tests at once
// on two CPUs took more than 20 seconds for a few jobs); it costs nothing
// when cond comes true, as it does in well under a second on an idle one.
func (b *testBundle) waitReport(t *testing.T, reportID int64, what string, cond func(readmodel.ReportView) bool) readmodel.ReportView {
	t.Helper()
	return b.env.WaitReport(t, reportID, what, cond)
}

func TestReceiveResolveSend(t *testing.T) {
	t.Parallel()
	b, outboxDir := setupOutbox(t)

	report := testReport(t)
	rc := b.receive(t, report)
	require.False(t, rc.Duplicate)
	require.Equal(t, fmt.Sprintf("ACK %d", rc.ReportID), string(rc.Response))
	require.True(t, rc.Accepted)

	v := b.waitDeliveries(t, rc.ReportID, 4)
	require.Equal(t, report.Document.ID, v.DocumentID)
	require.Equal(t, dispatch.ReportResolved, v.Status)
	type line struct {
		recipient, rpps string
		channel         correspondents.Channel
		status          dispatch.Status
		reason          correspondents.Reason
	}
	var got []line
	for _, d := range v.Deliveries {
		got = append(got, line{d.Recipient, d.RPPS, d.Channel, d.Status, d.Reason})
		require.NotEmpty(t, d.ReasonText)
	}
	require.Equal(t, []line{
		{"claire.dupont-demo@medecin-demo.mssante.fr", "99900000002", "mssante", "sent", correspondents.ReasonDirectoryAddress},
		{"Claire DUPONT-DEMO", "99900000002", "paper", "paper_pending", correspondents.ReasonPaperCopy},
		{"julie.roux@medecin-demo.mssante.fr", "99900000007", "mssante", "sent", correspondents.ReasonDPIAddress},
		{"Jean MARTIN", "99900000001", "mssante", "review", correspondents.ReasonSeveralAddresses},
	}, got)
	require.NotNil(t, v.Deliveries[0].SentAt)

	files, err := filepath.Glob(filepath.Join(outboxDir, "*.eml"))
	require.NoError(t, err)
	require.Len(t, files, 2)

	got2, err := b.views.ReportByDocumentID(b.ctx, "test", report.Document.ID)
	require.NoError(t, err)
	require.Equal(t, v.ID, got2.ID)
}

func TestReceiveRetransmission(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)

	again := inbound("MSG-RETRY", testReport(t).Document.ID)
	first, err := b.svc.Receive(b.ctx, again, testReport(t), respond)
	require.NoError(t, err)
	second, err := b.svc.Receive(b.ctx, again, testReport(t), func(int64, string, time.Time, []dispatch.Warning) []byte { return []byte("another ACK") })
	require.NoError(t, err)
	require.True(t, second.Duplicate)
	require.Equal(t, first.ReportID, second.ReportID)
	require.Equal(t, first.Answer, second.Answer, "a retransmission gets the first response")

	prev, found, err := b.svc.Previous(b.ctx, again)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, first.Answer, prev)

	reused := inbound("MSG-RETRY", "another content")
	_, _, err = b.svc.Previous(b.ctx, reused)
	require.ErrorIs(t, err, dispatch.ErrKeyReused)
	_, err = b.svc.Receive(b.ctx, reused, testReport(t), respond)
	require.ErrorIs(t, err, dispatch.ErrKeyReused)

	b.waitDeliveries(t, first.ReportID, 4)
	var reports int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM reports").Scan(&reports))
	require.Equal(t, 1, reports)
	// One resolve job: RequireInserted fails on none and on more than one.
	rivertest.RequireInserted(b.ctx, t, b.driver(), dispatch.ResolveArgs{}, nil)
}

// TestDocumentPDFStorage checks where a report's PDF is kept: in its CDA
// only when the CDA embeds it (the usual case), apart when a client sent a
// PDF beside a CDA; and that the dashboard's download and the emails get it
// either way.
func TestDocumentPDFStorage(t *testing.T) {
	t.Parallel()
	b, outboxDir := setupOutbox(t)
	embedded := testReport(t).Document.PDF
	other := append([]byte("%PDF-1.4 another rendering\n"), embedded[9:]...)
	for _, tt := range []struct {
		name  string
		pdf   []byte // sent beside the CDA
		want  []byte
		apart bool
	}{
		{"the CDA's", nil, embedded, false},
		{"another, sent beside the CDA", other, other, true},
	} {
		r := reportOf(t, tt.name)
		r.Document.PDF = tt.pdf
		id := b.receive(t, r).ReportID
		var apart, inCDA bool
		require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT pdf IS NOT NULL, pdf_in_cda FROM documents WHERE report_id = $1",
			id).Scan(&apart, &inCDA))
		require.Equal(t, tt.apart, apart, tt.name)
		require.Equal(t, !tt.apart, inCDA, tt.name)
		got, err := b.views.DocumentPDF(b.ctx, "test", id)
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, got, tt.name)
		detail, err := b.views.ReportDetail(b.ctx, "test", id)
		require.NoError(t, err, tt.name)
		require.True(t, detail.HasPDF, tt.name)
		b.waitDeliveries(t, id, 4)
	}
	files, err := filepath.Glob(filepath.Join(outboxDir, "*.eml"))
	require.NoError(t, err)
	attached := map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		for name, data := range mailtest.Parse(t, raw).Attachments {
			switch {
			case !strings.HasSuffix(name, ".pdf"):
			case bytes.Equal(data, embedded):
				attached["embedded"]++
			case bytes.Equal(data, other):
				attached["other"]++
			default:
				t.Errorf("%s: a PDF neither report has", name)
			}
		}
	}
	require.Positive(t, attached["embedded"], "the CDA's PDF attached")
	require.Equal(t, attached["embedded"], attached["other"], "each report's emails carry its own PDF")
}

func TestReceiveInvalid(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)
	for name, mutate := range map[string]func(*dispatch.Report){
		"no document":            func(r *dispatch.Report) { r.Document.CDA, r.Document.PDF = nil, nil },
		"bare PDF, no custodian": func(r *dispatch.Report) { r.Document.CDA = nil },
		"not a CDA":              func(r *dispatch.Report) { r.Document.CDA = []byte("<html/>") },
		"unknown parent":         func(r *dispatch.Report) { r.Action, r.Document.ParentID = dispatch.ActionReplace, "1.2.3^unknown" },
		"unknown delete":         func(r *dispatch.Report) { r.Action = dispatch.ActionDelete },
		"bad flags":              func(r *dispatch.Report) { r.Flags = dispatch.Flags{Present: true} },
		"NUL in a name":          func(r *dispatch.Report) { r.Patient.Family = "DUPONT\x00" },
		"id too long":            func(r *dispatch.Report) { r.Document.ID = strings.Repeat("1.2.", 200) },
	} {
		r := testReport(t)
		mutate(&r)
		_, err := b.svc.Receive(b.ctx, inbound("MSG-INVALID-"+name, name), r, respond)
		var invalid *dispatch.InvalidError
		require.ErrorAs(t, err, &invalid, name)
	}
	_, err := b.views.Report(b.ctx, "test", 1)
	require.ErrorIs(t, err, dispatch.ErrNotFound)
	_, err = b.views.ReportByDocumentID(b.ctx, "test", "1.2.3^none")
	require.ErrorIs(t, err, dispatch.ErrNotFound)
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	// Julie's 451 blocks her domain, which is Claire's too: it waits for
	// Claire's 550, or Claire's send, started after the block, would be
	// snoozed past the test (seen once in a loaded make test).
	claireRefused := make(chan struct{})
	var once sync.Once
	srv := smtptest.Start(t, smtptest.Options{Rcpt: func(to string) *smtp.SMTPError {
		switch to {
		case "claire.dupont-demo@medecin-demo.mssante.fr":
			once.Do(func() { close(claireRefused) })
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		case "julie.roux@medecin-demo.mssante.fr":
			select {
			case <-claireRefused:
			case <-time.After(20 * time.Second):
			}
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
		}
		return nil
	}})
	transport, err := mail.NewSMTP(mail.SMTPConfig{Addr: srv.Addr, CAFile: srv.CA.File, Timeout: 5 * time.Second})
	require.NoError(t, err)
	b := setup(t, transport)

	rc := b.receive(t, testReport(t))

	// 5xx: the delivery fails and its job is cancelled, not retried.
	require.Eventually(t, func() bool {
		return deliveryStatus(t, b, "claire.dupont-demo@medecin-demo.mssante.fr") == dispatch.StatusFailed &&
			sendJobState(t, b, "claire.dupont-demo@medecin-demo.mssante.fr") == rivertype.JobStateCancelled
	}, 20*time.Second, 50*time.Millisecond)

	// 4xx: the delivery stays queued, its error kept, the job snoozed while
	// the recipient's domain is blocked (no attempt used up).
	require.Eventually(t, func() bool {
		return sendJobState(t, b, "julie.roux@medecin-demo.mssante.fr") == rivertype.JobStateScheduled
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, dispatch.StatusQueued, deliveryStatus(t, b, "julie.roux@medecin-demo.mssante.fr"))
	var lastError string
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT last_error FROM deliveries WHERE address = $1",
		"julie.roux@medecin-demo.mssante.fr").Scan(&lastError))
	require.Contains(t, lastError, "Try again later")
	var blocked bool
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT blocked_until > now() FROM mail_domains
		WHERE domain = 'medecin-demo.mssante.fr'`).Scan(&blocked))
	require.True(t, blocked, "a 451 at RCPT TO blocks the recipient's domain")
	require.Empty(t, srv.Messages())

	v, err := b.views.Report(b.ctx, "test", rc.ReportID)
	require.NoError(t, err)
	require.Len(t, v.Deliveries, 4, "Claire's paper copy besides the three emails")
}

func deliveryStatus(t *testing.T, b *testBundle, address string) dispatch.Status {
	t.Helper()
	var status dispatch.Status
	if err := b.pool.QueryRow(b.ctx, "SELECT status FROM deliveries WHERE address = $1", address).Scan(&status); err != nil {
		return "" // not resolved yet
	}
	return status
}

func sendJobState(t *testing.T, b *testBundle, address string) rivertype.JobState {
	t.Helper()
	var id int64
	if err := b.pool.QueryRow(b.ctx, "SELECT id FROM deliveries WHERE address = $1", address).Scan(&id); err != nil {
		return "" // not resolved yet
	}
	jobs := b.deliveryJobs(t, dispatch.SendArgs{}.Kind(), id)
	if len(jobs) == 0 {
		return ""
	}
	return jobs[len(jobs)-1].State
}

// TestReceiveIsForeground checks that a report being received holds the
// jobs' parts beyond the first (queue.Foreground, shared with the workers)
// until its answer is committed, and no longer: the DPI waiting for its ACK
// goes first.
func TestReceiveIsForeground(t *testing.T) {
	t.Parallel()
	e, _ := dispatchtest.StartOutbox(t)
	var held time.Duration
	_, err := e.Service.Receive(e.Ctx, dispatchtest.Inbound("fg", "fg"), testReport(t),
		func(id int64, doc string, at time.Time, w []dispatch.Warning) []byte {
			began := time.Now()
			defer e.Foreground.Background(e.Ctx, time.Minute)() // the share, taken by a job
			e.Foreground.Background(e.Ctx, 50*time.Millisecond)()
			held = time.Since(began)
			return dispatchtest.Respond(id, doc, at, w)
		})
	require.NoError(t, err)
	require.GreaterOrEqual(t, held, 50*time.Millisecond, "a job yields while the report is being received")
	began := time.Now()
	e.Foreground.Background(e.Ctx, time.Minute)()
	require.Less(t, time.Since(began), 10*time.Second, "once it is answered, the jobs go on")
}

// gathered is the value of the counter or gauge name in registry, of the
// series whose one label is label ("" for a metric without labels); 0 when
// absent.
func gathered(t *testing.T, registry *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := registry.Gather()
	require.NoError(t, err, "gather %s", name)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if (label == "" && len(m.GetLabel()) == 0) || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label) {
				if m.GetGauge() != nil {
					return m.GetGauge().GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
