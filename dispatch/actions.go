package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/correspondents"
)

// This file holds what people and the acknowledgements do to a delivery;
// each action is one transaction through the state machine, recorded with
// its actor.

// Acknowledgements of an email, from its DSN or MDN.
const (
	AckDelivered = string(StatusDelivered) // a DSN "delivered"
	AckRead      = string(StatusRead)      // an MDN "displayed" or "processed"
	AckFailed    = string(StatusFailed)    // a DSN "failed", or an MDN with an error
	AckDelayed   = "delayed"               // a DSN "delayed": the operator is still trying (no status change)
	AckReply     = "reply"                 // a human reply to the email (no status change)
)

// Approve sends a delivery a secretary reviewed, or a scheduled one at once:
// an MSSanté delivery is queued with its send job, a paper one goes to
// paper_pending. It returns ErrNoAddress when the delivery has no address to
// go to, and an error wrapping ErrTransition from another status.
func (s *Service) Approve(ctx context.Context, deliveryID int64, user string) error {
	return s.userAct(ctx, deliveryID, user, EventApproved, func(tx pgx.Tx, d StoredDelivery) (string, error) {
		if d.Status != StatusReview && d.Status != StatusScheduled {
			return "", allowedAction(d, "approve")
		}
		if d.Channel == correspondents.ChannelMSSante && d.Address != "" {
			if err := s.trusted(ctx, d.Address); err != nil {
				return "", err // never approved to an address outside the trust space
			}
		}
		return d.destination(), Release(ctx, tx, s.jobs, d, EventApproved, userActor(user), "")
	})
}

// SendTo sends an email in review at once to address, which the secretary
// chose (one of its Choices, or another trusted address): the address and
// the approval in one transaction. The address must be in the trust space
// (*RecipientError otherwise).
func (s *Service) SendTo(ctx context.Context, deliveryID int64, user, address string) error {
	a, err := correspondents.ParseMailbox(address)
	if err != nil {
		return fmt.Errorf("delivery %d: %w", deliveryID, &RecipientError{Problem: ProblemNotAnAddress, Address: address})
	}
	return s.userAct(ctx, deliveryID, user, EventApproved, func(tx pgx.Tx, d StoredDelivery) (string, error) {
		if d.Status != StatusReview || d.Channel != correspondents.ChannelMSSante || d.SendingAt {
			return "", allowedAction(d, "send to an address")
		}
		if err := s.trusted(ctx, a); err != nil {
			return "", err
		}
		if a != d.Address {
			if err := setDeliveryRecipient(ctx, tx, d.ID, a, d.Name, d.PostalAddress, ReasonUserEdit,
				"Adresse choisie par "+user+"."); err != nil {
				return "", err
			}
			detail := fmt.Sprintf("adresse: %s → %s", cmp.Or(d.Address, "(aucune)"), a)
			if err := InsertEvent(ctx, tx, d.ID, d.Status, d.Status, EventEdited, userActor(user), detail); err != nil {
				return "", err
			}
			d.Address = a
		}
		return "adresse choisie : " + a, Release(ctx, tx, s.jobs, d, EventApproved, userActor(user), "")
	})
}

// Hold puts a scheduled or paper_pending delivery back in review.
func (s *Service) Hold(ctx context.Context, deliveryID int64, user, why string) error {
	return s.userAct(ctx, deliveryID, user, EventHeld, func(tx pgx.Tx, d StoredDelivery) (string, error) {
		if d.Status != StatusScheduled && d.Status != StatusPaperPending {
			return "", allowedAction(d, "hold")
		}
		return why, transition(ctx, tx, d.ID, d.Status, StatusReview, EventHeld, userActor(user), why)
	})
}

// Cancel stops a delivery that has not left. An email being sent cannot be
// cancelled any more (ErrStale).
func (s *Service) Cancel(ctx context.Context, deliveryID int64, user, why string) error {
	return s.userAct(ctx, deliveryID, user, EventCancelled, func(tx pgx.Tx, d StoredDelivery) (string, error) {
		if d.SendingAt {
			return "", fmt.Errorf("delivery %d is being sent: %w", d.ID, ErrStale)
		}
		return why, transition(ctx, tx, d.ID, d.Status, StatusCancelled, EventCancelled, userActor(user), why)
	})
}

// Resend queues a failed MSSanté delivery again, with a new Message-ID (a new
// email: its acknowledgements must not be mistaken for the old one's).
func (s *Service) Resend(ctx context.Context, deliveryID int64, user string) error {
	return s.userAct(ctx, deliveryID, user, EventResent, func(tx pgx.Tx, d StoredDelivery) (string, error) {
		if d.Status != StatusFailed || d.Channel != correspondents.ChannelMSSante {
			return "", allowedAction(d, "resend")
		}
		messageID := newMessageID(domainOf(d.MessageID))
		if err := setMessageID(ctx, tx, d.ID, messageID); err != nil {
			return "", err
		}
		if err := transition(ctx, tx, d.ID, StatusFailed, StatusQueued, EventResent, userActor(user), messageID); err != nil {
			return "", err
		}
		return d.destination(), InsertJobs(ctx, tx, s.jobs, []river.InsertManyParams{{Args: SendArgs{DeliveryID: d.ID, MessageID: messageID}}})
	})
}

