package dispatch

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
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
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/queue"
)

var quietLog = slog.New(slog.DiscardHandler)

// fakeDPI is an MLLP listener playing the DPI: it keeps every message it
// gets and answers each with what answer returns (an ACK code, or "" for no
// answer at all).
type fakeDPI struct {
	addr string
	srv  *mllp.Server

	mu       sync.Mutex
	received [][]byte
	answer   func(n int) string // n: 1 for the first message
}

// startDPI starts a fake DPI on addr ("127.0.0.1:0" for any port).
func startDPI(t *testing.T, addr string, answer func(n int) string) *fakeDPI {
	t.Helper()
	d := &fakeDPI{answer: answer}
	d.srv = &mllp.Server{Handler: mllp.HandlerFunc(d.serve), Logger: quietLog}
	var l net.Listener
	var err error
	require.Eventually(t, func() bool { // the port of a listener just closed may take a moment
		l, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond, "listen on %s", addr)
	d.addr = l.Addr().String()
	go func() { _ = d.srv.Serve(l) }()
	t.Cleanup(func() { _ = d.srv.Close() })
	return d
}

func (d *fakeDPI) serve(_ context.Context, msg []byte) []byte {
	d.mu.Lock()
	d.received = append(d.received, msg)
	n := len(d.received)
	d.mu.Unlock()
	code := d.answer(n)
	if code == "" {
		return nil
	}
	m, err := hl7.Parse(msg, hl7.ParseOptions{})
	if err != nil {
		return hl7.NewACKFor(hl7.ControlIDOf(msg), hl7.AckReject, "DPI-ACK", time.Now()).Encode()
	}
	var errs []hl7.ErrDetail
	if code != hl7.AckAccept {
		errs = append(errs, hl7.ErrDetail{Code: hl7.CodeUnknownKey, Msg: "message d'origine inconnu"})
	}
	return hl7.NewACK(m, code, "DPI-ACK", time.Now(), errs...).Encode()
}

// messages returns the messages the DPI got, parsed.
func (d *fakeDPI) messages(t *testing.T) []*hl7.Message {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*hl7.Message, 0, len(d.received))
	for _, raw := range d.received {
		m, err := hl7.Parse(raw, hl7.ParseOptions{})
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

type ackBundle struct {
	ctx      context.Context
	pool     *pgxpool.Pool
	client   *queue.Client
	registry *prometheus.Registry
}

// setupAcks starts the business acknowledgement worker sending to addr
// (empty: off) on a fresh database.
func setupAcks(t *testing.T, addr string, configure ...func(*BusinessAckConfig)) *ackBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	registry := prometheus.NewRegistry()
	cfg := BusinessAckConfig{Pool: pool, Addr: addr, SendingApplication: "MSSDISPATCH", SendingFacility: "CH-DEMO",
		Timeout: 2 * time.Second, RetryBackoff: 10 * time.Millisecond, Registerer: registry, Logger: quietLog}
	for _, c := range configure {
		c(&cfg)
	}
	workers := river.NewWorkers()
	require.NoError(t, AddBusinessAcks(workers, cfg))
	client := StartQueue(t, pool, workers)
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
		require.NoError(t, transition(b.ctx, tx, id, d.Status, ack, ack, actorSystem, detail))
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

var allAcks = Flags{Present: true, ToProfessionals: true, DeliveryAck: true, ReadAck: true}

// TestBusinessAcksDeliveredThenRead sends a Z02 when the DSN comes and a Z03
// when the MDN comes, each once, and checks what the DPI receives.
func TestBusinessAcksDeliveredThenRead(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", func(int) string { return hl7.AckAccept })
	b := setupAcks(t, dpi.addr)
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckDelivered, "DSN delivered 2.0.0")
	b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCompleted)
	b.acknowledge(t, id, AckRead, "MDN displayed")
	b.waitJob(t, id, BusinessAckRead, rivertype.JobStateCompleted)

	msgs := dpi.messages(t)
	require.Len(t, msgs, 2)
	for i, event := range []string{hl7.ZAMDelivery, hl7.ZAMRead} {
		m := msgs[i]
		code, ev, structure := m.Type()
		require.Equal(t, []string{"ZAM", event, "ZAM_Z01"}, []string{code, ev, structure})
		require.Equal(t, businessAckControlID(BusinessAckArgs{DeliveryID: id, Event: event}), m.ControlID())
		msh := m.Segment("MSH")
		require.Equal(t, []string{"MSSDISPATCH", "CH-DEMO", "DPI", "CH"}, []string{msh.Get(3), msh.Get(4), msh.Get(5), msh.Get(6)},
			"from us to the DPI that sent the report (its MSH-3/4)")
		require.Equal(t, "2.6", m.Version())
		require.Equal(t, "CISIS_CDA_HL7_V2", msh.Component(21, 2))
		require.Nil(t, m.Segment("PID"), "no patient data in a ZAM")
		require.Nil(t, m.Segment("ERR"))
		require.Len(t, m.SegmentsNamed("EVN"), 1)
		obx := m.SegmentsNamed("OBX")
		require.Len(t, obx, 2)
		status, who := hl7.OBX{Segment: obx[0]}, hl7.OBX{Segment: obx[1]}
		want := map[string][2]string{hl7.ZAMDelivery: {"ACK_RECEPTION_MSS", "DESTINATAIRE_MSS"}, hl7.ZAMRead: {"ACK_LECTURE_MSS", "LECTEUR_MSS"}}[event]
		require.Equal(t, want[0], status.Identifier().Identifier)
		require.Equal(t, "MSG-0042", status.Get(4), "OBX-4 is the MSH-10 of the report's message")
		require.Equal(t, "Y", status.CodedValue().Identifier)
		require.Equal(t, want[1], who.Identifier().Identifier)
		require.Equal(t, "899900000007", who.Get(4), "OBX-4 is the recipient's id as the DPI gave it")
		require.Equal(t, "X.400", who.Value().Rep(0).Comp(3))
		require.Equal(t, "julie.roux@medecin-demo.mssante.fr", who.Value().Rep(0).Comp(4))
	}
	require.Equal(t, []string{
		"business_ack_sent ZAM^Z02 " + businessAckControlID(BusinessAckArgs{DeliveryID: id, Event: "Z02"}) + ": AA",
		"business_ack_sent ZAM^Z03 " + businessAckControlID(BusinessAckArgs{DeliveryID: id, Event: "Z03"}) + ": AA",
	}, b.events(t, id))
	require.Equal(t, 1.0, b.metric(t, "Z02", "accepted"))
	require.Equal(t, 1.0, b.metric(t, "Z03", "accepted"))

	// A second DSN (the delivery is read now): nothing more for the DPI.
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		return businessAcksFor(b.ctx, tx, b.client, true, id, AckDelivered, "DSN delivered 2.0.0, again")
	}))
	require.Len(t, b.jobs(t, id), 2)
	require.Len(t, dpi.messages(t), 2)
}

