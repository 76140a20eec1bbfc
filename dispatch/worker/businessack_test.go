package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/internal/queuetest"
	"github.com/mssdispatch/mssdispatch/queue"
)

var quietLog = slog.New(slog.DiscardHandler)

// fakeNotifier is a DPINotifier playing the DPI: it keeps every notice it
// gets and answers each with what answer returns for it.
type fakeNotifier struct {
	mu      sync.Mutex
	notices []dispatch.DPINotice
	answer  func(n int) (dispatch.DPIAnswer, error) // n: 1 for the first notice
}

func (f *fakeNotifier) NotifyDPI(_ context.Context, notice dispatch.DPINotice) (dispatch.DPIAnswer, error) {
	f.mu.Lock()
	f.notices = append(f.notices, notice)
	n := len(f.notices)
	f.mu.Unlock()
	return f.answer(n)
}

// got returns the notices the DPI got about delivery id.
func (f *fakeNotifier) got(id int64) []dispatch.DPINotice {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []dispatch.DPINotice
	for _, n := range f.notices {
		if n.DeliveryID == id {
			out = append(out, n)
		}
	}
	return out
}

// Answers of the fake DPI.
func accept(n int) (dispatch.DPIAnswer, error) {
	return dispatch.DPIAnswer{Detail: fmt.Sprintf("ACK-%d: AA", n)}, nil
}

func refuse(n int) (dispatch.DPIAnswer, error) {
	return dispatch.DPIAnswer{Refused: true, Detail: fmt.Sprintf("ACK-%d: AE 204 message d'origine inconnu", n)}, nil
}

var errDPIDown = errors.New("dial tcp 127.0.0.1:2576: connection refused")

type ackBundle struct {
	ctx      context.Context
	pool     *pgxpool.Pool
	client   *queue.Client
	registry *prometheus.Registry
	// svc enqueues the business acknowledgements when there is a notifier,
	// as Install configures it.
	svc *dispatch.Service
}

// setupAcks starts the business acknowledgement worker sending through
// notifier (nil: off) on a fresh database, and a Service.
func setupAcks(t *testing.T, notifier dispatch.DPINotifier) *ackBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	registry := prometheus.NewRegistry()
	workers := river.NewWorkers()
	cfg := BusinessAckConfig{Pool: pool, Notifier: notifier,
		RetryBackoff: 10 * time.Millisecond, Registerer: registry, Logger: quietLog}
	require.NoError(t, AddBusinessAcks(workers, cfg))
	// A failure the Service records enqueues the fallback of the delivery's
	// policy too.
	require.NoError(t, river.AddWorkerSafely(workers, &fallbackWorker{cfg: WorkerConfig{Pool: pool}}))
	client := queuetest.Start(t, pool, workers)
	svc, err := dispatch.NewService(dispatch.ServiceConfig{Pool: pool, Jobs: client, BusinessAcks: cfg.Notifier != nil, Logger: quietLog})
	require.NoError(t, err)
	return &ackBundle{ctx: context.Background(), pool: pool, client: client, registry: registry, svc: svc}
}

// julie is the address of the deliveries seed makes.
const julie = "julie.roux@medecin-demo.mssante.fr"