// MarkPaperSent records that a paper delivery was posted.
func (s *Service) MarkPaperSent(ctx context.Context, deliveryID int64, user string) error {
	return s.userAct(ctx, deliveryID, user, EventPaperSent, func(tx pgx.Tx, d StoredDelivery) (string, error) {
		return "", transition(ctx, tx, d.ID, d.Status, StatusPaperSent, EventPaperSent, userActor(user), "")
	})
}

// PostalReturn records a letter that came back (NPAI): the delivery goes
// back to review, for a secretary to correct the address.
func (s *Service) PostalReturn(ctx context.Context, deliveryID int64, user, why string) error {
	return s.userAct(ctx, deliveryID, user, EventReturned, func(tx pgx.Tx, d StoredDelivery) (string, error) {
		return why, transition(ctx, tx, d.ID, d.Status, StatusReview, EventReturned, userActor(user), why)
	})
}

// ackEvents maps each acknowledgement to the event Acknowledge records for
// it; its keys are also the ack label of mssdispatch_ack_delay_seconds (the
// mailbox's reader, package dispatch/mail/ingest).
var ackEvents = map[string]Event{AckDelivered: EventDelivered, AckRead: EventRead, AckFailed: EventFailed,
	AckDelayed: EventDelayed, AckReply: EventReply}

// AckEvent returns the event Acknowledge records for ack, "" for none.
func AckEvent(ack string) Event { return ackEvents[ack] }

// Acknowledge records a DSN, an MDN or a reply of an email: ack is
// AckDelivered, AckRead, AckFailed, AckDelayed or AckReply, detail says what
// the notification said. A failure applies the fallback of the delivery's
// policy; a read clears the unread flag; a delay is only recorded; a reply
// flags the delivery for a secretary. An acknowledgement the delivery is
// past (a DSN after the MDN) is recorded in the history without a change.
// A delivery, read or failure the DPI asked to hear of (ACK_RECEPTION,
// ACK_LECTURE_MSS) enqueues its business acknowledgement in the same
// transaction.
func (s *Service) Acknowledge(ctx context.Context, deliveryID int64, ack, detail string) error {
	event, ok := ackEvents[ack]
	if !ok {
		return fmt.Errorf("delivery %d: acknowledgement %q: want delivered, read, failed, delayed or reply", deliveryID, ack)
	}
	return s.act(ctx, deliveryID, func(tx pgx.Tx, d StoredDelivery) error {
		switch ack {
		case AckDelayed:
			return InsertEvent(ctx, tx, d.ID, d.Status, d.Status, event, SystemActor, detail)
		case AckReply:
			if err := SetAttention(ctx, tx, d.ID, AckReply); err != nil {
				return err
			}
			return InsertEvent(ctx, tx, d.ID, d.Status, d.Status, event, SystemActor, detail)
		}
		to := Status(ack) // AckDelivered, AckRead and AckFailed are the statuses they lead to
		var err error
		switch {
		case Allowed(d.Status, to) != nil:
			err = InsertEvent(ctx, tx, d.ID, d.Status, d.Status, event, SystemActor, detail+" (sans effet: "+string(d.Status)+")")
		case ack == AckFailed:
			err = FailDelivery(ctx, tx, d.ID, d.Status, event, detail, CauseFailed, s.jobs)
		case ack == AckRead:
			err = SetAttention(ctx, tx, d.ID, "")
			if err == nil {
				err = transition(ctx, tx, d.ID, d.Status, to, event, SystemActor, detail)
			}
		default:
			err = transition(ctx, tx, d.ID, d.Status, to, event, SystemActor, detail)
		}
		if err != nil {
			return err
		}
		// A late DSN (after the MDN) still earns the DPI its Z02.
		return businessAcksFor(ctx, tx, s.jobs, s.businessAcks, d.ID, ack, detail)
	})
}

// act runs change on the locked delivery in one transaction.
func (s *Service) act(ctx context.Context, deliveryID int64, change func(pgx.Tx, StoredDelivery) error) error {
	if err := WithDelivery(ctx, s.pool, deliveryID, change); err != nil {
		return fmt.Errorf("delivery %d: %w", deliveryID, err)
	}
	return nil
}

