package dispatch

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
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/internal/queuetest"
	"github.com/mssdispatch/mssdispatch/queue"
)

var quietLog = slog.New(slog.DiscardHandler)

// fakeNotifier is a DPINotifier playing the DPI: it keeps every notice it
// gets and answers each with what answer returns for it.
type fakeNotifier struct {
	mu      sync.Mutex
	notices []DPINotice
	answer  func(n int) (DPIAnswer, error) // n: 1 for the first notice
}

func (f *fakeNotifier) NotifyDPI(_ context.Context, notice DPINotice) (DPIAnswer, error) {
	f.mu.Lock()
	f.notices = append(f.notices, notice)
	n := len(f.notices)
	f.mu.Unlock()
	return f.answer(n)
}

// got returns the notices the DPI got about delivery id.
func (f *fakeNotifier) got(id int64) []DPINotice {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []DPINotice
	for _, n := range f.notices {
		if n.DeliveryID == id {
			out = append(out, n)
		}
	}
	return out
}

// Answers of the fake DPI.
func accept(n int) (DPIAnswer, error) {
	return DPIAnswer{Detail: fmt.Sprintf("ACK-%d: AA", n)}, nil
}

func refuse(n int) (DPIAnswer, error) {
	return DPIAnswer{Refused: true, Detail: fmt.Sprintf("ACK-%d: AE 204 message d'origine inconnu", n)}, nil
}

var errDPIDown = errors.New("dial tcp 127.0.0.1:2576: connection refused")

type ackBundle struct {
	ctx      context.Context
	pool     *pgxpool.Pool
	client   *queue.Client
	registry *prometheus.Registry
}

// setupAcks starts the business acknowledgement worker sending through
// notifier (nil: off) on a fresh database.
func setupAcks(t *testing.T, notifier DPINotifier) *ackBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	registry := prometheus.NewRegistry()
	workers := river.NewWorkers()
	require.NoError(t, AddBusinessAcks(workers, BusinessAckConfig{Pool: pool, Notifier: notifier,
		RetryBackoff: 10 * time.Millisecond, Registerer: registry, Logger: quietLog}))
	client := queuetest.Start(t, pool, workers)
	return &ackBundle{ctx: context.Background(), pool: pool, client: client, registry: registry}
}

// seed stores a report received as HL7 message MSG-0042 from DPI/CH with
// flags, and an MSSanté delivery of it to Julie Roux that was sent.
func (b *ackBundle) seed(t *testing.T, flags Flags, kind string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		in := Inbound{Kind: kind, Source: "mllp", SendingApplication: "DPI", SendingFacility: "CH",
			ReceivingApplication: "PFI", ReceivingFacility: "CH-PFI",
			ControlID: "MSG-0042", MessageType: "ORU^R01", Fingerprint: []byte("x")}
		inboundID, _, err := insertInbound(b.ctx, tx, in, Answer{Accepted: true})
		require.NoError(t, err)
		reportID, err := insertReport(b.ctx, tx, inboundID, in, &Report{Action: ActionNew, Flags: flags,
			Patient:  Patient{Family: "DUPONT", Given: "Marie", BirthDate: "19800115", Sex: "F", INS: "280017512345678", INSOID: "1.2.250.1.213.1.4.10", IPP: "IPP1"},
			Document: Document{ID: "1.2.250.1.999.2^DOC-1", CDA: []byte("<ClinicalDocument/>")},
			Recipients: []Recipient{{Role: RoleResultCopiesTo, Kind: KindProfessional, NationalID: "899900000007",
				RPPS: "99900000007", Family: "ROUX", Given: "Julie", Address: "julie.roux@medecin-demo.mssante.fr"}}})
		require.NoError(t, err)
		var recipientID int64
		require.NoError(t, tx.QueryRow(b.ctx, "SELECT id FROM recipients WHERE report_id = $1", reportID).Scan(&recipientID))
		id, _, err = insertDelivery(b.ctx, tx, reportID, newDelivery{RecipientID: recipientID, Channel: correspondents.ChannelMSSante,
			Status: StatusQueued, Address: "julie.roux@medecin-demo.mssante.fr", Reason: "test", ReasonText: "test",
			MessageID: "m1@ch-demo.mssante.fr"}, actorSystem)
		require.NoError(t, err)
		return transition(b.ctx, tx, id, StatusQueued, StatusSent, EventSent, actorSystem, "")
	}))
	return id
}