// seed stores a report received as HL7 message controlID from DPI/CH
// (to PFI/CH-PFI) with flags, and an MSSanté delivery of it to Julie Roux
// that was sent.
func (b *ackBundle) seed(t *testing.T, flags dispatch.Flags, controlID string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		var reportID, recipientID int64
		require.NoError(t, tx.QueryRow(b.ctx, `WITH i AS (
				INSERT INTO inbound_messages (kind, source, sending_application, sending_facility, message_control_id,
					message_type, fingerprint, outcome, response)
				VALUES ('hl7', 'mllp', 'DPI', 'CH', $1, 'ORU^R01', 'x', 'accepted', '') RETURNING id
			), r AS (
				INSERT INTO reports (inbound_id, source, sending_application, sending_facility, receiving_application,
					receiving_facility, message_control_id, message_type, document_id, status, flags)
				SELECT id, 'mllp', 'DPI', 'CH', 'PFI', 'CH-PFI', $1, 'ORU^R01', '1.2.250.1.999.2^' || $1, 'resolved', $2::jsonb
				FROM i RETURNING id
			)
			INSERT INTO recipients (report_id, position, role, kind, national_id, rpps, family, given, address)
			SELECT id, 1, $3, $4, '899900000007', '99900000007', 'ROUX', 'Julie', $5 FROM r
			RETURNING report_id, id`, controlID, flags, dispatch.RoleResultCopiesTo, dispatch.KindProfessional, julie).
			Scan(&reportID, &recipientID))
		var err error
		id, _, err = dispatch.InsertDelivery(b.ctx, tx, reportID, dispatch.NewDelivery{RecipientID: recipientID,
			Channel: correspondents.ChannelMSSante, Status: dispatch.StatusQueued, Address: julie, Reason: "test",
			ReasonText: "test", MessageID: controlID + "@ch-demo.mssante.fr"}, dispatch.SystemActor)
		require.NoError(t, err)
		return dispatch.Transition(b.ctx, tx, id, dispatch.StatusQueued, dispatch.StatusSent, dispatch.EventSent, dispatch.SystemActor, "")
	}))
	return id
}

// acknowledge records a DSN or MDN of delivery id through the Service, as
// the mailbox reader does: the status change, and the business
// acknowledgement it calls for in the same transaction.
func (b *ackBundle) acknowledge(t *testing.T, id int64, ack, detail string) {
	t.Helper()
	require.NoError(t, b.svc.Acknowledge(b.ctx, id, ack, detail))
}

// jobs returns the business_ack jobs of delivery id, oldest first.
func (b *ackBundle) jobs(t *testing.T, id int64) []*rivertype.JobRow {
	t.Helper()
	res, err := b.client.JobList(b.ctx, river.NewJobListParams().Kinds("business_ack").First(100))
	require.NoError(t, err)
	var out []*rivertype.JobRow
	for i := len(res.Jobs) - 1; i >= 0; i-- {
		if a := jobArgs(t, res.Jobs[i]); a.DeliveryID == id {
			out = append(out, res.Jobs[i])
		}
	}
	return out
}