// userAct runs the action of user that records event on the locked
// delivery, and its audit entry ("delivery_<event>", with the detail change
// returns), in one transaction.
func (s *Service) userAct(ctx context.Context, deliveryID int64, user string, event Event, change func(pgx.Tx, StoredDelivery) (string, error)) error {
	return s.act(ctx, deliveryID, func(tx pgx.Tx, d StoredDelivery) error {
		detail, err := change(tx, d)
		if err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: user, Action: "delivery_" + string(event), Object: fmt.Sprintf("delivery:%d", d.ID),
			ReportID: d.ReportID, DeliveryID: d.ID, Detail: detail})
	})
}

// WithDelivery runs change on the delivery id, loaded and locked in a
// transaction of its own that commits the change.
func WithDelivery(ctx context.Context, pool *pgxpool.Pool, id int64, change func(pgx.Tx, StoredDelivery) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		d, err := loadDelivery(ctx, tx, id)
		if err != nil {
			return err
		}
		return change(tx, d)
	})
}

// allowedAction is the error of an action that does not apply to d's status.
func allowedAction(d StoredDelivery, action string) error {
	return fmt.Errorf("%w: %s a %s %s delivery", ErrTransition, action, d.Status, d.Channel)
}

// userActor is the person user.
func userActor(user string) Actor { return Actor{Kind: ActorUser, Name: user} }

// Reasons of the deliveries users create or change.
const (
	ReasonUserPaper correspondents.Reason = "user_paper" // a user switched an email to paper
	ReasonUserEdit  correspondents.Reason = "user_edit"  // a user chose the recipient's address
	ReasonUserAdded correspondents.Reason = "user_added" // a user added the recipient
)

// RoleAdded is the role of a recipient a user added to a report.
const RoleAdded = "ADDED"

// Events of the users' changes of a delivery's recipient.
const (
	EventEdited Event = "edited" // a user changed the address
	EventPaper  Event = "paper"  // a user asked for a letter
)

// SwitchToPaper makes a letter of an email: the recipient gets a paper
// delivery (paper_pending, or review when no postal address is known) and
// the email, when it has not left, is cancelled. It returns the paper
// delivery's id.
func (s *Service) SwitchToPaper(ctx context.Context, deliveryID int64, user string) (int64, error) {
	var paperID int64
	err := s.userAct(ctx, deliveryID, user, EventPaper, func(tx pgx.Tx, d StoredDelivery) (string, error) {
		if d.Channel != correspondents.ChannelMSSante || !CanSwitchToPaper(d.Status, d.SendingAt) {
			return "", allowedAction(d, "switch to paper")
		}
		paper := NewDelivery{RecipientID: d.RecipientID, Channel: correspondents.ChannelPaper, Status: StatusPaperPending,
			Name: d.Name, PostalAddress: d.PostalAddress, Reason: ReasonUserPaper,
			ReasonText: "Envoi papier demandé par " + user + ".",
			RuleName:   d.RuleName, RuleVersion: d.RuleVersion, Policy: d.Policy, FallbackOf: d.ID}
		if !d.PostalAddress.Known() {
			paper.Status = StatusReview
			paper.ReasonText += " Adresse postale inconnue: à compléter."
		}
		id, created, err := InsertDelivery(ctx, tx, d.ReportID, paper, userActor(user))
		if err != nil {
			return "", err
		}
		if !created {
			return "", fmt.Errorf("%w: the recipient already has a paper delivery", ErrTransition)
		}
		paperID = id
		detail := fmt.Sprintf("envoi papier créé (%d)", id)
		if slices.Contains(pendingStatuses, d.Status) {
			return detail, transition(ctx, tx, d.ID, d.Status, StatusCancelled, EventPaper, userActor(user), detail)
		}
		return detail, InsertEvent(ctx, tx, d.ID, d.Status, d.Status, EventPaper, userActor(user), detail)
	})
	return paperID, err
}

// RecipientChange is where a user sends a delivery: an MSSanté address for
// an email, a name and postal address for a letter.
type RecipientChange struct {
	Address       string
	Name          string
	PostalAddress PostalAddress
}

// RecipientError is the error of a recipient a user chose that cannot be
// used; Problem is one of the Problem constants.
type RecipientError struct {
	Problem string
	Address string
}

// Problems of a RecipientError.
const (
	ProblemNotAnAddress = "not_an_address" // not an RFC 5321 mailbox
	ProblemUntrusted    = "untrusted"      // outside the MSSanté trust space
	ProblemNoPostal     = "no_postal"      // a letter without city nor routing line
	ProblemNoAddress    = "no_address"     // neither an MSSanté nor a postal address
	ProblemNoName       = "no_name"
)

func (e *RecipientError) Error() string {
	if e.Address != "" {
		return fmt.Sprintf("recipient %s cannot be used: %s", e.Address, e.Problem)
	}
	return "recipient cannot be used: " + e.Problem
}