// acknowledge does what Service.Acknowledge does with a DSN or MDN, then
// calls the hook in the same transaction.
func (b *ackBundle) acknowledge(t *testing.T, id int64, ack, detail string) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		d, err := loadDelivery(b.ctx, tx, id)
		require.NoError(t, err)
		// The status change only: the fallback job a failure also enqueues
		// has no worker here.
		require.NoError(t, transition(b.ctx, tx, id, d.Status, Status(ack), ackEvents[ack], actorSystem, detail))
		return businessAcksFor(b.ctx, tx, b.client, true, id, ack, detail)
	}))
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

func jobArgs(t *testing.T, j *rivertype.JobRow) BusinessAckArgs {
	t.Helper()
	var a BusinessAckArgs
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

var allAcks = Flags{Present: true, ToProfessionals: true, DeliveryAck: true, ReadAck: true}

// TestBusinessAcksDeliveredThenRead sends a Z02 when the DSN comes and a Z03
// when the MDN comes, each once, and checks what the notifier is told.
func TestBusinessAcksDeliveredThenRead(t *testing.T) {
	t.Parallel()
	dpi := &fakeNotifier{answer: accept}
	b := setupAcks(t, dpi)
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckDelivered, "DSN delivered 2.0.0")
	b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCompleted)
	b.acknowledge(t, id, AckRead, "MDN displayed")
	b.waitJob(t, id, BusinessAckRead, rivertype.JobStateCompleted)

	notices := dpi.got(id)
	require.Len(t, notices, 2)
	delivered, read, _ := b.times(t, id)
	require.False(t, delivered.IsZero())
	require.False(t, read.IsZero())
	for i, want := range []struct {
		event string
		at    time.Time
	}{{BusinessAckDelivery, delivered}, {BusinessAckRead, read}} {
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
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		return businessAcksFor(b.ctx, tx, b.client, true, id, AckDelivered, "DSN delivered 2.0.0, again")
	}))
	require.Len(t, b.jobs(t, id), 2)
	require.Len(t, dpi.got(id), 2)
}

// TestBusinessAckRefused cancels the job when the DPI refuses the
// acknowledgement for good: not retried, never enqueued again.
func TestBusinessAckRefused(t *testing.T) {
	t.Parallel()
	dpi := &fakeNotifier{answer: refuse}
	b := setupAcks(t, dpi)
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckDelivered, "DSN delivered 2.0.0")
	job := b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCancelled)
	require.Equal(t, 1, job.Attempt, "a refusal is not retried")
	require.Len(t, dpi.got(id), 1)
	require.Equal(t, []string{"business_ack_refused ZAM^Z02 ACK-1: AE 204 message d'origine inconnu"}, b.events(t, id))
	require.Equal(t, 1.0, b.metric(t, "Z02", "refused"))
	require.Zero(t, b.metric(t, "Z02", "accepted"))

	// Refused once, never enqueued again.
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		return businessAcksFor(b.ctx, tx, b.client, true, id, AckDelivered, "DSN delivered 2.0.0, again")
	}))
	require.Len(t, b.jobs(t, id), 1)
}

