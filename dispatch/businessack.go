package dispatch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/correspondents"
)

// This file holds the business acknowledgements ("accusés métier") the DPI
// asks for with a report's flags: the domain decides which one a DSN or an
// MDN calls for and queues it (BusinessAckArgs); package dispatch/worker
// sends it through a DPINotifier (the HL7 edge says it as a ZAM over MLLP)
// and keeps the DPI's answer in the delivery's history.

// Business acknowledgement events, named as the volet names the ZAM's
// events (MSH-9.2).
const (
	BusinessAckDelivery = "Z02" // accusé de réception MSSanté, from a DSN
	BusinessAckRead     = "Z03" // accusé de lecture MSSanté, from an MDN
)

// Events of the delivery history about business acknowledgements.
const (
	EventBusinessAckSent    Event = "business_ack_sent"    // the DPI accepted it
	EventBusinessAckRefused Event = "business_ack_refused" // the DPI refused it for good
)

// ErrUnsendable is wrapped by the error of a DPINotifier that cannot say a
// notice at all: the acknowledgement is given up, not retried.
var ErrUnsendable = errors.New("business acknowledgement cannot be sent")

// DPINotifier sends the DPI one business acknowledgement and reads its
// answer (package hl7intake's Notifier: a ZAM over MLLP). An error (the
// DPI unreachable, silent, or refusing for now) is retried with backoff,
// unless it wraps ErrUnsendable.
type DPINotifier interface {
	NotifyDPI(ctx context.Context, n DPINotice) (DPIAnswer, error)
}

// DPINotice is one business acknowledgement of a delivery: what the DPI
// asked to know, about which message and recipient.
type DPINotice struct {
	DeliveryID int64
	// Event is BusinessAckDelivery or BusinessAckRead.
	Event string
	// Failed says the delivery or the reading failed; Detail is then what
	// the DSN or MDN said ("DSN failed 5.1.1 smtp; 550 …", "MDN … 902 …").
	Failed bool
	Detail string
	// At is when the email was delivered or read, else the delivery's last change.
	At time.Time
	// Address is the recipient's MSSanté address; RecipientID the
	// recipient's id as the DPI gave it (national id, else RPPS), if any.
	Address, RecipientID string
	// SendingApplication, SendingFacility and ControlID are the MSH-3, MSH-4
	// and MSH-10 of the message that carried the report;
	// ReceivingApplication and ReceivingFacility its MSH-5 and MSH-6.
	SendingApplication, SendingFacility, ControlID string
	ReceivingApplication, ReceivingFacility        string
}

// DPIAnswer is what the DPI answered to a notice it took: accepted, or
// refused for good. Detail says it for the delivery's history.
type DPIAnswer struct {
	Refused bool
	Detail  string
}

// businessAcksFor enqueues with ins, in tx, the business acknowledgement the
// DPI asked for about an acknowledgement ack (AckDelivered, AckRead,
// AckFailed) just recorded for delivery deliveryID, whose detail is what the
// DSN or MDN said; on is ServiceConfig.BusinessAcks. It enqueues:
//
//   - on AckDelivered, a Z02 when the report said ACK_RECEPTION=Y and the
//     delivery is delivered (or already read);
//   - on AckRead, a Z03 when it said ACK_LECTURE_MSS=Y and the delivery is read;
//   - on AckFailed of a failed delivery, the Z02 (a DSN) or Z03 (an MDN,
//     detail "MDN …") saying so, with the detail, under the same flags;
//
// and nothing for a paper delivery, a report that did not come as HL7 (the
// REST JSON API), or an acknowledgement the DPI already got or refused.
func businessAcksFor(ctx context.Context, tx pgx.Tx, ins JobInserter, on bool, deliveryID int64, ack, detail string) error {
	if !on {
		return nil
	}
	b, err := LoadBusinessAck(ctx, tx, deliveryID)
	if err != nil {
		return err
	}
	if b.Channel != correspondents.ChannelMSSante || !b.FromHL7 {
		return nil
	}
	var args BusinessAckArgs
	switch {
	case ack == AckDelivered && (b.Status == StatusDelivered || b.Status == StatusRead):
		args = BusinessAckArgs{Event: BusinessAckDelivery}
	case ack == AckRead && b.Status == StatusRead:
		args = BusinessAckArgs{Event: BusinessAckRead}
	case ack == AckFailed && b.Status == StatusFailed:
		args = BusinessAckArgs{Event: BusinessAckDelivery, Failed: true, Detail: strings.TrimSpace(detail)}
		if strings.HasPrefix(args.Detail, "MDN") {
			args.Event = BusinessAckRead
		}
	default:
		return nil
	}
	wanted := map[string]bool{BusinessAckDelivery: b.Flags.DeliveryAck, BusinessAckRead: b.Flags.ReadAck}[args.Event]
	if !wanted || slices.Contains(b.Sent, args.Event) || slices.Contains(b.Refused, args.Event) {
		return nil
	}
	args.DeliveryID = deliveryID
	return InsertJobs(ctx, tx, ins, []river.InsertManyParams{{Args: args}})
}