// TestBusinessAckRefused cancels the job when the DPI answers AE: not retried.
// TestBusinessAckHeader checks that a ZAM comes from what the DPI named as
// the receiver of its message (its MSH-5 and MSH-6), unless configured.
func TestBusinessAckHeader(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", func(int) string { return hl7.AckAccept })
	b := setupAcks(t, dpi.addr, func(c *BusinessAckConfig) { c.SendingApplication, c.SendingFacility = "", "" })
	id := b.seed(t, allAcks, "hl7")
	b.acknowledge(t, id, AckDelivered, "DSN delivered 2.0.0")
	b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCompleted)
	msh := dpi.messages(t)[0].Segment("MSH")
	require.Equal(t, []string{"PFI", "CH-PFI", "DPI", "CH"}, []string{msh.Get(3), msh.Get(4), msh.Get(5), msh.Get(6)},
		"the DPI's MSH-5/6 and MSH-3/4, swapped as in the volet's examples")
}

func TestBusinessAckRefused(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", func(int) string { return hl7.AckError })
	b := setupAcks(t, dpi.addr)
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckDelivered, "DSN delivered 2.0.0")
	job := b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCancelled)
	require.Equal(t, 1, job.Attempt, "a refusal is not retried")
	require.Len(t, dpi.messages(t), 1)
	events := b.events(t, id)
	require.Len(t, events, 1)
	require.Contains(t, events[0], "business_ack_refused ZAM^Z02 ")
	require.Contains(t, events[0], ": AE 204")
	require.Equal(t, 1.0, b.metric(t, "Z02", "refused"))

	// Refused once, never enqueued again.
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		return businessAcksFor(b.ctx, tx, b.client, true, id, AckDelivered, "DSN delivered 2.0.0, again")
	}))
	require.Len(t, b.jobs(t, id), 1)
}

