// Package dispatchtest runs the domain (package dispatch) for the tests of
// dispatch and of the packages beside it (desk, letters, quarantine,
// retention, ruleset): a fresh database holding the demo directory, the
// workers (package dispatch/worker), the River queue, a Service and the
// secretaries' Desk (Start, StartOutbox), the report they receive (Report,
// Receive, WorklistReports), its wait as the REST API and the dashboard
// read it (WaitReport, WaitDeliveries, StatusIs, Row, through package
// readmodel), what the database says of a delivery (MessageID,
// EventCount, AckDue), the emails sent (Recipients), the rules in force
// (Rules, SetRules), the jobs (Jobs, RunNow, RunJob, WaitFollowUps) and the
// acknowledgement deadlines (PassTime, Sweep).
package dispatchtest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/dispatch/ruleset"
	"github.com/mssdispatch/mssdispatch/dispatch/worker"
	"github.com/mssdispatch/mssdispatch/internal/mailtest"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/internal/queuetest"
	"github.com/mssdispatch/mssdispatch/queue"
	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/rules"
)

// Sender is the BAL applicative the workers send from.
const Sender = "bal-applicative@ch-demo.mssante.fr"

// Env is the domain running for a test.
type Env struct {
	Ctx     context.Context
	Pool    *pgxpool.Pool
	Service *dispatch.Service
	// Foreground is the reports being received, which the jobs yield to.
	Foreground *queue.Foreground
	Desk       *desk.Desk        // the secretaries' actions
	Rules      *ruleset.Store    // the CME's rules, their versions and dry runs
	Views      *readmodel.Reader // what the dashboard and the REST API read
	Client     *queue.Client
	Registry   *prometheus.Registry // the workers' metrics
	// Workers is the workers' configuration, defaults not applied: what
	// builds a worker.Prober of the domain.
	Workers worker.WorkerConfig
}

// Start starts the domain's workers on a fresh database holding the demo
// directory, sending through transport: more, when not nil, registers
// more workers before the queue starts; configure may change the workers'
// configuration.
func Start(t *testing.T, transport mail.Transport, more func(*river.Workers, *pgxpool.Pool, prometheus.Registerer),
	configure ...func(*worker.WorkerConfig)) *Env {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := correspondents.NewStore(pool)
	_, err := store.ImportDirectoryFrom(ctx, file("testdata/demo/Extraction_Correspondance_MSSante.txt"), correspondents.ImportOptions{})
	require.NoError(t, err)
	_, err = store.ImportWhitelist(ctx, "demo", []string{"medecin-demo.mssante.fr", "ch-demo.mssante.fr"}, correspondents.ImportOptions{})
	require.NoError(t, err)

	workers := river.NewWorkers()
	registry := prometheus.NewRegistry()
	resolver := correspondents.NewResolver(store)
	quiet := slog.New(slog.DiscardHandler)
	cfg := worker.WorkerConfig{
		Pool: pool, Resolver: resolver, Transport: transport, Sender: Sender, Registerer: registry, Logger: quiet,
		Foreground: &queue.Foreground{}, // shared with the Service, as worker.Install does
	}
	for _, c := range configure {
		c(&cfg)
	}
	require.NoError(t, worker.AddWorkers(workers, cfg))
	if more != nil {
		more(workers, pool, registry)
	}
	client := queuetest.Start(t, pool, workers)
	svc, err := dispatch.NewService(dispatch.ServiceConfig{Pool: pool, Jobs: client, Foreground: cfg.Foreground, Logger: quiet})
	require.NoError(t, err)
	return &Env{Ctx: ctx, Pool: pool, Service: svc, Foreground: cfg.Foreground, Desk: desk.New(pool, client, resolver, ""),
		Rules: ruleset.New(pool, resolver, quiet), Views: readmodel.New(pool),
		Client: client, Registry: registry, Workers: cfg}
}

// StartOutbox is Start with an outbox transport writing to dir, a new
// directory.
func StartOutbox(t *testing.T) (e *Env, dir string) {
	t.Helper()
	dir = t.TempDir()
	outbox, err := mail.NewOutbox(dir)
	require.NoError(t, err)
	return Start(t, outbox, nil), dir
}

// Recipients lists the envelope recipients of the emails in the outbox dir.
func Recipients(t *testing.T, dir string) []string {
	t.Helper()
	var to []string
	for _, e := range mailtest.ReadDir(t, dir) {
		to = append(to, e.Addresses(t, "To")...)
	}
	return to
}

// file is the path of name, a path from the module's root.
func file(name string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", filepath.FromSlash(name))
}