// waitJob waits until the job of event is in state want, and returns it.
func (b *ackBundle) waitJob(t *testing.T, id int64, event string, want rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	var job *rivertype.JobRow
	require.Eventually(t, func() bool {
		for _, j := range b.jobs(t, id) {
			if jobArgs(t, j).Event == event {
				job = j
				return j.State == want
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "job %s of delivery %d never %s", event, id, want)
	return job
}

func jobArgs(t *testing.T, j *rivertype.JobRow) dispatch.BusinessAckArgs {
	t.Helper()
	var a dispatch.BusinessAckArgs
	require.NoError(t, json.Unmarshal(j.EncodedArgs, &a))
	return a
}

// metric returns mssdispatch_business_acks_total{event,result}.
func (b *ackBundle) metric(t *testing.T, event, result string) float64 {
	t.Helper()
	families, err := b.registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "mssdispatch_business_acks_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["event"] == event && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// events returns the business acknowledgement events of delivery id, as "event detail".
func (b *ackBundle) events(t *testing.T, id int64) []string {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT event || ' ' || detail FROM delivery_events
		WHERE delivery_id = $1 AND event LIKE 'business_ack%' ORDER BY id`, id)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// times returns when delivery id was delivered, read (zero when not) and last changed.
func (b *ackBundle) times(t *testing.T, id int64) (delivered, read, updated time.Time) {
	t.Helper()
	var d, r *time.Time
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT delivered_at, read_at, updated_at FROM deliveries WHERE id = $1", id).
		Scan(&d, &r, &updated))
	if d != nil {
		delivered = *d
	}
	if r != nil {
		read = *r
	}
	return delivered, read, updated
}

var allAcks = dispatch.Flags{Present: true, ToProfessionals: true, DeliveryAck: true, ReadAck: true}

// TestBusinessAcksDeliveredThenRead sends a Z02 when the DSN comes and a Z03
// when the MDN comes, each once, and checks what the notifier is told.
func TestBusinessAcksDeliveredThenRead(t *testing.T) {
	t.Parallel()
	dpi := &fakeNotifier{answer: accept}
	b := setupAcks(t, dpi)
	id := b.seed(t, allAcks, "MSG-0042")

	b.acknowledge(t, id, dispatch.AckDelivered, "DSN delivered 2.0.0")
	b.waitJob(t, id, dispatch.BusinessAckDelivery, rivertype.JobStateCompleted)
	b.acknowledge(t, id, dispatch.AckRead, "MDN displayed")
	b.waitJob(t, id, dispatch.BusinessAckRead, rivertype.JobStateCompleted)

	notices := dpi.got(id)
	require.Len(t, notices, 2)
	delivered, read, _ := b.times(t, id)
	require.False(t, delivered.IsZero())
	require.False(t, read.IsZero())
	for i, want := range []struct {
		event string
		at    time.Time
	}{{dispatch.BusinessAckDelivery, delivered}, {dispatch.BusinessAckRead, read}} {
		n := notices[i]
		require.Equal(t, want.event, n.Event)
		require.Equal(t, id, n.DeliveryID)
		require.False(t, n.Failed)
		require.Empty(t, n.Detail)
		require.Equal(t, "MSG-0042", n.ControlID, "the MSH-10 of the report's message")
		require.Equal(t, "899900000007", n.RecipientID, "the recipient's id as the DPI gave it (national id first)")
		require.Equal(t, "julie.roux@medecin-demo.mssante.fr", n.Address)
		require.Equal(t, []string{"DPI", "CH", "PFI", "CH-PFI"},
			[]string{n.SendingApplication, n.SendingFacility, n.ReceivingApplication, n.ReceivingFacility},
			"the MSH-3/4/5/6 of the report's message")
		require.WithinDuration(t, want.at, n.At, 0, "when the email was delivered (Z02) or read (Z03)")
	}
	require.Equal(t, []string{
		"business_ack_sent ZAM^Z02 ACK-1: AA",
		"business_ack_sent ZAM^Z03 ACK-2: AA",
	}, b.events(t, id))
	require.Equal(t, 1.0, b.metric(t, "Z02", "accepted"))
	require.Equal(t, 1.0, b.metric(t, "Z03", "accepted"))
	require.Zero(t, b.metric(t, "Z02", "retry"))

	// A second DSN (the delivery is read now): nothing more for the DPI.
	b.acknowledge(t, id, dispatch.AckDelivered, "DSN delivered 2.0.0, again")
	require.Len(t, b.jobs(t, id), 2)
	require.Len(t, dpi.got(id), 2)
}

// TestBusinessAckRefused cancels the job when the DPI refuses the
// acknowledgement for good: not retried, never enqueued again.
func TestBusinessAckRefused(t *testing.T) {
	t.Parallel()
	dpi := &fakeNotifier{answer: refuse}
	b := setupAcks(t, dpi)
	id := b.seed(t, allAcks, "MSG-0042")

	b.acknowledge(t, id, dispatch.AckDelivered, "DSN delivered 2.0.0")
	job := b.waitJob(t, id, dispatch.BusinessAckDelivery, rivertype.JobStateCancelled)
	require.Equal(t, 1, job.Attempt, "a refusal is not retried")
	require.Len(t, dpi.got(id), 1)
	require.Equal(t, []string{"business_ack_refused ZAM^Z02 ACK-1: AE 204 message d'origine inconnu"}, b.events(t, id))
	require.Equal(t, 1.0, b.metric(t, "Z02", "refused"))
	require.Zero(t, b.metric(t, "Z02", "accepted"))

	// Refused once, never enqueued again.
	b.acknowledge(t, id, dispatch.AckDelivered, "DSN delivered 2.0.0, again")
	require.Len(t, b.jobs(t, id), 1)
}

// TestBusinessAckDPIDown retries while the notifier fails (the DPI down,
// silent, or refusing for now), with the same notice, and records the
// acknowledgement once when it goes through.
func TestBusinessAckDPIDown(t *testing.T) {
	t.Parallel()
	dpi := &fakeNotifier{answer: func(n int) (dispatch.DPIAnswer, error) {
		if n <= 2 {
			return dispatch.DPIAnswer{}, fmt.Errorf("send ZAM^Z02: %w", errDPIDown)
		}
		return accept(n)
	}}
	b := setupAcks(t, dpi)
	id := b.seed(t, allAcks, "MSG-0042")

	b.acknowledge(t, id, dispatch.AckDelivered, "DSN delivered 2.0.0")
	job := b.waitJob(t, id, dispatch.BusinessAckDelivery, rivertype.JobStateCompleted)
	require.Equal(t, 3, job.Attempt)
	require.Len(t, job.Errors, 2)
	require.Contains(t, job.Errors[0].Error, "connection refused")
	notices := dpi.got(id)
	require.Len(t, notices, 3)
	require.Equal(t, notices[0], notices[2], "each attempt tells the same")
	require.Equal(t, []string{"business_ack_sent ZAM^Z02 ACK-3: AA"}, b.events(t, id), "recorded once")
	require.Equal(t, 2.0, b.metric(t, "Z02", "retry"))
	require.Equal(t, 1.0, b.metric(t, "Z02", "accepted"))
}

// TestBusinessAckUnsendable gives up an acknowledgement the notifier cannot
// say at all (an error wrapping dispatch.ErrUnsendable): cancelled, not retried.
func TestBusinessAckUnsendable(t *testing.T) {
	t.Parallel()
	dpi := &fakeNotifier{answer: func(int) (dispatch.DPIAnswer, error) {
		return dispatch.DPIAnswer{}, fmt.Errorf("%w: hl7: invalid ZAM: MSH-5: the receiving application is empty", dispatch.ErrUnsendable)
	}}
	b := setupAcks(t, dpi)
	id := b.seed(t, allAcks, "MSG-0042")

	b.acknowledge(t, id, dispatch.AckRead, "MDN processed")
	job := b.waitJob(t, id, dispatch.BusinessAckRead, rivertype.JobStateCancelled)
	require.Equal(t, 1, job.Attempt, "not retried")
	require.Len(t, dpi.got(id), 1)
	require.Empty(t, b.events(t, id), "neither sent nor refused")
	require.Equal(t, 1.0, b.metric(t, "Z03", "invalid"))
	require.Zero(t, b.metric(t, "Z03", "retry"))
}

// TestBusinessAckFailure tells the DPI that a delivery failed (a DSN: Z02)
// or a reading failed (an MDN: Z03), with what the DSN or MDN said.
func TestBusinessAckFailure(t *testing.T) {
	t.Parallel()
	dpi := &fakeNotifier{answer: accept}
	b := setupAcks(t, dpi)
	id := b.seed(t, allAcks, "MSG-0042")

	b.acknowledge(t, id, dispatch.AckFailed, " DSN failed 5.1.1 smtp; 550 5.1.1 No such user\n")
	b.waitJob(t, id, dispatch.BusinessAckDelivery, rivertype.JobStateCompleted)
	notices := dpi.got(id)
	require.Len(t, notices, 1)
	n := notices[0]
	require.Equal(t, dispatch.BusinessAckDelivery, n.Event)
	require.True(t, n.Failed)
	require.Equal(t, "DSN failed 5.1.1 smtp; 550 5.1.1 No such user", n.Detail)
	require.Equal(t, "MSG-0042", n.ControlID)
	require.Equal(t, "julie.roux@medecin-demo.mssante.fr", n.Address)
	_, _, updated := b.times(t, id)
	require.WithinDuration(t, updated, n.At, 0, "never delivered: when it failed")
	require.Equal(t, []string{"business_ack_sent ZAM^Z02 ACK-1: AA"}, b.events(t, id))

	// An MDN reporting an error, to a DPI that asked for the read ack only.
	mdn := b.seed(t, dispatch.Flags{Present: true, ToProfessionals: true, ReadAck: true}, "MSG-A")
	b.acknowledge(t, mdn, dispatch.AckFailed, "MDN processed/error 902 Identifiant patient inconnu")
	b.waitJob(t, mdn, dispatch.BusinessAckRead, rivertype.JobStateCompleted)
	notices = dpi.got(mdn)
	require.Len(t, notices, 1)
	require.Equal(t, dispatch.BusinessAckRead, notices[0].Event)
	require.True(t, notices[0].Failed)
	require.Equal(t, "MDN processed/error 902 Identifiant patient inconnu", notices[0].Detail)
	require.Equal(t, "MSG-A", notices[0].ControlID)
	require.Len(t, b.jobs(t, mdn), 1, "no Z02")
	require.Equal(t, 1.0, b.metric(t, "Z03", "accepted"))
}

// TestBusinessAcksOff registers the worker without a notifier: the hook
// enqueues nothing, and a job left from before is cancelled unsent.
func TestBusinessAcksOff(t *testing.T) {
	t.Parallel()
	b := setupAcks(t, nil)
	id := b.seed(t, allAcks, "MSG-0042")
	b.acknowledge(t, id, dispatch.AckDelivered, "DSN delivered 2.0.0")
	require.Empty(t, b.jobs(t, id))

	// Unique per delivery and event, whatever the other arguments.
	later := &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}
	first, err := b.client.Insert(b.ctx, dispatch.BusinessAckArgs{DeliveryID: id + 1, Event: dispatch.BusinessAckRead}, later)
	require.NoError(t, err)
	again, err := b.client.Insert(b.ctx, dispatch.BusinessAckArgs{DeliveryID: id + 1, Event: dispatch.BusinessAckRead, Failed: true,
		Detail: "MDN processed/error 902 inconnu"}, later)
	require.NoError(t, err)
	require.True(t, again.UniqueSkippedAsDuplicate)
	require.Equal(t, first.Job.ID, again.Job.ID)
	other, err := b.client.Insert(b.ctx, dispatch.BusinessAckArgs{DeliveryID: id + 1, Event: dispatch.BusinessAckDelivery}, later)
	require.NoError(t, err)
	require.False(t, other.UniqueSkippedAsDuplicate)
	require.Equal(t, dispatch.BusinessAckArgs{}.InsertOpts().MaxAttempts, first.Job.MaxAttempts)

	_, err = b.client.Insert(b.ctx, dispatch.BusinessAckArgs{DeliveryID: id, Event: dispatch.BusinessAckDelivery}, nil)
	require.NoError(t, err)
	b.waitJob(t, id, dispatch.BusinessAckDelivery, rivertype.JobStateCancelled)
	require.Equal(t, 1.0, b.metric(t, "Z02", "off"))
	require.Empty(t, b.events(t, id))
}

func TestAddBusinessAcksConfig(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	dpi := &fakeNotifier{answer: accept}
	for name, cfg := range map[string]BusinessAckConfig{
		"no pool":          {Notifier: dpi},
		"negative backoff": {Pool: pool, Notifier: dpi, RetryBackoff: -time.Second},
	} {
		require.Error(t, AddBusinessAcks(river.NewWorkers(), cfg), name)
	}
	require.NoError(t, AddBusinessAcks(river.NewWorkers(), BusinessAckConfig{Pool: pool}), "off is a valid configuration")
	registry := prometheus.NewRegistry()
	require.NoError(t, AddBusinessAcks(river.NewWorkers(), BusinessAckConfig{Pool: pool, Notifier: dpi, Registerer: registry}))
	require.Error(t, AddBusinessAcks(river.NewWorkers(), BusinessAckConfig{Pool: pool, Notifier: dpi, Registerer: registry}),
		"the metric registered twice")
	workers := river.NewWorkers()
	require.NoError(t, AddBusinessAcks(workers, BusinessAckConfig{Pool: pool, Notifier: dpi}))
	require.Error(t, AddBusinessAcks(workers, BusinessAckConfig{Pool: pool, Notifier: dpi}), "the worker registered twice")
}

func TestBusinessAckBackoff(t *testing.T) {
	t.Parallel()
	w := &businessAckWorker{cfg: BusinessAckConfig{RetryBackoff: time.Minute}}
	for attempt, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 5: 16 * time.Minute, 6: 30 * time.Minute, 49: 30 * time.Minute} {
		next := w.NextRetry(&river.Job[dispatch.BusinessAckArgs]{JobRow: &rivertype.JobRow{Attempt: attempt}})
		require.WithinDuration(t, time.Now().Add(want), next, 5*time.Second, "attempt %d", attempt)
	}
}