// TestBusinessAckDPIDown retries while the notifier fails (the DPI down,
// silent, or refusing for now), with the same notice, and records the
// acknowledgement once when it goes through.
func TestBusinessAckDPIDown(t *testing.T) {
	t.Parallel()
	dpi := &fakeNotifier{answer: func(n int) (DPIAnswer, error) {
		if n <= 2 {
			return DPIAnswer{}, fmt.Errorf("send ZAM^Z02: %w", errDPIDown)
		}
		return accept(n)
	}}
	b := setupAcks(t, dpi)
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckDelivered, "DSN delivered 2.0.0")
	job := b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCompleted)
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
// say at all (an error wrapping ErrUnsendable): cancelled, not retried.
func TestBusinessAckUnsendable(t *testing.T) {
	t.Parallel()
	dpi := &fakeNotifier{answer: func(int) (DPIAnswer, error) {
		return DPIAnswer{}, fmt.Errorf("%w: hl7: invalid ZAM: MSH-5: the receiving application is empty", ErrUnsendable)
	}}
	b := setupAcks(t, dpi)
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckRead, "MDN processed")
	job := b.waitJob(t, id, BusinessAckRead, rivertype.JobStateCancelled)
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
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckFailed, " DSN failed 5.1.1 smtp; 550 5.1.1 No such user\n")
	b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCompleted)
	notices := dpi.got(id)
	require.Len(t, notices, 1)
	n := notices[0]
	require.Equal(t, BusinessAckDelivery, n.Event)
	require.True(t, n.Failed)
	require.Equal(t, "DSN failed 5.1.1 smtp; 550 5.1.1 No such user", n.Detail)
	require.Equal(t, "MSG-0042", n.ControlID)
	require.Equal(t, "julie.roux@medecin-demo.mssante.fr", n.Address)
	_, _, updated := b.times(t, id)
	require.WithinDuration(t, updated, n.At, 0, "never delivered: when it failed")
	require.Equal(t, []string{"business_ack_sent ZAM^Z02 ACK-1: AA"}, b.events(t, id))

	// An MDN reporting an error, to a DPI that asked for the read ack only.
	mdn := b.seedWith(t, Flags{Present: true, ToProfessionals: true, ReadAck: true}, "hl7", false, 0)
	b.acknowledge(t, mdn, AckFailed, "MDN processed/error 902 Identifiant patient inconnu")
	b.waitJob(t, mdn, BusinessAckRead, rivertype.JobStateCompleted)
	notices = dpi.got(mdn)
	require.Len(t, notices, 1)
	require.Equal(t, BusinessAckRead, notices[0].Event)
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
	id := b.seed(t, allAcks, "hl7")
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		require.NoError(t, transition(b.ctx, tx, id, StatusSent, StatusDelivered, EventDelivered, actorSystem, ""))
		return businessAcksFor(b.ctx, tx, b.client, false, id, AckDelivered, "DSN delivered 2.0.0")
	}))
	require.Empty(t, b.jobs(t, id))

	// Unique per delivery and event, whatever the other arguments.
	later := &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}
	first, err := b.client.Insert(b.ctx, BusinessAckArgs{DeliveryID: id + 1, Event: BusinessAckRead}, later)
	require.NoError(t, err)
	again, err := b.client.Insert(b.ctx, BusinessAckArgs{DeliveryID: id + 1, Event: BusinessAckRead, Failed: true,
		Detail: "MDN processed/error 902 inconnu"}, later)
	require.NoError(t, err)
	require.True(t, again.UniqueSkippedAsDuplicate)
	require.Equal(t, first.Job.ID, again.Job.ID)
	other, err := b.client.Insert(b.ctx, BusinessAckArgs{DeliveryID: id + 1, Event: BusinessAckDelivery}, later)
	require.NoError(t, err)
	require.False(t, other.UniqueSkippedAsDuplicate)
	require.Equal(t, businessAckMaxAttempts, first.Job.MaxAttempts)

	_, err = b.client.Insert(b.ctx, BusinessAckArgs{DeliveryID: id, Event: BusinessAckDelivery}, nil)
	require.NoError(t, err)
	b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCancelled)
	require.Equal(t, 1.0, b.metric(t, "Z02", "off"))
	require.Empty(t, b.events(t, id))
}

// recordingInserter keeps the jobs it is asked to insert.
type recordingInserter struct{ args []river.JobArgs }

func (r *recordingInserter) InsertManyTx(_ context.Context, _ pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	for _, p := range params {
		r.args = append(r.args, p.Args)
	}
	return nil, nil
}