// Report is a report carrying the cda package's level-1 sample, listing
// a correspondent known by RPPS, one with a trusted address from the DPI, and
// one the directory knows twice.
func Report(t *testing.T) dispatch.Report {
	t.Helper()
	doc, err := os.ReadFile(file("cda/testdata/n1-pdf.xml"))
	require.NoError(t, err)
	header, err := cda.Parse(doc)
	require.NoError(t, err)
	pdf, err := cda.ExtractPDF(doc)
	require.NoError(t, err)
	return dispatch.Report{
		Action:   dispatch.ActionNew,
		Flags:    dispatch.DefaultFlags,
		Patient:  dispatch.Patient{Family: "DUPONT", Given: "Marie", BirthDate: "19800115", Sex: "F", INS: "280017512345678", INSOID: "1.2.250.1.213.1.4.10", IPP: "IPP1"},
		Document: dispatch.Document{ID: header.UniqueID(), Code: header.Code.Code, Title: header.Title, CDA: doc, PDF: pdf},
		Recipients: []dispatch.Recipient{
			{Role: "RCT", Kind: dispatch.KindProfessional, NationalID: "899900000002", RPPS: "99900000002", Family: "DUPONT-DEMO", Given: "Claire"},
			{Role: "RCT", Kind: dispatch.KindProfessional, NationalID: "899900000007", RPPS: "99900000007", Family: "ROUX", Given: "Julie", Address: "julie.roux@medecin-demo.mssante.fr"},
			{Role: "RCT", Kind: dispatch.KindProfessional, NationalID: "899900000001", RPPS: "99900000001", Family: "MARTIN", Given: "Jean"},
		},
	}
}

// documentIDElement is the ClinicalDocument/id of a CDA: its first id.
var documentIDElement = regexp.MustCompile(`<id root="[^"]*"(?: extension="[^"]*")?/>`)

// SetDocumentID gives r's document the id id (root^extension), in the
// report and in its CDA: another document.
func SetDocumentID(t *testing.T, r *dispatch.Report, id string) {
	t.Helper()
	root, ext, _ := strings.Cut(id, "^")
	element := `<id root="` + root + `"`
	if ext != "" {
		element += ` extension="` + ext + `"`
	}
	loc := documentIDElement.FindIndex(r.Document.CDA)
	require.NotNil(t, loc, "the CDA has an id")
	r.Document.CDA = slices.Concat(r.Document.CDA[:loc[0]], []byte(element+"/>"), r.Document.CDA[loc[1]:])
	r.Document.ID = id
}

// Inbound is the message that carried a report with controlID and content.
func Inbound(controlID, content string) dispatch.Inbound {
	return dispatch.Inbound{Kind: "hl7", Source: "mllp", SendingApplication: "DPI", SendingFacility: "CH",
		ControlID: controlID, MessageType: "ORU^R01", Fingerprint: []byte(content)}
}

// Respond answers a report with "ACK <id>".
func Respond(id int64, _ string, _ time.Time, _ []dispatch.Warning) []byte {
	return fmt.Appendf(nil, "ACK %d", id)
}

// Receive stores r as a message keyed by its action and document.
func (e *Env) Receive(t *testing.T, r dispatch.Report) dispatch.Receipt {
	t.Helper()
	key := string(r.Action) + " " + r.Document.ID
	rc, err := e.Service.Receive(e.Ctx, Inbound(key, key), r, Respond)
	require.NoError(t, err)
	return rc
}

// WaitDeliveries waits until the report has want deliveries none of which is queued.
func (e *Env) WaitDeliveries(t *testing.T, reportID int64, want int) readmodel.ReportView {
	t.Helper()
	return e.WaitReport(t, reportID, fmt.Sprintf("%d deliveries none queued", want), func(v readmodel.ReportView) bool {
		return len(v.Deliveries) == want && !slices.ContainsFunc(v.Deliveries,
			func(d readmodel.DeliveryView) bool { return d.Status == dispatch.StatusQueued })
	})
}

// SetRules puts rules in force through Rules, as the CME's tools do.
func (e *Env) SetRules(t *testing.T, rs ...rules.Rule) {
	t.Helper()
	source, err := rules.Marshal(rules.Set{Rules: rs})
	require.NoError(t, err)
	_, err = e.Rules.Set(e.Ctx, source, "test", "")
	require.NoError(t, err)
}

// The tests see River's jobs through River's API (the client's JobList and
// JobRetry, rivertest's assertions), never through its tables.

// Jobs lists, in id order, the jobs of kind (any kind when empty) in the
// states (any state when none).
func (e *Env) Jobs(t *testing.T, kind string, states ...rivertype.JobState) []*rivertype.JobRow {
	t.Helper()
	params := river.NewJobListParams().First(10_000)
	if kind != "" {
		params = params.Kinds(kind)
	}
	if len(states) > 0 {
		params = params.States(states...)
	}
	res, err := e.Client.JobList(e.Ctx, params)
	require.NoError(t, err)
	return res.Jobs
}