// TestBusinessAckDPIDown retries while the DPI is down and delivers the
// acknowledgement once when it comes back.
func TestBusinessAckDPIDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // the DPI is down
	b := setupAcks(t, addr)
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckDelivered, "DSN delivered 2.0.0")
	require.Eventually(t, func() bool {
		jobs := b.jobs(t, id)
		return len(jobs) == 1 && len(jobs[0].Errors) >= 2
	}, 30*time.Second, 50*time.Millisecond)
	require.Positive(t, b.metric(t, "Z02", "retry"))

	dpi := startDPI(t, addr, func(int) string { return hl7.AckAccept }) // it comes back
	job := b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCompleted)
	require.GreaterOrEqual(t, job.Attempt, 2)
	require.Len(t, dpi.messages(t), 1, "delivered once")
	require.Equal(t, 1.0, b.metric(t, "Z02", "accepted"))
}

// TestBusinessAckNoAnswer retries a ZAM the DPI did not acknowledge in time,
// with the same MSH-10, so that the DPI can tell it got it twice.
func TestBusinessAckNoAnswer(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", func(n int) string {
		if n == 1 {
			return "" // swallowed
		}
		return hl7.AckAccept
	})
	b := setupAcks(t, dpi.addr, func(c *BusinessAckConfig) { c.Timeout = 300 * time.Millisecond })
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckRead, "MDN processed")
	job := b.waitJob(t, id, BusinessAckRead, rivertype.JobStateCompleted)
	require.Equal(t, 2, job.Attempt)
	msgs := dpi.messages(t)
	require.Len(t, msgs, 2)
	require.Equal(t, msgs[0].ControlID(), msgs[1].ControlID())
	require.Len(t, b.events(t, id), 1)
}

// TestBusinessAckFailure tells the DPI that a delivery failed, with the
// SMTP code of the DSN in the ERR segment.
func TestBusinessAckFailure(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", func(int) string { return hl7.AckAccept })
	b := setupAcks(t, dpi.addr)
	id := b.seed(t, allAcks, "hl7")

	b.acknowledge(t, id, AckFailed, "DSN failed 5.1.1 smtp; 550 5.1.1 No such user")
	b.waitJob(t, id, BusinessAckDelivery, rivertype.JobStateCompleted)
	msgs := dpi.messages(t)
	require.Len(t, msgs, 1)
	require.Equal(t, "N", hl7.OBX{Segment: msgs[0].SegmentsNamed("OBX")[0]}.CodedValue().Identifier)
	e := msgs[0].Segment("ERR")
	require.NotNil(t, e)
	require.Equal(t, "207", e.Component(3, 1))
	require.Equal(t, []string{"550", hl7.ZAMErrorText(hl7.ZAMDelivery, "550"), "SMTPERRORCODE"},
		[]string{e.Component(5, 1), e.Component(5, 2), e.Component(5, 3)})
}