// TestBusinessAcksFor checks when the hook enqueues what.
func TestBusinessAcksFor(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	b := &ackBundle{ctx: context.Background(), pool: pool}
	failed := func(event, detail string) []BusinessAckArgs {
		return []BusinessAckArgs{{Event: event, Failed: true, Detail: detail}}
	}
	tests := []struct {
		name     string
		flags    Flags
		kind     string // of the inbound message
		paper    bool
		on       bool
		statuses []Status // the delivery goes through them first
		ack      string
		detail   string
		want     []BusinessAckArgs
	}{
		{name: "delivered", flags: allAcks, on: true, statuses: []Status{StatusDelivered}, ack: AckDelivered,
			detail: "DSN delivered 2.0.0", want: []BusinessAckArgs{{Event: "Z02"}}},
		{name: "DSN after the MDN", flags: allAcks, on: true, statuses: []Status{StatusRead}, ack: AckDelivered,
			want: []BusinessAckArgs{{Event: "Z02"}}},
		{name: "read", flags: allAcks, on: true, statuses: []Status{StatusRead}, ack: AckRead,
			detail: "MDN displayed", want: []BusinessAckArgs{{Event: "Z03"}}},
		{name: "acks off", flags: allAcks, on: false, statuses: []Status{StatusDelivered}, ack: AckDelivered},
		{name: "acks off, failure", flags: allAcks, on: false, statuses: []Status{StatusFailed}, ack: AckFailed,
			detail: "DSN failed 5.1.1"},
		{name: "no delivery ack asked", flags: Flags{Present: true, ToProfessionals: true, ReadAck: true}, on: true,
			statuses: []Status{StatusDelivered}, ack: AckDelivered},
		{name: "no read ack asked", flags: Flags{Present: true, ToProfessionals: true, DeliveryAck: true}, on: true,
			statuses: []Status{StatusRead}, ack: AckRead},
		{name: "no flags at all", flags: DefaultFlags, on: true, statuses: []Status{StatusDelivered}, ack: AckDelivered},
		{name: "REST JSON report", flags: allAcks, kind: "json", on: true, statuses: []Status{StatusDelivered}, ack: AckDelivered},
		{name: "paper delivery", flags: allAcks, paper: true, on: true, statuses: []Status{StatusDelivered}, ack: AckDelivered},
		{name: "acknowledgement without effect", flags: allAcks, on: true, statuses: []Status{StatusRead}, ack: AckFailed,
			detail: "DSN failed 5.1.1"},
		{name: "delayed", flags: allAcks, on: true, ack: AckDelayed, detail: "DSN delayed 4.4.7"},
		{name: "DSN failed", flags: allAcks, on: true, statuses: []Status{StatusFailed}, ack: AckFailed,
			detail: "DSN failed 5.1.1 smtp; 550 5.1.1 No such user",
			want:   failed("Z02", "DSN failed 5.1.1 smtp; 550 5.1.1 No such user")},
		{name: "DSN failed without SMTP code", flags: allAcks, on: true, statuses: []Status{StatusFailed}, ack: AckFailed,
			detail: "DSN failed 5.4.4", want: failed("Z02", "DSN failed 5.4.4")},
		{name: "DSN failed, unknown mailbox, no SMTP code", flags: allAcks, on: true, statuses: []Status{StatusFailed}, ack: AckFailed,
			detail: `DSN failed 5.1.1 X-Postfix; unknown user: "julie@example.org"`,
			want:   failed("Z02", `DSN failed 5.1.1 X-Postfix; unknown user: "julie@example.org"`)},
		{name: "DSN failed with an odd code", flags: allAcks, on: true, statuses: []Status{StatusFailed}, ack: AckFailed,
			detail: "DSN failed 4.4.7 smtp; 499 gave up", want: failed("Z02", "DSN failed 4.4.7 smtp; 499 gave up")},
		{name: "DSN failed, detail trimmed", flags: allAcks, on: true, statuses: []Status{StatusFailed}, ack: AckFailed,
			detail: " \tDSN failed 5.2.2 \r\n", want: failed("Z02", "DSN failed 5.2.2")},
		{name: "failed, no detail", flags: allAcks, on: true, statuses: []Status{StatusFailed}, ack: AckFailed,
			want: failed("Z02", "")},
		{name: "DSN failed, no delivery ack asked", flags: Flags{Present: true, ToProfessionals: true, ReadAck: true}, on: true,
			statuses: []Status{StatusFailed}, ack: AckFailed, detail: "DSN failed 5.1.1"},
		{name: "MDN error", flags: allAcks, on: true, statuses: []Status{StatusDelivered, StatusFailed}, ack: AckFailed,
			detail: "MDN processed/error 902 Identifiant patient inconnu",
			want:   failed("Z03", "MDN processed/error 902 Identifiant patient inconnu")},
		{name: "MDN error, caret", flags: allAcks, on: true, statuses: []Status{StatusFailed}, ack: AckFailed,
			detail: "MDN processed/Error: 904^INS différent", want: failed("Z03", "MDN processed/Error: 904^INS différent")},
		{name: "MDN error, detail trimmed", flags: allAcks, on: true, statuses: []Status{StatusFailed}, ack: AckFailed,
			detail: "  MDN processed/error 906 ", want: failed("Z03", "MDN processed/error 906")},
		{name: "MDN error, no read ack asked", flags: Flags{Present: true, ToProfessionals: true, DeliveryAck: true}, on: true,
			statuses: []Status{StatusFailed}, ack: AckFailed, detail: "MDN processed/error 902 inconnu"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := tt.kind
			if kind == "" {
				kind = "hl7"
			}
			id := b.seedWith(t, tt.flags, kind, tt.paper, i)
			rec := &recordingInserter{}
			require.NoError(t, pgx.BeginFunc(b.ctx, pool, func(tx pgx.Tx) error {
				from := StatusSent
				for _, to := range tt.statuses {
					_, err := tx.Exec(b.ctx, "UPDATE deliveries SET status = $2 WHERE id = $1 AND status = $3", id, to, from)
					require.NoError(t, err)
					from = to
				}
				return businessAcksFor(b.ctx, tx, rec, tt.on, id, tt.ack, tt.detail)
			}))
			var want []river.JobArgs
			for _, w := range tt.want {
				w.DeliveryID = id
				want = append(want, w)
			}
			require.Equal(t, want, rec.args)
		})
	}

	// An acknowledgement the DPI already accepted, or refused, is not enqueued again.
	for i, event := range []Event{EventBusinessAckSent, EventBusinessAckRefused} {
		id := b.seedWith(t, allAcks, "hl7", false, len(tests)+i)
		rec := &recordingInserter{}
		require.NoError(t, pgx.BeginFunc(b.ctx, pool, func(tx pgx.Tx) error {
			require.NoError(t, recordBusinessAck(b.ctx, tx, id, event, "ZAM^Z03 ACK-1: AA"))
			_, err := tx.Exec(b.ctx, "UPDATE deliveries SET status = 'read' WHERE id = $1", id)
			require.NoError(t, err)
			require.NoError(t, businessAcksFor(b.ctx, tx, rec, true, id, AckRead, "MDN displayed"))
			return businessAcksFor(b.ctx, tx, rec, true, id, AckDelivered, "DSN delivered 2.0.0")
		}))
		require.Equal(t, []river.JobArgs{BusinessAckArgs{DeliveryID: id, Event: "Z02"}}, rec.args, event)
	}
}

