package dispatch

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

// ackBundle is the database the hook's tests seed.
type ackBundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
}

var allAcks = Flags{Present: true, ToProfessionals: true, DeliveryAck: true, ReadAck: true}

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
			require.NoError(t, RecordBusinessAck(b.ctx, tx, id, event, "ZAM^Z03 ACK-1: AA"))
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
		reportID, _, err := insertReport(b.ctx, tx, inboundID, in, &Report{Action: ActionNew, Flags: flags,
			Document:   Document{ID: "1.2.3^" + in.ControlID, CDA: []byte("<x/>")},
			Recipients: []Recipient{{Role: RoleResultCopiesTo, Kind: KindProfessional, Address: "a@medecin-demo.mssante.fr"}}})
		require.NoError(t, err)
		var recipientID int64
		require.NoError(t, tx.QueryRow(b.ctx, "SELECT id FROM recipients WHERE report_id = $1", reportID).Scan(&recipientID))
		d := NewDelivery{RecipientID: recipientID, Channel: correspondents.ChannelMSSante, Status: StatusQueued,
			Address: "a@medecin-demo.mssante.fr", Reason: "test", ReasonText: "test", MessageID: in.ControlID + "@x"}
		if paper {
			d = NewDelivery{RecipientID: recipientID, Channel: correspondents.ChannelPaper, Status: StatusCancelled,
				Reason: "test", ReasonText: "test"}
		}
		id, _, err = InsertDelivery(b.ctx, tx, reportID, d, SystemActor)
		require.NoError(t, err)
		_, err = tx.Exec(b.ctx, "UPDATE deliveries SET status = 'sent' WHERE id = $1", id)
		return err
	}))
	return id
}
