package mail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode the charsets real notifications use
)

// Kinds of Notification.
const (
	KindDSN     = "dsn"     // a delivery status notification (RFC 3464)
	KindMDN     = "mdn"     // a message disposition notification (RFC 8098)
	KindReply   = "reply"   // a human answer to an email
	KindUnknown = "unknown" // anything else
)

// MaxNotificationSize is the largest message ParseNotification reads.
const MaxNotificationSize = 20 << 20

// maxPartDepth bounds the MIME nesting ParseNotification walks.
const maxPartDepth = 8

// ErrNotification is wrapped by the errors of ParseNotification.
var ErrNotification = errors.New("mail: unreadable notification")

// Notification is a message read from the BAL applicative's mailbox,
// classified, with what correlates it to the email it is about.
type Notification struct {
	Kind string
	// MessageID is the notification's own Message-ID, without brackets.
	MessageID string
	// EnvelopeID is a DSN's Original-Envelope-Id (the ENVID of the email).
	EnvelopeID string
	// OriginalMessageID is an MDN's Original-Message-ID, or the Message-ID of
	// the headers a DSN returns, without brackets.
	OriginalMessageID string
	// InReplyTo and References are the Message-IDs the message answers.
	InReplyTo, References []string
	// Recipients are a DSN's per-recipient reports.
	Recipients []RecipientStatus
	// Disposition is an MDN's.
	Disposition *Disposition
	// Subject may hold patient names: never log it.
	Subject string
}

// RecipientStatus is the report of a DSN on one recipient.
type RecipientStatus struct {
	// FinalRecipient and OriginalRecipient are addresses, their type
	// ("rfc822;") removed.
	FinalRecipient, OriginalRecipient string
	// Action is delivered, failed, delayed, relayed or expanded, lower case.
	Action string
	// Status is the enhanced status code, e.g. 5.1.1.
	Status         string
	DiagnosticCode string
	RemoteMTA      string
	LastAttempt    time.Time
}

// Disposition is the disposition field of an MDN, e.g.
// "automatic-action/MDN-sent-automatically; processed/Error: 902^Patient inconnu".
// It reports a failure when Failed says so.
type Disposition struct {
	ActionMode, SendingMode string
	// Type is displayed, processed, deleted, dispatched, denied or failed, lower case.
	Type      string
	Modifiers []string
	// Error is the error text, from a modifier or an Error field.
	Error string
	// ErrorCode and ErrorLabel split an MSSanté integration error "902^label"
	// (codes 900 to 906).
	ErrorCode, ErrorLabel string
	FinalRecipient        string
}

// ParseNotification reads one email and classifies it: a DSN (a
// message/delivery-status part, or its fields in a plain text part from a
// non-compliant server), an MDN (message/disposition-notification, or its
// fields), a human reply (In-Reply-To or References without a report), or
// unknown. It is tolerant of what real servers send (a missing or wrong
// report-type, upper-case media types and field names, folded lines,
// address types) and strict where the meaning would be a guess: a DSN part
// without any recipient, an MDN part without a Disposition, a message over
// MaxNotificationSize or nested deeper than 8 parts are errors.
func ParseNotification(r io.Reader) (*Notification, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxNotificationSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotification, err)
	}
	if len(data) > MaxNotificationSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrNotification, MaxNotificationSize)
	}
	e, err := message.Read(bytes.NewReader(data))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("%w: %w", ErrNotification, err)
	}
	n := &Notification{
		MessageID:  trimID(e.Header.Get("Message-Id")),
		InReplyTo:  messageIDs(e.Header.Get("In-Reply-To")),
		References: messageIDs(e.Header.Get("References")),
	}
	if s, err := e.Header.Text("Subject"); err == nil {
		n.Subject = s
	} else {
		n.Subject = e.Header.Get("Subject")
	}
	if err := n.walk(e, 0); err != nil {
		return nil, err
	}
	switch {
	case n.Disposition != nil:
		n.Kind = KindMDN
	case len(n.Recipients) > 0:
		n.Kind = KindDSN
	case len(n.InReplyTo) > 0 || len(n.References) > 0:
		n.Kind = KindReply
	default:
		n.Kind = KindUnknown
	}
	return n, nil
}