// DeliveryJobs lists, in id order, the jobs of kind for the delivery id
// (the delivery_id of their args) in the states (any state when none).
func (e *Env) DeliveryJobs(t *testing.T, kind string, id int64, states ...rivertype.JobState) []*rivertype.JobRow {
	t.Helper()
	var out []*rivertype.JobRow
	for _, j := range e.Jobs(t, kind, states...) {
		var args struct {
			DeliveryID int64 `json:"delivery_id"`
		}
		require.NoError(t, json.Unmarshal(j.EncodedArgs, &args))
		if args.DeliveryID == id {
			out = append(out, j)
		}
	}
	return out
}

// RunNow makes jobs available at once with River's JobRetry (as its UI's
// retry does): a scheduled job runs without waiting for its time, a
// cancelled one runs after all.
func (e *Env) RunNow(t *testing.T, jobs []*rivertype.JobRow) {
	t.Helper()
	for _, j := range jobs {
		_, err := e.Client.JobRetry(e.Ctx, j.ID)
		require.NoError(t, err)
	}
}

// RunAgain runs jobs, finished, once more (RunNow) and waits until each
// completed again: as River would after a crash between a job's work and its
// completion.
func (e *Env) RunAgain(t *testing.T, jobs []*rivertype.JobRow) {
	t.Helper()
	e.RunNow(t, jobs)
	for _, j := range jobs {
		require.Eventually(t, func() bool {
			job, err := e.Client.JobGet(e.Ctx, j.ID)
			require.NoError(t, err)
			return job.Attempt > j.Attempt && job.State == rivertype.JobStateCompleted
		}, time.Minute, 50*time.Millisecond, "the %s job %d completes again", j.Kind, j.ID)
	}
}

// RunJob inserts the job args with River's client, one attempt only, and
// waits until it completed: an error fails the test with the job's errors.
func (e *Env) RunJob(t *testing.T, args river.JobArgs) {
	t.Helper()
	res, err := e.Client.Insert(e.Ctx, args, &river.InsertOpts{MaxAttempts: 1})
	require.NoError(t, err)
	require.False(t, res.UniqueSkippedAsDuplicate, "a %s job is already waiting", args.Kind())
	var job *rivertype.JobRow
	require.Eventually(t, func() bool {
		job, err = e.Client.JobGet(e.Ctx, res.Job.ID)
		require.NoError(t, err)
		return job.FinalizedAt != nil
	}, time.Minute, 50*time.Millisecond, "the %s job ends", args.Kind())
	require.Equal(t, rivertype.JobStateCompleted, job.State, "%s job errors: %+v", args.Kind(), job.Errors)
}

// WaitFollowUps waits until no acknowledgement deadline or fallback job is
// waiting to run, running or to be retried: those enqueued have run, and
// so have the fallbacks they enqueued (in the transaction that completed
// them). Scheduled, cancelled and discarded ones are left.
func (e *Env) WaitFollowUps(t *testing.T) {
	t.Helper()
	params := river.NewJobListParams().Kinds(worker.DeadlineArgs{}.Kind(), dispatch.FallbackArgs{}.Kind()).
		States(rivertype.JobStateAvailable, rivertype.JobStateRunning, rivertype.JobStateRetryable)
	var left []*rivertype.JobRow
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		res, err := e.Client.JobList(e.Ctx, params)
		require.NoError(t, err)
		if left = res.Jobs; len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	for _, j := range left {
		t.Errorf("%s job %d %s: %+v", j.Kind, j.ID, j.State, j.Errors)
	}
	t.FailNow()
}

// PassTime makes d pass for the emails of the deliveries: their send
// (sent_at) and their next acknowledgement deadline (ack_due_at) move d
// back, as if they had been sent d earlier. Each must have been sent.
func (e *Env) PassTime(t *testing.T, d time.Duration, deliveryIDs ...int64) {
	t.Helper()
	tag, err := e.Pool.Exec(e.Ctx, `UPDATE deliveries SET sent_at = sent_at - $2::interval, ack_due_at = ack_due_at - $2::interval
		WHERE id = ANY ($1) AND sent_at IS NOT NULL`, deliveryIDs, d)
	require.NoError(t, err)
	require.EqualValues(t, len(deliveryIDs), tag.RowsAffected(), "deliveries %v sent", deliveryIDs)
}

// Sweep runs the acknowledgement watchdog once, as its periodic job does
// every minute (RunJob with a worker.WatchdogArgs), then waits until the
// deadline jobs it enqueued, and the fallbacks they enqueued, have run
// (WaitFollowUps).
func (e *Env) Sweep(t *testing.T) {
	t.Helper()
	e.RunJob(t, worker.WatchdogArgs{})
	e.WaitFollowUps(t)
}