// TestBusinessAcksOff registers the worker without an address: the hook
// enqueues nothing, and a job left from before is cancelled unsent.
func TestBusinessAcksOff(t *testing.T) {
	t.Parallel()
	b := setupAcks(t, "")
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
	again, err := b.client.Insert(b.ctx, BusinessAckArgs{DeliveryID: id + 1, Event: BusinessAckRead, Failed: true, ErrorCode: "902"}, later)
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
	tests := []struct {
		name     string
		flags    Flags
		kind     string // of the inbound message
		paper    bool
		on       bool
		statuses []string // the delivery goes through them first
		ack      string
		detail   string
		want     []BusinessAckArgs
	}{
		{name: "delivered", flags: allAcks, on: true, statuses: []string{StatusDelivered}, ack: AckDelivered,
			want: []BusinessAckArgs{{Event: "Z02"}}},
		{name: "DSN after the MDN", flags: allAcks, on: true, statuses: []string{StatusRead}, ack: AckDelivered,
			want: []BusinessAckArgs{{Event: "Z02"}}},
		{name: "read", flags: allAcks, on: true, statuses: []string{StatusRead}, ack: AckRead,
			want: []BusinessAckArgs{{Event: "Z03"}}},
		{name: "acks off", flags: allAcks, on: false, statuses: []string{StatusDelivered}, ack: AckDelivered},
		{name: "no delivery ack asked", flags: Flags{Present: true, ToProfessionals: true, ReadAck: true}, on: true,
			statuses: []string{StatusDelivered}, ack: AckDelivered},
		{name: "no read ack asked", flags: Flags{Present: true, ToProfessionals: true, DeliveryAck: true}, on: true,
			statuses: []string{StatusRead}, ack: AckRead},
		{name: "no flags at all", flags: DefaultFlags, on: true, statuses: []string{StatusDelivered}, ack: AckDelivered},
		{name: "REST JSON report", flags: allAcks, kind: "json", on: true, statuses: []string{StatusDelivered}, ack: AckDelivered},
		{name: "paper delivery", flags: allAcks, paper: true, on: true, statuses: []string{StatusDelivered}, ack: AckDelivered},
		{name: "acknowledgement without effect", flags: allAcks, on: true, statuses: []string{StatusRead}, ack: AckFailed,
			detail: "DSN failed 5.1.1"},
		{name: "DSN failed", flags: allAcks, on: true, statuses: []string{StatusFailed}, ack: AckFailed,
			detail: "DSN failed 5.1.1 smtp; 550 5.1.1 No such user",
			want:   []BusinessAckArgs{{Event: "Z02", Failed: true, ErrorCode: "550"}}},
		{name: "DSN failed without SMTP code", flags: allAcks, on: true, statuses: []string{StatusFailed}, ack: AckFailed,
			detail: "DSN failed 5.4.4",
			want:   []BusinessAckArgs{{Event: "Z02", Failed: true, ErrorCode: "512", ErrorText: "DSN failed 5.4.4"}}},
		{name: "DSN failed, unknown mailbox, no SMTP code", flags: allAcks, on: true, statuses: []string{StatusFailed}, ack: AckFailed,
			detail: `DSN failed 5.1.1 X-Postfix; unknown user: "julie@example.org"`,
			want: []BusinessAckArgs{{Event: "Z02", Failed: true, ErrorCode: "550",
				ErrorText: `DSN failed 5.1.1 X-Postfix; unknown user: "julie@example.org"`}}},
		{name: "DSN failed with an odd code", flags: allAcks, on: true, statuses: []string{StatusFailed}, ack: AckFailed,
			detail: "DSN failed 4.4.7 smtp; 499 gave up",
			want:   []BusinessAckArgs{{Event: "Z02", Failed: true, ErrorCode: "499", ErrorText: "DSN failed 4.4.7 smtp; 499 gave up"}}},
		{name: "MDN error", flags: allAcks, on: true, statuses: []string{StatusDelivered, StatusFailed}, ack: AckFailed,
			detail: "MDN processed/error 902 Identifiant patient inconnu",
			want:   []BusinessAckArgs{{Event: "Z03", Failed: true, ErrorCode: "902", ErrorText: "Identifiant patient inconnu"}}},
		{name: "MDN error, caret", flags: allAcks, on: true, statuses: []string{StatusFailed}, ack: AckFailed,
			detail: "MDN processed/Error: 904^INS différent",
			want:   []BusinessAckArgs{{Event: "Z03", Failed: true, ErrorCode: "904", ErrorText: "INS différent"}}},
		{name: "MDN error, no read ack asked", flags: Flags{Present: true, ToProfessionals: true, DeliveryAck: true}, on: true,
			statuses: []string{StatusFailed}, ack: AckFailed, detail: "MDN processed/error 902 inconnu"},
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
}

// TestFailedAck checks the acknowledgement of each kind of failure: the
// SMTP reply code of a DSN when it gives one, else the code its enhanced
// status code (RFC 3463) maps to in dsnStatusCodes, else 554; the MSSanté
// error code of an MDN.
func TestFailedAck(t *testing.T) {
	t.Parallel()
	dsn := func(code, text string) BusinessAckArgs {
		return BusinessAckArgs{Event: BusinessAckDelivery, Failed: true, ErrorCode: code, ErrorText: text}
	}
	mdn := func(code, text string) BusinessAckArgs {
		return BusinessAckArgs{Event: BusinessAckRead, Failed: true, ErrorCode: code, ErrorText: text}
	}
	tests := []struct {
		detail string
		want   BusinessAckArgs
	}{
		// The DSN's own SMTP reply code: the volet's label says it, or the detail does.
		{"DSN failed 5.1.1 smtp; 550 5.1.1 No such user", dsn("550", "")},
		{"DSN failed 5.2.2 smtp; 552-5.2.2 Mailbox full", dsn("552", "")},
		{"DSN failed 4.4.7 (smtp; 421 too busy)", dsn("421", "")},
		{"DSN failed 4.4.7 smtp; 499 gave up", dsn("499", "DSN failed 4.4.7 smtp; 499 gave up")},
		// No SMTP reply code: the enhanced status code.
		{"DSN failed 4.4.7", dsn("441", "DSN failed 4.4.7")},
		{"DSN failed 5.4.7 X-Postfix; delivery time expired", dsn("441", "DSN failed 5.4.7 X-Postfix; delivery time expired")},
		{"DSN failed 4.4.1 X-Postfix; connect to mx.example.org: Connection timed out", dsn("441", "DSN failed 4.4.1 X-Postfix; connect to mx.example.org: Connection timed out")},
		{"DSN failed 5.4.2", dsn("442", "DSN failed 5.4.2")},
		{"DSN failed 4.2.2", dsn("422", "DSN failed 4.2.2")},
		{"DSN failed 5.2.2", dsn("552", "DSN failed 5.2.2")},
		{"DSN failed 5.3.4", dsn("523", "DSN failed 5.3.4")},
		{"DSN failed 5.1.2 X-Postfix; Host or domain name not found", dsn("512", "DSN failed 5.1.2 X-Postfix; Host or domain name not found")},
		{"DSN failed 4.4.4", dsn("512", "DSN failed 4.4.4")},
		{"DSN failed 5.4.4", dsn("512", "DSN failed 5.4.4")},
		{"DSN failed 5.7.1 X-Postfix; Relay access denied", dsn("541", "DSN failed 5.7.1 X-Postfix; Relay access denied")},
		{"DSN failed 5.7.26", dsn("541", "DSN failed 5.7.26")},
		{"DSN failed 5.1.1", dsn("550", "DSN failed 5.1.1")},
		{"DSN failed 5.1.10.", dsn("550", "DSN failed 5.1.10.")},
		{"DSN failed 5.4.70", dsn("554", "DSN failed 5.4.70")},
		{"DSN failed 5.0.0", dsn("554", "DSN failed 5.0.0")},
		{"DSN failed 4.0.0", dsn("554", "DSN failed 4.0.0")},
		{"DSN failed 5.4.4 X-Postfix; host 10.4.7.1 refused", dsn("512", "DSN failed 5.4.4 X-Postfix; host 10.4.7.1 refused")},
		// Neither: the send failed.
		{"DSN failed", dsn("554", "DSN failed")},
		{"DSN failed X-Postfix; connect to 10.5.2.2: timeout", dsn("554", "DSN failed X-Postfix; connect to 10.5.2.2: timeout")},
		// MDNs.
		{"MDN processed/error 902 Identifiant patient inconnu", mdn("902", "Identifiant patient inconnu")},
		{"MDN processed/Error: 904^INS différent", mdn("904", "INS différent")},
		{"MDN processed/error 906", mdn("906", "")},
		{"MDN processed/error", mdn("", "MDN processed/error")},
	}
	for _, tt := range tests {
		t.Run(tt.detail, func(t *testing.T) {
			t.Parallel()
			got := failedAck(" " + tt.detail + " ")
			require.Equal(t, tt.want, got)

			// The ZAM of it always has an ERR-5, the explanation in ERR-8 when it says more.
			z := hl7.ZAM{Event: got.Event, ControlID: "ZAM-1", Time: time.Now(), SendingApplication: hl7.HD{NamespaceID: "MSSDISPATCH"},
				ReceivingApplication: hl7.HD{NamespaceID: "DPI"}, OriginalControlID: "MSG-1", RecipientAddress: "a@medecin.mssante.fr",
				Error: &hl7.ZAMError{Code: got.ErrorCode, Text: got.ErrorText}}
			m, err := hl7.BuildZAM(z)
			require.NoError(t, err)
			e := m.Segment("ERR")
			require.NotNil(t, e)
			require.Len(t, e.Component(5, 1), 3)
			require.NotEmpty(t, e.Component(5, 3))
			if got.ErrorCode != "" && hl7.ZAMErrorText(got.Event, got.ErrorCode) != "" {
				require.Equal(t, hl7.ZAMErrorText(got.Event, got.ErrorCode), e.Component(5, 2))
			}
		})
	}
}

// TestDSNStatusCodes checks that each row of dsnStatusCodes names a code of
// the volet's SMTPERRORCODE table and is reachable (no earlier row hides it).
func TestDSNStatusCodes(t *testing.T) {
	t.Parallel()
	for i, row := range dsnStatusCodes {
		require.NotEmpty(t, hl7.ZAMErrorText(hl7.ZAMDelivery, row.code), "row %s", row.status)
		status := row.status
		if strings.HasSuffix(status, ".") {
			status += "99"
			if strings.Count(status, ".") < 2 {
				status += ".99"
			}
		}
		require.Equal(t, row.code, smtpCodeForStatus(status), "row %d %s", i, row.status)
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
	for name, cfg := range map[string]BusinessAckConfig{
		"no pool":         {Addr: "127.0.0.1:2576"},
		"bad address":     {Pool: pool, Addr: "dpi-without-port"},
		"bad processing":  {Pool: pool, ProcessingID: "X"},
		"negative backof": {Pool: pool, RetryBackoff: -time.Second},
	} {
		require.Error(t, AddBusinessAcks(river.NewWorkers(), cfg), name)
	}
	require.NoError(t, AddBusinessAcks(river.NewWorkers(), BusinessAckConfig{Pool: pool}), "off is a valid configuration")
	require.False(t, BusinessAckConfig{}.Enabled())
	require.True(t, BusinessAckConfig{Addr: "dpi:2576"}.Enabled())
}

func TestBusinessAckBackoff(t *testing.T) {
	t.Parallel()
	w := &businessAckWorker{cfg: BusinessAckConfig{RetryBackoff: time.Minute}}
	for attempt, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 5: 16 * time.Minute, 6: 30 * time.Minute, 49: 30 * time.Minute} {
		next := w.NextRetry(&river.Job[BusinessAckArgs]{JobRow: &rivertype.JobRow{Attempt: attempt}})
		require.WithinDuration(t, time.Now().Add(want), next, 5*time.Second, "attempt %d", attempt)
	}
}

func TestReadDPIAck(t *testing.T) {
	t.Parallel()
	const id = "ZAM-Z02-7"
	for _, tt := range []struct {
		name, resp string
		accepted   bool
		permanent  bool
		err        string
	}{
		{name: "AA", resp: "MSH|^~\\&|DPI|CH|MSSDISPATCH|CH|20240101||ACK^Z02^ACK|1|P|2.6\rMSA|AA|" + id, accepted: true},
		{name: "CA", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|CA|" + id, accepted: true},
		{name: "AE", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AE|" + id + "\rERR|||204^Unknown key identifier^HL70357|E", permanent: true},
		{name: "AR unsupported", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AR|" + id + "\rERR|||200^Unsupported message type^HL70357|E", permanent: true},
		{name: "AR busy", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AR|" + id + "\rERR|||207^Application internal error^HL70357|E"},
		{name: "other message", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AA|ZAM-Z02-8", err: "acknowledges"},
		{name: "no MSA", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6", err: "no MSA"},
		{name: "bad code", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|OK|" + id, err: "MSA-1"},
		{name: "not HL7", resp: "OK", err: "not HL7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := readDPIAck([]byte(tt.resp), id)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.accepted, a.accepted())
			require.Equal(t, tt.permanent, a.permanent())
		})
	}
}