// seedWith is seed with a control id of its own (n), a kind of inbound
// message, and a paper delivery when paper is true.
func (b *ackBundle) seedWith(t *testing.T, flags Flags, kind string, paper bool, n int) int64 {
	t.Helper()
	var id int64
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		in := Inbound{Kind: kind, Source: "api", SendingApplication: "DPI", SendingFacility: "CH",
			ControlID: "MSG-" + string(rune('A'+n)), MessageType: "ORU^R01", Fingerprint: []byte("x")}
		inboundID, _, err := insertInbound(b.ctx, tx, in, Answer{Accepted: true})
		require.NoError(t, err)
		reportID, err := insertReport(b.ctx, tx, inboundID, in, &Report{Action: ActionNew, Flags: flags,
			Document:   Document{ID: "1.2.3^" + in.ControlID, CDA: []byte("<x/>")},
			Recipients: []Recipient{{Role: RoleResultCopiesTo, Kind: KindProfessional, Address: "a@medecin-demo.mssante.fr"}}})
		require.NoError(t, err)
		var recipientID int64
		require.NoError(t, tx.QueryRow(b.ctx, "SELECT id FROM recipients WHERE report_id = $1", reportID).Scan(&recipientID))
		d := newDelivery{RecipientID: recipientID, Channel: correspondents.ChannelMSSante, Status: StatusQueued,
			Address: "a@medecin-demo.mssante.fr", Reason: "test", ReasonText: "test", MessageID: in.ControlID + "@x"}
		if paper {
			d = newDelivery{RecipientID: recipientID, Channel: correspondents.ChannelPaper, Status: StatusCancelled,
				Reason: "test", ReasonText: "test"}
		}
		id, _, err = insertDelivery(b.ctx, tx, reportID, d, actorSystem)
		require.NoError(t, err)
		_, err = tx.Exec(b.ctx, "UPDATE deliveries SET status = 'sent' WHERE id = $1", id)
		return err
	}))
	return id
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
	require.False(t, BusinessAckConfig{}.Enabled())
	require.True(t, BusinessAckConfig{Notifier: dpi}.Enabled())
}

func TestBusinessAckBackoff(t *testing.T) {
	t.Parallel()
	w := &businessAckWorker{cfg: BusinessAckConfig{RetryBackoff: time.Minute}}
	for attempt, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 5: 16 * time.Minute, 6: 30 * time.Minute, 49: 30 * time.Minute} {
		next := w.NextRetry(&river.Job[BusinessAckArgs]{JobRow: &rivertype.JobRow{Attempt: attempt}})
		require.WithinDuration(t, time.Now().Add(want), next, 5*time.Second, "attempt %d", attempt)
	}
}