// WaitReport waits until the report satisfies cond, described by what. The
// minute it allows is for loaded machines (a package's tests at once on two
// CPUs took more than 20 seconds for a few jobs); it costs nothing when cond
// comes true, as it does in well under a second on an idle one.
func (e *Env) WaitReport(t *testing.T, reportID int64, what string, cond func(readmodel.ReportView) bool) readmodel.ReportView {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		v, err := e.Views.Report(e.Ctx, "test", reportID)
		require.NoError(t, err)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("report %d: want %s, have %+v", reportID, what, v.Deliveries)
		}
	}
}

// Row returns the row of the delivery id in the worklist list.
func (e *Env) Row(t *testing.T, list string, id int64) readmodel.DeliveryRow {
	t.Helper()
	page, err := e.Views.Deliveries(e.Ctx, "test", readmodel.DeliveryFilter{Worklist: list, Limit: 200})
	require.NoError(t, err)
	i := slices.IndexFunc(page.Rows, func(r readmodel.DeliveryRow) bool { return r.ID == id })
	require.GreaterOrEqual(t, i, 0, "delivery %d in %s", id, list)
	return page.Rows[i]
}

// WorklistReports receives three reports (two of CARDIO, one of ONCO) and
// waits for their deliveries; each has Martin's email in review.
func (e *Env) WorklistReports(t *testing.T) []int64 {
	t.Helper()
	var ids []int64
	for i, service := range []string{"CARDIO", "CARDIO", "ONCO"} {
		r := Report(t)
		r.Service = service
		SetDocumentID(t, &r, r.Document.ID+string(rune('a'+i)))
		r.Patient.IPP = "IPP-" + string(rune('a'+i))
		id := e.Receive(t, r).ReportID
		e.WaitReport(t, id, "resolved", func(v readmodel.ReportView) bool {
			return v.Status == dispatch.ReportResolved && !slices.ContainsFunc(v.Deliveries,
				func(d readmodel.DeliveryView) bool { return d.Status == dispatch.StatusQueued })
		})
		ids = append(ids, id)
	}
	return ids
}

// Delivery returns the report's delivery to recipient (address or name) on channel.
func Delivery(t *testing.T, v readmodel.ReportView, recipient string, channel correspondents.Channel) readmodel.DeliveryView {
	t.Helper()
	i := slices.IndexFunc(v.Deliveries, func(d readmodel.DeliveryView) bool {
		return d.Recipient == recipient && d.Channel == channel
	})
	require.GreaterOrEqual(t, i, 0, "no %s delivery to %s in %+v", channel, recipient, v.Deliveries)
	return v.Deliveries[i]
}

// StatusIs waits until the report's delivery to recipient on channel has status.
func (e *Env) StatusIs(t *testing.T, reportID int64, recipient string, channel correspondents.Channel, status dispatch.Status) readmodel.DeliveryView {
	t.Helper()
	v := e.WaitReport(t, reportID, recipient+" "+string(channel)+" "+string(status), func(v readmodel.ReportView) bool {
		i := slices.IndexFunc(v.Deliveries, func(d readmodel.DeliveryView) bool {
			return d.Recipient == recipient && d.Channel == channel && d.Status == status
		})
		return i >= 0
	})
	return Delivery(t, v, recipient, channel)
}

// MessageID is the Message-ID the service gave the delivery to address in report.
func (e *Env) MessageID(t *testing.T, reportID int64, address string) string {
	t.Helper()
	var id string
	require.NoError(t, e.Pool.QueryRow(e.Ctx, "SELECT message_id FROM deliveries WHERE report_id = $1 AND address = $2",
		reportID, address).Scan(&id))
	return id
}

// AckDue returns when the delivery's email was last sent and its next
// acknowledgement deadline, which the watchdog sweeps (nil: none left).
func (e *Env) AckDue(t *testing.T, deliveryID int64) (sentAt time.Time, due *time.Time) {
	t.Helper()
	require.NoError(t, e.Pool.QueryRow(e.Ctx, `SELECT sent_at, ack_due_at FROM deliveries WHERE id = $1`, deliveryID).
		Scan(&sentAt, &due))
	return sentAt, due
}

// EventCount counts the events of a delivery's history with that name.
func (e *Env) EventCount(t *testing.T, deliveryID int64, event dispatch.Event) int {
	t.Helper()
	var n int
	require.NoError(t, e.Pool.QueryRow(e.Ctx, `SELECT count(*) FROM delivery_events WHERE delivery_id = $1 AND event = $2`,
		deliveryID, event).Scan(&n))
	return n
}