// walk reads the parts of e that carry report fields.
func (n *Notification) walk(e *message.Entity, depth int) error {
	if depth > maxPartDepth {
		return fmt.Errorf("%w: MIME parts nested deeper than %d", ErrNotification, maxPartDepth)
	}
	mediaType, _, _ := e.Header.ContentType()
	if mediaType == "" {
		mediaType, _, _ = mime.ParseMediaType(e.Header.Get("Content-Type"))
	}
	mediaType = strings.ToLower(mediaType)
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				if message.IsUnknownCharset(err) || message.IsUnknownEncoding(err) {
					continue
				}
				return fmt.Errorf("%w: %w", ErrNotification, err)
			}
			if err := n.walk(p, depth+1); err != nil {
				return err
			}
		}
	}
	body, err := io.ReadAll(io.LimitReader(e.Body, MaxNotificationSize))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotification, err)
	}
	switch mediaType {
	case "message/delivery-status", "message/global-delivery-status":
		return n.readDSN(body, true)
	case "message/disposition-notification", "message/global-disposition-notification":
		return n.readMDN(body, true)
	case "text/rfc822-headers", "message/rfc822", "message/global-headers":
		if n.OriginalMessageID == "" {
			if h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(body))).ReadMIMEHeader(); err == nil || len(h) > 0 {
				n.OriginalMessageID = trimID(h.Get("Message-Id"))
			}
		}
	case "text/plain", "":
		// Non-compliant servers put the report's fields in plain text.
		switch {
		case n.Disposition == nil && containsField(body, "Disposition") && containsField(body, "Original-Message-Id"):
			return n.readMDN(body, false)
		case len(n.Recipients) == 0 && containsField(body, "Final-Recipient") && containsField(body, "Action"):
			return n.readDSN(body, false)
		}
	}
	return nil
}

// readDSN reads the per-message and per-recipient fields of a DSN report.
func (n *Notification) readDSN(body []byte, strict bool) error {
	for _, h := range fieldBlocks(body) {
		if v := h.Get("Original-Envelope-Id"); v != "" {
			n.EnvelopeID = strings.TrimSpace(v)
		}
		final, action := h.Get("Final-Recipient"), h.Get("Action")
		if final == "" && action == "" {
			continue
		}
		rs := RecipientStatus{
			FinalRecipient:    stripAddressType(final),
			OriginalRecipient: stripAddressType(h.Get("Original-Recipient")),
			Action:            strings.ToLower(strings.TrimSpace(firstWord(action))),
			Status:            strings.TrimSpace(firstWord(h.Get("Status"))),
			DiagnosticCode:    strings.TrimSpace(h.Get("Diagnostic-Code")),
			RemoteMTA:         stripAddressType(h.Get("Remote-Mta")),
		}
		if t, err := netmail.ParseDate(strings.TrimSpace(h.Get("Last-Attempt-Date"))); err == nil {
			rs.LastAttempt = t
		}
		n.Recipients = append(n.Recipients, rs)
	}
	if len(n.Recipients) == 0 && strict {
		return fmt.Errorf("%w: a delivery-status report without any recipient", ErrNotification)
	}
	return nil
}

// readMDN reads the fields of an MDN report.
func (n *Notification) readMDN(body []byte, strict bool) error {
	blocks := fieldBlocks(body)
	var h textproto.MIMEHeader
	for _, b := range blocks {
		if b.Get("Disposition") != "" {
			h = b
			break
		}
	}
	if h == nil {
		if strict {
			return fmt.Errorf("%w: a disposition-notification report without Disposition", ErrNotification)
		}
		return nil
	}
	d := parseDisposition(h.Get("Disposition"))
	if e := strings.TrimSpace(h.Get("Error")); e != "" && d.Error == "" {
		d.Error = e
		d.ErrorCode, d.ErrorLabel = splitMSSanteError(e)
	}
	d.FinalRecipient = stripAddressType(h.Get("Final-Recipient"))
	n.Disposition = &d
	if id := trimID(h.Get("Original-Message-Id")); id != "" {
		n.OriginalMessageID = id
	}
	return nil
}

