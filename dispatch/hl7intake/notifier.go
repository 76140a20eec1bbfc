package hl7intake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
)

// This file holds the business acknowledgements ("accusés métier") sent
// back to the DPI over MLLP when it asked for them: ZAM^Z02 when a DSN says
// an email reached the recipient's mailbox (flag ACK_RECEPTION=Y), ZAM^Z03
// when an MDN says it was read or integrated (ACK_LECTURE_MSS=Y), each with
// status N and an ERR segment when the DSN or MDN reports a failure. The
// domain decides when (dispatch.BusinessAckArgs); the Notifier says it in HL7.

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	// Addr is the DPI's MLLP listener (host:port) for business
	// acknowledgements. Required.
	Addr string
	// SendingApplication and SendingFacility are MSH-3 and MSH-4 of the
	// acknowledgements: this service as the DPI knows it. Each defaults to
	// what the DPI's message named as MSH-5 and MSH-6 (the volet's
	// acknowledgements swap them back), and SendingApplication to
	// "MSSDISPATCH" when that message named none.
	SendingApplication, SendingFacility string
	// ProcessingID is MSH-11: P (production, the default), T or D.
	ProcessingID string
	// Timeout bounds one exchange with the DPI (connection, message and its
	// ACK). Defaults to 30 seconds.
	Timeout time.Duration
}

// Notifier sends the DPI its business acknowledgements as ZAM messages over
// MLLP: the dispatch.DPINotifier of the service.
type Notifier struct {
	cfg    NotifierConfig
	client *mllp.Client
}

// NewNotifier validates cfg and returns a Notifier.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	switch cfg.ProcessingID {
	case "":
		cfg.ProcessingID = "P"
	case "P", "T", "D":
	default:
		return nil, fmt.Errorf("hl7intake: NotifierConfig.ProcessingID %q: want P, T or D", cfg.ProcessingID)
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("hl7intake: NotifierConfig.Timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = mllp.DefaultTimeout
	}
	client, err := mllp.NewClient(mllp.Config{Addr: cfg.Addr, Timeout: cfg.Timeout,
		DialTimeout: min(cfg.Timeout, mllp.DefaultDialTimeout)})
	if err != nil {
		return nil, fmt.Errorf("hl7intake: DPI acknowledgement address: %w", err)
	}
	return &Notifier{cfg: cfg, client: client}, nil
}

// NotifyDPI sends the ZAM of n and reads the DPI's ACK: AA (CA) is
// accepted; AE (CE), or an AR (CR) saying the DPI does not take this
// message, is refused for good; a network failure, no answer in time, an
// unreadable answer or another AR (the volet's "rejeté pour une raison
// circonstancielle, il peut être réémis plus tard") is an error to retry.
// The ZAM has the same MSH-10 at every attempt, so that a DPI that got it
// twice (an ACK lost on the way) recognises it. A ZAM that cannot be built
// is an error wrapping dispatch.ErrUnsendable.
func (n *Notifier) NotifyDPI(ctx context.Context, notice dispatch.DPINotice) (dispatch.DPIAnswer, error) {
	controlID := zamControlID(notice)
	msg, err := hl7.BuildZAM(n.zam(notice, controlID, time.Now()))
	if err != nil {
		return dispatch.DPIAnswer{}, fmt.Errorf("%w: %w", dispatch.ErrUnsendable, err)
	}
	resp, err := n.client.Send(ctx, msg.Encode())
	if err != nil {
		return dispatch.DPIAnswer{}, fmt.Errorf("send ZAM^%s %s (maybe delivered: %t): %w", notice.Event, controlID,
			mllp.MaybeDelivered(err), err)
	}
	answer, err := readDPIAck(resp, controlID)
	if err != nil {
		return dispatch.DPIAnswer{}, fmt.Errorf("ZAM^%s %s: %w", notice.Event, controlID, err)
	}
	detail := fmt.Sprintf("%s: %s", controlID, answer)
	switch {
	case answer.accepted():
		return dispatch.DPIAnswer{Detail: detail}, nil
	case answer.permanent():
		return dispatch.DPIAnswer{Refused: true, Detail: detail}, nil
	default:
		return dispatch.DPIAnswer{}, fmt.Errorf("ZAM^%s %s rejected for now by the DPI (%s %s)", notice.Event, controlID,
			answer.Code, answer.ErrCode)
	}
}