// EditRecipient changes where a delivery in review (or a failed email, or a
// letter not yet posted) goes. An email's address must be in the MSSanté
// trust space; the delivery keeps its status (a secretary then approves or
// resends it).
func (s *Service) EditRecipient(ctx context.Context, deliveryID int64, user string, c RecipientChange) error {
	if a, err := correspondents.ParseMailbox(c.Address); err == nil {
		c.Address = a // else trusted says so
	}
	c.Name = strings.TrimSpace(c.Name)
	return s.userAct(ctx, deliveryID, user, EventEdited, func(tx pgx.Tx, d StoredDelivery) (string, error) {
		editable := d.Status == StatusReview || d.Status == StatusPaperPending ||
			(d.Status == StatusFailed && d.Channel == correspondents.ChannelMSSante)
		if !editable || d.SendingAt {
			return "", allowedAction(d, "edit")
		}
		name := cmp.Or(c.Name, d.Name)
		var detail string
		if d.Channel == correspondents.ChannelMSSante {
			if err := s.trusted(ctx, c.Address); err != nil {
				return "", err
			}
			detail = fmt.Sprintf("adresse: %s → %s", cmp.Or(d.Address, "(aucune)"), c.Address)
			if err := setDeliveryRecipient(ctx, tx, d.ID, c.Address, name, d.PostalAddress, ReasonUserEdit,
				"Adresse choisie par "+user+"."); err != nil {
				return "", err
			}
		} else {
			if !c.PostalAddress.Known() {
				return "", &RecipientError{Problem: ProblemNoPostal}
			}
			detail = fmt.Sprintf("adresse postale: %s → %s", d.PostalAddress, c.PostalAddress)
			if err := setDeliveryRecipient(ctx, tx, d.ID, "", name, c.PostalAddress, ReasonUserEdit,
				"Adresse postale saisie par "+user+"."); err != nil {
				return "", err
			}
		}
		return detail, InsertEvent(ctx, tx, d.ID, d.Status, d.Status, EventEdited, userActor(user), detail)
	})
}

// AddRecipient adds a recipient the DPI did not list to the report: an
// email when c has an address (in the trust space), else a letter; the
// delivery waits in review for a secretary to approve. It returns the
// delivery's id.
func (s *Service) AddRecipient(ctx context.Context, reportID int64, user string, rc Recipient) (int64, error) {
	rc.Role = RoleAdded
	if rc.Kind == "" {
		rc.Kind = KindProfessional
	}
	d := NewDelivery{Status: StatusReview, Name: rc.Name(), PostalAddress: rc.PostalAddress, Reason: ReasonUserAdded,
		ReasonText: "Destinataire ajouté par " + user + "."}
	if a, err := correspondents.ParseMailbox(rc.Address); err == nil {
		rc.Address = a // else trusted says so
	}
	switch {
	case rc.Address != "":
		if err := s.trusted(ctx, rc.Address); err != nil {
			return 0, err
		}
		d.Channel, d.Address, d.MessageID = correspondents.ChannelMSSante, rc.Address, newMessageID(s.domain)
	case rc.PostalAddress.Known():
		d.Channel = correspondents.ChannelPaper
	default:
		return 0, &RecipientError{Problem: ProblemNoAddress}
	}
	if d.Name == "" {
		return 0, &RecipientError{Problem: ProblemNoName}
	}
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		position, err := nextRecipientPosition(ctx, tx, reportID)
		if err != nil {
			return err
		}
		if d.RecipientID, err = insertRecipient(ctx, tx, reportID, position, rc); err != nil {
			return err
		}
		if id, _, err = InsertDelivery(ctx, tx, reportID, d, userActor(user)); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: user, Action: "recipient_added", Object: fmt.Sprintf("delivery:%d", id),
			ReportID: reportID, DeliveryID: id, Detail: cmp.Or(d.Address, d.PostalAddress.String())})
	})
	if err != nil {
		return 0, fmt.Errorf("report %d: add recipient: %w", reportID, err)
	}
	return id, nil
}

// trusted returns a *RecipientError unless the resolver would
// send to address as is (a well-formed address of the trust space).
func (s *Service) trusted(ctx context.Context, address string) error {
	if _, err := correspondents.ParseMailbox(address); err != nil {
		return &RecipientError{Problem: ProblemNotAnAddress, Address: address}
	}
	routes, err := s.resolver.Resolve(ctx, correspondents.Recipient{Address: address, Name: "?"})
	if err != nil {
		return fmt.Errorf("check %s: %w", address, err)
	}
	for _, r := range routes {
		if r.Channel == correspondents.ChannelMSSante && !r.Review && strings.EqualFold(r.Address, address) {
			return nil
		}
	}
	return &RecipientError{Problem: ProblemUntrusted, Address: address}
}
