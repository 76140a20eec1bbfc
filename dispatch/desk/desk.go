package desk

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/mssdispatch/mssdispatch/audit"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

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
	EventEdited dispatch.Event = "edited" // a user changed the address
	EventPaper  dispatch.Event = "paper"  // a user asked for a letter
)

// RecipientChange is where a user sends a delivery: an MSSanté address for
// an email, a name and postal address for a letter.
type RecipientChange struct {
	Address       string
	Name          string
	PostalAddress dispatch.PostalAddress
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

// Desk is what people do to deliveries (the dashboard's actions); each
// action is one transaction through dispatch's state machine, recorded with
// its actor and in the audit log.
type Desk struct {
	pool *pgxpool.Pool
	jobs dispatch.JobInserter
	// resolver says whether an address is in the trust space.
	resolver dispatch.Resolver
	// domain names the Message-ID of the emails users add to a report.
	domain string
}

// New returns the desk of the deliveries in pool: it enqueues their send
// jobs with jobs (the River client), checks the addresses people give with
// resolver, and names the Message-IDs of the emails they add in the domain
// of sender, the applicative mailbox ("mssdispatch.invalid" when empty).
func New(pool *pgxpool.Pool, jobs dispatch.JobInserter, resolver dispatch.Resolver, sender string) *Desk {
	return &Desk{pool: pool, jobs: jobs, resolver: resolver, domain: cmp.Or(mail.DomainOf(sender), "mssdispatch.invalid")}
}

// Approve sends a delivery a secretary reviewed, or a scheduled one at once:
// an MSSanté delivery is queued with its send job, a paper one goes to
// paper_pending. It returns dispatch.ErrNoAddress when the delivery has no address to
// go to, and an error wrapping dispatch.ErrTransition from another status.
func (k *Desk) Approve(ctx context.Context, deliveryID int64, user string) error {
	return k.userAct(ctx, deliveryID, user, dispatch.EventApproved, func(tx pgx.Tx, d dispatch.StoredDelivery) (string, error) {
		if d.Status != dispatch.StatusReview && d.Status != dispatch.StatusScheduled {
			return "", allowedAction(d, "approve")
		}
		if d.Channel == correspondents.ChannelMSSante && d.Address != "" {
			if err := k.trusted(ctx, d.Address); err != nil {
				return "", err // never approved to an address outside the trust space
			}
		}
		return d.Destination(), dispatch.Release(ctx, tx, k.jobs, d, dispatch.EventApproved, userActor(user), "")
	})
}

// SendTo sends an email in review at once to address, which the secretary
// chose (one of its Choices, or another trusted address): the address and
// the approval in one transaction. The address must be in the trust space
// (*RecipientError otherwise).
func (k *Desk) SendTo(ctx context.Context, deliveryID int64, user, address string) error {
	a, err := correspondents.ParseMailbox(address)
	if err != nil {
		return fmt.Errorf("delivery %d: %w", deliveryID, &RecipientError{Problem: ProblemNotAnAddress, Address: address})
	}
	return k.userAct(ctx, deliveryID, user, dispatch.EventApproved, func(tx pgx.Tx, d dispatch.StoredDelivery) (string, error) {
		if d.Status != dispatch.StatusReview || d.Channel != correspondents.ChannelMSSante || d.SendingAt {
			return "", allowedAction(d, "send to an address")
		}
		if err := k.trusted(ctx, a); err != nil {
			return "", err
		}
		if a != d.Address {
			if err := dispatch.SetDeliveryRecipient(ctx, tx, d.ID, a, d.Name, d.PostalAddress, ReasonUserEdit,
				"Adresse choisie par "+user+"."); err != nil {
				return "", err
			}
			detail := fmt.Sprintf("adresse: %s → %s", cmp.Or(d.Address, "(aucune)"), a)
			if err := dispatch.InsertEvent(ctx, tx, d.ID, d.Status, d.Status, EventEdited, userActor(user), detail); err != nil {
				return "", err
			}
			d.Address = a
		}
		return "adresse choisie : " + a, dispatch.Release(ctx, tx, k.jobs, d, dispatch.EventApproved, userActor(user), "")
	})
}

// Hold puts a scheduled or paper_pending delivery back in review.
func (k *Desk) Hold(ctx context.Context, deliveryID int64, user, why string) error {
	return k.userAct(ctx, deliveryID, user, dispatch.EventHeld, func(tx pgx.Tx, d dispatch.StoredDelivery) (string, error) {
		if d.Status != dispatch.StatusScheduled && d.Status != dispatch.StatusPaperPending {
			return "", allowedAction(d, "hold")
		}
		return why, dispatch.Transition(ctx, tx, d.ID, d.Status, dispatch.StatusReview, dispatch.EventHeld, userActor(user), why)
	})
}

// Cancel stops a delivery that has not left. An email being sent cannot be
// cancelled any more (dispatch.ErrStale).
func (k *Desk) Cancel(ctx context.Context, deliveryID int64, user, why string) error {
	return k.userAct(ctx, deliveryID, user, dispatch.EventCancelled, func(tx pgx.Tx, d dispatch.StoredDelivery) (string, error) {
		if d.SendingAt {
			return "", fmt.Errorf("delivery %d is being sent: %w", d.ID, dispatch.ErrStale)
		}
		return why, dispatch.Transition(ctx, tx, d.ID, d.Status, dispatch.StatusCancelled, dispatch.EventCancelled, userActor(user), why)
	})
}

// Resend queues a failed MSSanté delivery again, with a new Message-ID (a new
// email: its acknowledgements must not be mistaken for the old one's).
func (k *Desk) Resend(ctx context.Context, deliveryID int64, user string) error {
	return k.userAct(ctx, deliveryID, user, dispatch.EventResent, func(tx pgx.Tx, d dispatch.StoredDelivery) (string, error) {
		if d.Status != dispatch.StatusFailed || d.Channel != correspondents.ChannelMSSante {
			return "", allowedAction(d, "resend")
		}
		messageID := dispatch.NewMessageID(mail.DomainOf(d.MessageID))
		if err := dispatch.SetMessageID(ctx, tx, d.ID, messageID); err != nil {
			return "", err
		}
		if err := dispatch.Transition(ctx, tx, d.ID, dispatch.StatusFailed, dispatch.StatusQueued, dispatch.EventResent, userActor(user), messageID); err != nil {
			return "", err
		}
		return d.Destination(), dispatch.InsertJobs(ctx, tx, k.jobs, []river.InsertManyParams{{Args: dispatch.SendArgs{DeliveryID: d.ID, MessageID: messageID}}})
	})
}

// MarkPaperSent records that a paper delivery was posted.
func (k *Desk) MarkPaperSent(ctx context.Context, deliveryID int64, user string) error {
	return k.userAct(ctx, deliveryID, user, dispatch.EventPaperSent, func(tx pgx.Tx, d dispatch.StoredDelivery) (string, error) {
		return "", dispatch.Transition(ctx, tx, d.ID, d.Status, dispatch.StatusPaperSent, dispatch.EventPaperSent, userActor(user), "")
	})
}

// PostalReturn records a letter that came back (NPAI): the delivery goes
// back to review, for a secretary to correct the address.
func (k *Desk) PostalReturn(ctx context.Context, deliveryID int64, user, why string) error {
	return k.userAct(ctx, deliveryID, user, dispatch.EventReturned, func(tx pgx.Tx, d dispatch.StoredDelivery) (string, error) {
		return why, dispatch.Transition(ctx, tx, d.ID, d.Status, dispatch.StatusReview, dispatch.EventReturned, userActor(user), why)
	})
}

// SwitchToPaper makes a letter of an email: the recipient gets a paper
// delivery (paper_pending, or review when no postal address is known) and
// the email, when it has not left, is cancelled. It returns the paper
// delivery's id.
func (k *Desk) SwitchToPaper(ctx context.Context, deliveryID int64, user string) (int64, error) {
	var paperID int64
	err := k.userAct(ctx, deliveryID, user, EventPaper, func(tx pgx.Tx, d dispatch.StoredDelivery) (string, error) {
		if d.Channel != correspondents.ChannelMSSante || !dispatch.CanSwitchToPaper(d.Status, d.SendingAt) {
			return "", allowedAction(d, "switch to paper")
		}
		paper := dispatch.NewDelivery{RecipientID: d.RecipientID, Channel: correspondents.ChannelPaper, Status: dispatch.StatusPaperPending,
			Name: d.Name, PostalAddress: d.PostalAddress, Reason: ReasonUserPaper,
			ReasonText: "Envoi papier demandé par " + user + ".",
			RuleName:   d.RuleName, RuleVersion: d.RuleVersion, Policy: d.Policy, FallbackOf: d.ID}
		if !d.PostalAddress.Known() {
			paper.Status = dispatch.StatusReview
			paper.ReasonText += " Adresse postale inconnue: à compléter."
		}
		id, created, err := dispatch.InsertDelivery(ctx, tx, d.ReportID, paper, userActor(user))
		if err != nil {
			return "", err
		}
		if !created {
			return "", fmt.Errorf("%w: the recipient already has a paper delivery", dispatch.ErrTransition)
		}
		paperID = id
		detail := fmt.Sprintf("envoi papier créé (%d)", id)
		if d.Status.Pending() {
			return detail, dispatch.Transition(ctx, tx, d.ID, d.Status, dispatch.StatusCancelled, EventPaper, userActor(user), detail)
		}
		return detail, dispatch.InsertEvent(ctx, tx, d.ID, d.Status, d.Status, EventPaper, userActor(user), detail)
	})
	return paperID, err
}

// EditRecipient changes where a delivery in review (or a failed email, or a
// letter not yet posted) goes. An email's address must be in the MSSanté
// trust space; the delivery keeps its status (a secretary then approves or
// resends it).
func (k *Desk) EditRecipient(ctx context.Context, deliveryID int64, user string, c RecipientChange) error {
	if a, err := correspondents.ParseMailbox(c.Address); err == nil {
		c.Address = a // else trusted says so
	}
	c.Name = strings.TrimSpace(c.Name)
	return k.userAct(ctx, deliveryID, user, EventEdited, func(tx pgx.Tx, d dispatch.StoredDelivery) (string, error) {
		editable := d.Status == dispatch.StatusReview || d.Status == dispatch.StatusPaperPending ||
			(d.Status == dispatch.StatusFailed && d.Channel == correspondents.ChannelMSSante)
		if !editable || d.SendingAt {
			return "", allowedAction(d, "edit")
		}
		name := cmp.Or(c.Name, d.Name)
		var detail string
		if d.Channel == correspondents.ChannelMSSante {
			if err := k.trusted(ctx, c.Address); err != nil {
				return "", err
			}
			detail = fmt.Sprintf("adresse: %s → %s", cmp.Or(d.Address, "(aucune)"), c.Address)
			if err := dispatch.SetDeliveryRecipient(ctx, tx, d.ID, c.Address, name, d.PostalAddress, ReasonUserEdit,
				"Adresse choisie par "+user+"."); err != nil {
				return "", err
			}
		} else {
			if !c.PostalAddress.Known() {
				return "", &RecipientError{Problem: ProblemNoPostal}
			}
			detail = fmt.Sprintf("adresse postale: %s → %s", d.PostalAddress, c.PostalAddress)
			if err := dispatch.SetDeliveryRecipient(ctx, tx, d.ID, "", name, c.PostalAddress, ReasonUserEdit,
				"Adresse postale saisie par "+user+"."); err != nil {
				return "", err
			}
		}
		return detail, dispatch.InsertEvent(ctx, tx, d.ID, d.Status, d.Status, EventEdited, userActor(user), detail)
	})
}

// AddRecipient adds a recipient the DPI did not list to the report: an
// email when c has an address (in the trust space), else a letter; the
// delivery waits in review for a secretary to approve. It returns the
// delivery's id.
func (k *Desk) AddRecipient(ctx context.Context, reportID int64, user string, rc dispatch.Recipient) (int64, error) {
	rc.Role = RoleAdded
	if rc.Kind == "" {
		rc.Kind = dispatch.KindProfessional
	}
	d := dispatch.NewDelivery{Status: dispatch.StatusReview, Name: rc.Name(), PostalAddress: rc.PostalAddress, Reason: ReasonUserAdded,
		ReasonText: "Destinataire ajouté par " + user + "."}
	if a, err := correspondents.ParseMailbox(rc.Address); err == nil {
		rc.Address = a // else trusted says so
	}
	switch {
	case rc.Address != "":
		if err := k.trusted(ctx, rc.Address); err != nil {
			return 0, err
		}
		d.Channel, d.Address, d.MessageID = correspondents.ChannelMSSante, rc.Address, dispatch.NewMessageID(k.domain)
	case rc.PostalAddress.Known():
		d.Channel = correspondents.ChannelPaper
	default:
		return 0, &RecipientError{Problem: ProblemNoAddress}
	}
	if d.Name == "" {
		return 0, &RecipientError{Problem: ProblemNoName}
	}
	var id int64
	err := pgx.BeginFunc(ctx, k.pool, func(tx pgx.Tx) error {
		position, err := dispatch.NextRecipientPosition(ctx, tx, reportID)
		if err != nil {
			return err
		}
		if d.RecipientID, err = dispatch.InsertRecipient(ctx, tx, reportID, position, rc); err != nil {
			return err
		}
		if id, _, err = dispatch.InsertDelivery(ctx, tx, reportID, d, userActor(user)); err != nil {
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

// userAct runs the action of user that records event on the locked
// delivery, and its audit entry ("delivery_<event>", with the detail change
// returns), in one transaction.
func (k *Desk) userAct(ctx context.Context, deliveryID int64, user string, event dispatch.Event, change func(pgx.Tx, dispatch.StoredDelivery) (string, error)) error {
	return dispatch.Act(ctx, k.pool, deliveryID, func(tx pgx.Tx, d dispatch.StoredDelivery) error {
		detail, err := change(tx, d)
		if err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: user, Action: "delivery_" + string(event), Object: fmt.Sprintf("delivery:%d", d.ID),
			ReportID: d.ReportID, DeliveryID: d.ID, Detail: detail})
	})
}

// allowedAction is the error of an action that does not apply to d's status.
func allowedAction(d dispatch.StoredDelivery, action string) error {
	return fmt.Errorf("%w: %s a %s %s delivery", dispatch.ErrTransition, action, d.Status, d.Channel)
}

// userActor is the person user.
func userActor(user string) dispatch.Actor {
	return dispatch.Actor{Kind: dispatch.ActorUser, Name: user}
}

// trusted returns a *RecipientError unless the resolver would
// send to address as is (a well-formed address of the trust space).
func (k *Desk) trusted(ctx context.Context, address string) error {
	if _, err := correspondents.ParseMailbox(address); err != nil {
		return &RecipientError{Problem: ProblemNotAnAddress, Address: address}
	}
	routes, err := k.resolver.Resolve(ctx, correspondents.Recipient{Address: address, Name: "?"})
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