// Close closes the connection kept open to the DPI.
func (n *Notifier) Close() error { return n.client.Close() }

// zam is the message of notice n.
func (n *Notifier) zam(notice dispatch.DPINotice, controlID string, now time.Time) hl7.ZAM {
	z := hl7.ZAM{
		Event:                notice.Event,
		ControlID:            controlID,
		Time:                 now,
		ProcessingID:         n.cfg.ProcessingID,
		SendingApplication:   hl7.HD{NamespaceID: cmp.Or(n.cfg.SendingApplication, notice.ReceivingApplication, "MSSDISPATCH")},
		SendingFacility:      hl7.HD{NamespaceID: cmp.Or(n.cfg.SendingFacility, notice.ReceivingFacility)},
		ReceivingApplication: hl7.HD{NamespaceID: notice.SendingApplication},
		ReceivingFacility:    hl7.HD{NamespaceID: notice.SendingFacility},
		EventTime:            notice.At,
		OriginalControlID:    notice.ControlID,
		RecipientAddress:     notice.Address,
		RecipientID:          notice.RecipientID,
	}
	if notice.Failed {
		z.Error = failure(notice.Event, notice.Detail)
	}
	return z
}

// zamControlID is the MSH-10 of the ZAM of n: the same at every attempt, unique
// since each acknowledgement is sent once.
func zamControlID(n dispatch.DPINotice) string {
	return fmt.Sprintf("ZAM-%s-%d", n.Event, n.DeliveryID)
}

var (
	// smtpCodeRe finds an SMTP failure reply code in a DSN's diagnostic ("smtp; 550 5.1.1 …").
	smtpCodeRe = regexp.MustCompile(`(?:^|[\s;:(])([45][0-9][0-9])(?:[\s\-)]|$)`)
	// enhancedStatusRe finds an enhanced status code of failure (RFC 3463,
	// "5.1.1") in a DSN's detail: the first one is its Status field.
	enhancedStatusRe = regexp.MustCompile(`(?:^|[\s;:(])([45]\.[0-9]{1,3}\.[0-9]{1,3})(?:$|[^0-9.]|\.(?:$|[^0-9]))`)
	// mssErrorRe finds an MSSanté integration error code and its label in an MDN ("… 902^label", "… 902 label").
	mssErrorRe = regexp.MustCompile(`(?:^|[\s:/])(9[0-9][0-9])(?:[\s^]+(.*))?$`)
)

// dsnStatusCodes maps the enhanced status code (RFC 3463) of a failed DSN
// that gives no SMTP reply code to the closest code of the volet's
// SMTPERRORCODE table. The first row that matches wins: a row "x.y.z" matches
// that status, a row "x.y." every status of that class and subject, a row
// "x." every status of that class.
var dsnStatusCodes = []struct{ status, code string }{
	{"4.4.7", "441"}, // delivery time expired: "le serveur du destinataire ne répond pas"
	{"5.4.7", "441"},
	{"4.4.1", "441"}, // no answer from host
	{"5.4.1", "441"},
	{"4.4.2", "442"}, // bad connection: "la connexion a été interrompue"
	{"5.4.2", "442"},
	{"4.2.2", "422"}, // mailbox full (for now): "a dépassé sa limite de stockage"
	{"5.2.2", "552"}, // mailbox full: "allocation de stockage dépassée"
	{"5.3.4", "523"}, // message too big for system: "dépasse les limites du serveur destinataire"
	{"5.1.2", "512"}, // bad destination system address: "erreur DNS, serveur introuvable"
	{"4.4.4", "512"}, // unable to route (DNS)
	{"5.4.4", "512"},
	{"5.7.", "541"}, // security or policy: "l'adresse du destinataire a rejeté votre message"
	{"5.1.", "550"}, // other addressing status: "boîte aux lettres non disponible"
	{"5.", "554"},   // other permanent failure: "l'envoi a échoué"
	{"4.", "554"},   // a transient status, but the DSN says failed: the MTA gave up
}