// Failed reports whether the MDN says the message could not be processed:
// an error modifier or text (the MSSanté integration errors 900 to 906).
func (d *Disposition) Failed() bool {
	return d.Error != "" || d.ErrorCode != "" || slices.Contains(d.Modifiers, "error") ||
		d.Type == "failed" || d.Type == "denied"
}

// parseDisposition reads "action-mode/sending-mode; type/modifier,…".
func parseDisposition(v string) Disposition {
	var d Disposition
	modes, rest, found := strings.Cut(v, ";")
	if !found {
		rest, modes = modes, ""
	}
	d.ActionMode, d.SendingMode, _ = strings.Cut(strings.TrimSpace(modes), "/")
	d.ActionMode, d.SendingMode = strings.TrimSpace(d.ActionMode), strings.TrimSpace(d.SendingMode)
	typ, mods, _ := strings.Cut(strings.TrimSpace(rest), "/")
	d.Type = strings.ToLower(strings.TrimSpace(typ))
	if mods = strings.TrimSpace(mods); mods != "" {
		// "Error: 902^Patient inconnu" (MSSanté) or "error", "expired"… (RFC 3798).
		if name, text, ok := strings.Cut(mods, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "error") {
			d.Modifiers = []string{"error"}
			d.Error = strings.TrimSpace(text)
			d.ErrorCode, d.ErrorLabel = splitMSSanteError(d.Error)
		} else {
			for _, m := range strings.Split(mods, ",") {
				if m = strings.ToLower(strings.TrimSpace(m)); m != "" {
					d.Modifiers = append(d.Modifiers, m)
				}
			}
		}
	}
	return d
}

// splitMSSanteError splits "902^Patient inconnu" into its code and label;
// text without a three-digit code is all label.
func splitMSSanteError(e string) (code, label string) {
	c, l, _ := strings.Cut(e, "^")
	c = strings.TrimSpace(c)
	if len(c) == 3 && strings.Trim(c, "0123456789") == "" {
		return c, strings.TrimSpace(l)
	}
	if f := strings.Fields(e); len(f) > 0 && len(f[0]) == 3 && strings.Trim(f[0], "0123456789") == "" {
		return f[0], strings.TrimSpace(strings.TrimPrefix(e, f[0]))
	}
	return "", strings.TrimSpace(e)
}

// fieldBlocks reads the blocks of header fields of a report body, separated
// by blank lines; field names are case-insensitive.
func fieldBlocks(body []byte) []textproto.MIMEHeader {
	body = bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
	var out []textproto.MIMEHeader
	for _, block := range bytes.Split(body, []byte("\n\n")) {
		block = bytes.TrimLeft(block, "\n")
		if len(bytes.TrimSpace(block)) == 0 {
			continue
		}
		h, _ := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(block), strings.NewReader("\n\n")))).ReadMIMEHeader()
		if len(h) > 0 {
			out = append(out, h)
		}
	}
	return out
}

// containsField reports whether body has a line starting with "name:", in any case.
func containsField(body []byte, name string) bool {
	prefix := strings.ToLower(name) + ":"
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), prefix) {
			return true
		}
	}
	return false
}

// stripAddressType removes the address type of a DSN address ("rfc822;").
func stripAddressType(v string) string {
	if _, addr, ok := strings.Cut(v, ";"); ok {
		v = addr
	}
	return strings.Trim(strings.TrimSpace(v), "<>")
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// trimID removes the brackets and spaces around a Message-ID.
func trimID(s string) string { return strings.Trim(strings.TrimSpace(s), "<>") }

// messageIDs returns the Message-IDs of an In-Reply-To or References field.
func messageIDs(v string) []string {
	var out []string
	for _, f := range strings.Fields(strings.ReplaceAll(v, ",", " ")) {
		if id := trimID(f); id != "" {
			out = append(out, id)
		}
	}
	return out
}