// smtpCodeForStatus returns the SMTPERRORCODE of an enhanced status code by
// dsnStatusCodes, "" when no row matches.
func smtpCodeForStatus(status string) string {
	for _, row := range dsnStatusCodes {
		if status == row.status || (strings.HasSuffix(row.status, ".") && strings.HasPrefix(status, row.status)) {
			return row.code
		}
	}
	return ""
}

// failure is the ERR of a ZAM of event (Z02, Z03) saying the failure that
// the DSN or MDN detail reported. An MDN (Z03) fails the reading with its
// MSSanté error code. A DSN (Z02) fails the delivery with its SMTP reply
// code, or when it gives none, the code dsnStatusCodes derives from its
// enhanced status code, else 554 (the send failed); the detail goes with
// the code as its explanation unless the code is the DSN's own and the
// volet's table labels it.
func failure(event, detail string) *hl7.ZAMError {
	detail = strings.TrimSpace(detail)
	if event == hl7.ZAMRead {
		if m := mssErrorRe.FindStringSubmatch(detail); m != nil {
			return &hl7.ZAMError{Code: m[1], Text: strings.TrimSpace(m[2])}
		}
		return &hl7.ZAMError{Text: detail}
	}
	if m := smtpCodeRe.FindStringSubmatch(detail); m != nil {
		e := &hl7.ZAMError{Code: m[1]}
		if hl7.ZAMErrorText(hl7.ZAMDelivery, e.Code) == "" {
			e.Text = detail
		}
		return e
	}
	e := &hl7.ZAMError{Text: detail}
	if m := enhancedStatusRe.FindStringSubmatch(detail); m != nil {
		e.Code = smtpCodeForStatus(m[1])
	}
	e.Code = cmp.Or(e.Code, hl7.ZAMDefaultDeliveryError)
	return e
}

// dpiAck is what the DPI answered to a ZAM.
type dpiAck struct {
	Code    string // MSA-1
	ErrCode string // ERR-3.1 (HL7 table 0357), when given
	Text    string // MSA-3 or ERR-8, shortened
}

func (a dpiAck) String() string {
	parts := slices.DeleteFunc([]string{a.Code, a.ErrCode, strings.TrimSpace(a.Text)}, func(s string) bool { return s == "" })
	return strings.Join(parts, " ")
}

// accepted reports an AA (or an enhanced-mode CA).
func (a dpiAck) accepted() bool { return a.Code == hl7.AckAccept || a.Code == "CA" }

// permanent reports a refusal the DPI would repeat: AE (CE), or AR (CR)
// saying the message type, event, processing id or version is not supported.
func (a dpiAck) permanent() bool {
	switch a.Code {
	case hl7.AckError, "CE":
		return true
	case hl7.AckReject, "CR":
		switch a.ErrCode {
		case "200", "201", "202", "203":
			return true
		}
	}
	return false
}

// readDPIAck reads the DPI's ACK to the ZAM controlID.
func readDPIAck(resp []byte, controlID string) (dpiAck, error) {
	m, err := hl7.Parse(resp, hl7.ParseOptions{})
	if err != nil {
		return dpiAck{}, fmt.Errorf("the DPI's answer is not HL7: %w", err)
	}
	msa := m.Segment("MSA")
	if msa == nil {
		return dpiAck{}, errors.New("the DPI's answer has no MSA segment")
	}
	if got := msa.Get(2); got != controlID {
		return dpiAck{}, fmt.Errorf("the DPI's answer acknowledges %q, not %q", got, controlID)
	}
	a := dpiAck{Code: strings.ToUpper(strings.TrimSpace(msa.Get(1))), Text: msa.Get(3)}
	if e := m.Segment("ERR"); e != nil {
		a.ErrCode = e.Component(3, 1)
		a.Text = cmp.Or(a.Text, e.Get(8))
	}
	switch a.Code {
	case hl7.AckAccept, hl7.AckError, hl7.AckReject, "CA", "CE", "CR":
	default:
		return dpiAck{}, fmt.Errorf("the DPI's answer has MSA-1 %q", a.Code)
	}
	if r := []rune(a.Text); len(r) > 200 {
		a.Text = string(r[:200]) + "…"
	}
	return a, nil
}
