package mail

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// Kinds of Notification.
const (
	// KindDSN is a delivery status notification (RFC 3464).
	KindDSN = "dsn"
	// KindMDN is a message disposition notification (RFC 8098).
	KindMDN = "mdn"
	// KindReply is a human answer to an email: In-Reply-To or References, no report.
	KindReply = "reply"
	// KindUnknown is anything else (a newsletter, spam, a report of another kind).
	KindUnknown = "unknown"
)

// MaxNotificationSize is the largest message ParseNotification reads: 20 MiB.
const MaxNotificationSize = 20 << 20

// Bounds on hostile input. Real notifications stay far below them: a DSN is
// three parts deep at most, an MSSanté MDN carries the original message and
// its two attachments.
const (
	maxNotificationDepth      = 10      // MIME nesting
	maxNotificationParts      = 1000    // MIME parts in all
	maxNotificationHeader     = 1 << 20 // bytes of one header block
	maxNotificationFields     = 10000   // fields of one header block
	maxNotificationRecipients = 1000    // per-recipient blocks of a DSN
)

// ErrNotification is wrapped by every error of ParseNotification: the
// message is unreadable or incoherent, and reading it again will not help.
var ErrNotification = errors.New("mail: unreadable notification")

// Notification is a message read from the BAL applicative's mailbox,
// classified, with every key that correlates it to the email it is about.
type Notification struct {
	// Kind is KindDSN, KindMDN, KindReply or KindUnknown.
	Kind string
	// MessageID is the notification's own Message-ID, without angle brackets.
	MessageID string
	// EnvelopeID is a DSN's Original-Envelope-Id: the ENVID given at MAIL FROM.
	EnvelopeID string
	// OriginalMessageID is an MDN's Original-Message-ID, or the Message-ID
	// of the headers or message a report returns (text/rfc822-headers,
	// message/rfc822), without angle brackets.
	OriginalMessageID string
	// InReplyTo and References are the Message-IDs the message answers,
	// without angle brackets.
	InReplyTo, References []string
	// Recipients are a DSN's per-recipient blocks, in order; never empty for a DSN.
	Recipients []RecipientStatus
	// Disposition is an MDN's disposition; never nil for an MDN.
	Disposition *Disposition
	// Subject is the decoded subject, for the dashboard only: MSSanté
	// subjects hold the patient's name and birth date, so never log it.
	Subject string
}

// RecipientStatus is what a DSN reports on one recipient.
type RecipientStatus struct {
	// FinalRecipient is the address the report is about, its address type
	// ("rfc822;", "utf-8;") removed.
	FinalRecipient string
	// OriginalRecipient is the address given in ORCPT, its type removed.
	OriginalRecipient string
	// Action is delivered, failed, delayed, relayed or expanded, in lower case.
	Action string
	// Status is the enhanced status code, e.g. 5.1.1.
	Status string
	// DiagnosticCode is the remote server's reply, its type ("smtp;") removed.
	DiagnosticCode string
	// RemoteMTA is the server that gave the diagnostic, its type ("dns;") removed.
	RemoteMTA string
	// LastAttempt is the Last-Attempt-Date in UTC, zero when absent or unreadable.
	LastAttempt time.Time
}

// Disposition is the Disposition field of an MDN, e.g.
// "automatic-action/MDN-sent-automatically; processed/Error: 902^Patient inconnu".
type Disposition struct {
	// ActionMode is automatic-action or manual-action, in lower case.
	ActionMode string
	// SendingMode is MDN-sent-automatically or MDN-sent-manually.
	SendingMode string
	// Type is displayed, processed, deleted or dispatched (denied or failed
	// from old RFC 2298 agents), in lower case.
	Type string
	// Modifiers are the disposition modifiers in lower case, e.g. ["error"].
	Modifiers []string
	// Error is the error text: of an "Error:" modifier (the MSSanté form) or
	// of an Error field (RFC 3798).
	Error string
	// ErrorCode is the numeric code that starts Error ("902^Patient
	// inconnu"), or the one of an MSSanté error subject ("[KO Intégration
	// système !][902] ..."): 900 to 906 for the MSSanté integration errors.
	ErrorCode string
	// ErrorLabel is the text of the error after its code, up to the next "^".
	ErrorLabel string
	// FinalRecipient is the address the MDN is sent for, its type removed.
	FinalRecipient string
	// OriginalRecipient is the address the email was sent to, its type removed.
	OriginalRecipient string
}

// Failed reports whether the MDN says the message could not be processed:
// an error modifier or text (the MSSanté integration errors 900 to 906), or
// an old RFC 2298 denied or failed disposition.
func (d *Disposition) Failed() bool {
	return d.Error != "" || d.ErrorCode != "" || slices.Contains(d.Modifiers, "error") ||
		d.Type == "failed" || d.Type == "denied"
}

// ParseNotification reads one email (RFC 5322, any MIME structure) and
// classifies it:
//   - a DSN: a message/delivery-status part (RFC 3464), or its fields in a
//     plain text part when a non-compliant server bounces without
//     multipart/report;
//   - an MDN: a message/disposition-notification part (RFC 8098), or its
//     fields;
//   - a reply: In-Reply-To or References and no report;
//   - unknown: anything else.
//
// It is tolerant where the meaning is clear: a missing or wrong report-type,
// media types and field names in any case, folded lines, missing blank lines
// between headers and bodies, address types, RFC 6533 utf-8 addresses,
// 8-bit, base64 and quoted-printable parts, several recipients per report. It
// is strict where it is not: a delivery report without any recipient block,
// a disposition report without Disposition, a message over
// MaxNotificationSize, nested deeper than 10 parts, with more than 1000
// parts, a header block over 1 MiB or 10000 fields, a report of more than
// 1000 recipients are errors wrapping ErrNotification.
func ParseNotification(r io.Reader) (*Notification, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxNotificationSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrNotification, err)
	}
	if len(data) > MaxNotificationSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrNotification, MaxNotificationSize)
	}
	if rest, ok := bytes.CutPrefix(data, []byte("From ")); ok { // an mbox separator line
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			data = rest[i+1:]
		}
	}
	header, body, err := readNotifHeader(data)
	if err != nil {
		return nil, err
	}
	n := &Notification{
		MessageID:  trimMessageID(header.get("Message-Id")),
		InReplyTo:  messageIDList(header.get("In-Reply-To")),
		References: messageIDList(header.get("References")),
		Subject:    decodeNotifWords(header.get("Subject")),
	}
	var s notifScan
	if err := s.walk(header, body, 0, false); err != nil {
		return nil, err
	}
	if err := s.classify(n); err != nil {
		return nil, err
	}
	return n, nil
}

// notifField is one header field, unfolded, its value trimmed.
type notifField struct{ name, value string }

// notifHeader is a block of header fields, in order.
type notifHeader []notifField

// get returns the value of the first field called name, in any case, or "".
func (h notifHeader) get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return ""
}

// readNotifHeader splits an entity into its header and its body. A line
// that is neither a field nor a continuation ends the header, as a blank
// line does: it is the first line of the body (some agents forget the blank
// line). A header block over maxNotificationHeader bytes or
// maxNotificationFields fields is an error.
func readNotifHeader(b []byte) (notifHeader, []byte, error) {
	var h notifHeader
	var value []string // lines of the field being read
	flush := func() {
		switch len(value) {
		case 0:
			return
		case 1:
			h[len(h)-1].value = collapseSpaces(value[0])
		default:
			h[len(h)-1].value = collapseSpaces(strings.Join(value, " "))
		}
		value = value[:0]
	}
	for i := 0; i < len(b); {
		if i > maxNotificationHeader {
			return nil, nil, fmt.Errorf("%w: a header block over %d bytes", ErrNotification, maxNotificationHeader)
		}
		end := bytes.IndexByte(b[i:], '\n')
		next := len(b)
		if end >= 0 {
			end += i
			next = end + 1
		} else {
			end = len(b)
		}
		if end-i > maxNotificationHeader {
			return nil, nil, fmt.Errorf("%w: a header line over %d bytes", ErrNotification, maxNotificationHeader)
		}
		line := bytes.TrimRight(b[i:end], "\r")
		switch {
		case len(bytes.TrimSpace(line)) == 0:
			flush()
			return h, b[next:], nil
		case line[0] == ' ' || line[0] == '\t':
			if len(h) > 0 {
				value = append(value, string(line))
			}
		default:
			name, v, ok := bytes.Cut(line, []byte(":"))
			name = bytes.TrimRight(name, " \t")
			if !ok || !validFieldName(name) {
				flush()
				return h, b[i:], nil
			}
			flush()
			if len(h) >= maxNotificationFields {
				return nil, nil, fmt.Errorf("%w: more than %d fields in a header block", ErrNotification, maxNotificationFields)
			}
			h = append(h, notifField{name: string(name)})
			value = append(value, string(v))
		}
		i = next
	}
	flush()
	return h, nil, nil
}

// validFieldName reports whether name is a header field name (RFC 5322 ftext).
func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// notifScan gathers, while walking the MIME tree, the parts that matter.
type notifScan struct {
	parts int
	// reportType is the report-type of the first multipart/report, in lower
	// case; hasReport says there was one.
	reportType string
	hasReport  bool
	// status and disposition are the bodies (decoded text) of the typed
	// machine-readable parts.
	status, disposition []string
	// returnedID is the Message-ID of the first returned headers or message.
	returnedID string
	// texts are the plain text leaves, in order, those of a report that are
	// not its first (human) part first.
	texts, reportTexts []string
}

// walk visits an entity: multiparts are split, message/rfc822 parts are
// read for their Message-ID only (a returned message is not a report).
func (s *notifScan) walk(h notifHeader, body []byte, depth int, laterReportPart bool) error {
	if depth > maxNotificationDepth {
		return fmt.Errorf("%w: MIME parts nested deeper than %d", ErrNotification, maxNotificationDepth)
	}
	if s.parts++; s.parts > maxNotificationParts {
		return fmt.Errorf("%w: more than %d MIME parts", ErrNotification, maxNotificationParts)
	}
	typ, params := notifMediaType(h.get("Content-Type"))
	major, sub, _ := strings.Cut(typ, "/")
	switch {
	case major == "multipart":
		boundary := params["boundary"]
		if boundary == "" {
			boundary = guessBoundary(body)
		}
		parts := splitMultipart(body, boundary)
		if len(parts) == 0 { // no delimiter: read it as text
			s.addText(decodeNotifText(h, body, params["charset"]), laterReportPart)
			return nil
		}
		isReport := sub == "report"
		if isReport && !s.hasReport {
			s.hasReport, s.reportType = true, strings.ToLower(params["report-type"])
		}
		for i, p := range parts {
			ph, pb, err := readNotifHeader(p)
			if err != nil {
				return err
			}
			if err := s.walk(ph, pb, depth+1, isReport && i > 0); err != nil {
				return err
			}
		}
	case sub == "delivery-status" || sub == "global-delivery-status":
		s.status = append(s.status, reportBody(h, body, params["charset"]))
	case sub == "disposition-notification" || sub == "global-disposition-notification":
		s.disposition = append(s.disposition, reportBody(h, body, params["charset"]))
	case sub == "rfc822-headers" || sub == "global-headers" || typ == "message/rfc822" || typ == "message/global":
		if s.returnedID == "" {
			rh, _, _ := readNotifHeader(decodeTransfer(h, body))
			s.returnedID = trimMessageID(rh.get("Message-Id"))
		}
	case typ == "text/plain" || (laterReportPart && (major == "text" && sub != "html" || typ == "application/octet-stream")):
		s.addText(decodeNotifText(h, body, params["charset"]), laterReportPart)
	}
	return nil
}

// addText keeps a text leaf for the search of report fields in plain text.
func (s *notifScan) addText(text string, laterReportPart bool) {
	if laterReportPart {
		s.reportTexts = append(s.reportTexts, text)
	} else {
		s.texts = append(s.texts, text)
	}
}

// classify sets n's kind and report from what the walk found.
func (s *notifScan) classify(n *Notification) error {
	declared := s.reportType
	switch {
	case len(s.status) > 0 && (len(s.disposition) == 0 || !strings.Contains(declared, "disposition")):
		n.Kind = KindDSN
		for _, body := range s.status {
			if err := readDSNFields(n, body); err != nil {
				return err
			}
		}
		if len(n.Recipients) == 0 {
			return fmt.Errorf("%w: a delivery-status report without any recipient", ErrNotification)
		}
		n.OriginalMessageID = cmp.Or(s.returnedID, n.OriginalMessageID)
		return nil
	case len(s.disposition) > 0:
		n.Kind = KindMDN
		if ok, err := readMDNFields(n, s.disposition[0], false); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: a disposition-notification report without Disposition", ErrNotification)
		}
		n.OriginalMessageID = cmp.Or(n.OriginalMessageID, s.returnedID)
		return nil
	}
	// No typed part: the fields in plain text, from a non-compliant agent;
	// the later parts of a multipart/report first.
	for _, text := range slices.Concat(s.reportTexts, s.texts) {
		if textHasDSN(text) {
			n.Kind = KindDSN
			if err := readDSNFields(n, text); err != nil {
				return err
			}
			n.OriginalMessageID = cmp.Or(s.returnedID, n.OriginalMessageID, inlineMessageID(text))
			return nil
		}
	}
	mdnTexts := slices.Concat(s.reportTexts, s.texts)
	for i, text := range mdnTexts {
		// A later part of a multipart/report declared a disposition report
		// needs no more than a Disposition.
		strict := i >= len(s.reportTexts) || !strings.Contains(declared, "disposition")
		ok, err := readMDNFields(n, text, strict)
		if err != nil {
			return err
		}
		if ok {
			n.Kind = KindMDN
			n.OriginalMessageID = cmp.Or(n.OriginalMessageID, s.returnedID)
			return nil
		}
	}
	switch {
	case strings.Contains(declared, "delivery-status"):
		return fmt.Errorf("%w: a delivery-status report without any recipient", ErrNotification)
	case strings.Contains(declared, "disposition-notification"):
		return fmt.Errorf("%w: a disposition-notification report without Disposition", ErrNotification)
	case len(n.InReplyTo) > 0 || len(n.References) > 0:
		n.Kind = KindReply
	default:
		n.Kind = KindUnknown
	}
	return nil
}

// reportBody returns the decoded text of a machine-readable part; when the
// agent forgot the blank line after the part's header, the fields are in
// the header: they are returned, Content-* fields left out.
func reportBody(h notifHeader, body []byte, cs string) string {
	text := decodeNotifText(h, body, cs)
	if strings.TrimSpace(text) != "" {
		return text
	}
	var b strings.Builder
	for _, f := range h {
		if !strings.HasPrefix(strings.ToLower(f.name), "content-") {
			fmt.Fprintf(&b, "%s: %s\n", f.name, f.value)
		}
	}
	return b.String()
}

// reportFieldNames are the fields of DSN and MDN reports that are read;
// the others are skipped.
var reportFieldNames = []string{
	"Original-Envelope-Id", "X-Original-Message-Id", "Final-Recipient", "Original-Recipient",
	"Action", "Status", "Diagnostic-Code", "Remote-Mta", "Last-Attempt-Date",
	"Disposition", "Original-Message-Id", "Error",
}

// isReportField reports whether name is one of reportFieldNames, in any case.
func isReportField(name string) bool {
	for _, n := range reportFieldNames {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// fieldBlocks reads the blocks of report fields of a text. A blank line
// ends a block; so does a line that is neither a field nor a continuation
// (the prose around the fields in a plain text bounce), which is skipped.
// Fields other than reportFieldNames are skipped; more than
// maxNotificationFields of them is an error.
func fieldBlocks(text string) ([]notifHeader, error) {
	var blocks []notifHeader
	var cur notifHeader
	var value []string
	count, skipping := 0, false
	flushField := func() {
		switch len(value) {
		case 0:
			return
		case 1:
			cur[len(cur)-1].value = collapseSpaces(value[0])
		default:
			cur[len(cur)-1].value = collapseSpaces(strings.Join(value, " "))
		}
		value = value[:0]
	}
	flushBlock := func() {
		flushField()
		if len(cur) > 0 {
			blocks = append(blocks, cur)
			cur = nil
		}
	}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
			flushBlock()
			skipping = false
		case line[0] == ' ' || line[0] == '\t':
			if len(cur) > 0 && !skipping {
				value = append(value, line)
			}
		default:
			name, v, ok := strings.Cut(line, ":")
			name = strings.TrimRight(name, " \t")
			if !ok || !validFieldName([]byte(name)) {
				flushBlock()
				skipping = false
				continue
			}
			flushField()
			if skipping = !isReportField(name); skipping {
				continue
			}
			if count++; count > maxNotificationFields {
				return nil, fmt.Errorf("%w: more than %d report fields", ErrNotification, maxNotificationFields)
			}
			cur = append(cur, notifField{name: name})
			value = append(value, v)
		}
	}
	flushBlock()
	return blocks, nil
}

// readDSNFields reads the per-message and per-recipient fields of a DSN
// report into n. Recipients are separated by blank lines, or by a field
// that repeats when an agent forgets the blank line.
func readDSNFields(n *Notification, text string) error {
	blocks, err := fieldBlocks(text)
	if err != nil {
		return err
	}
	for _, block := range blocks {
		var cur *RecipientStatus
		seen := map[string]bool{}
		flush := func() error {
			if cur != nil && (cur.FinalRecipient != "" || cur.OriginalRecipient != "") {
				if len(n.Recipients) >= maxNotificationRecipients {
					return fmt.Errorf("%w: more than %d recipients", ErrNotification, maxNotificationRecipients)
				}
				n.Recipients = append(n.Recipients, *cur)
			}
			cur, seen = nil, map[string]bool{}
			return nil
		}
		for _, f := range block {
			name := strings.ToLower(f.name)
			switch name {
			case "original-envelope-id":
				if n.EnvelopeID == "" {
					n.EnvelopeID = decodeXtext(f.value)
				}
				continue
			case "x-original-message-id": // Gmail
				if n.OriginalMessageID == "" {
					n.OriginalMessageID = trimMessageID(f.value)
				}
				continue
			case "final-recipient", "original-recipient", "action", "status", "diagnostic-code", "remote-mta", "last-attempt-date":
			default:
				continue
			}
			// A repeated field, or an Original-Recipient after the status of
			// the previous recipient, starts a new recipient.
			if cur != nil && (seen[name] || name == "original-recipient" && (seen["action"] || seen["status"])) {
				if err := flush(); err != nil {
					return err
				}
			}
			if cur == nil {
				cur = &RecipientStatus{}
			}
			seen[name] = true
			switch name {
			case "final-recipient":
				cur.FinalRecipient = dsnAddress(f.value, false)
			case "original-recipient":
				cur.OriginalRecipient = dsnAddress(f.value, true)
			case "action":
				cur.Action = strings.ToLower(firstToken(f.value))
			case "status":
				cur.Status = firstToken(f.value)
			case "diagnostic-code":
				cur.DiagnosticCode = stripType(f.value)
			case "remote-mta":
				cur.RemoteMTA = stripType(f.value)
			case "last-attempt-date":
				cur.LastAttempt = parseNotifDate(f.value)
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

// parseNotifDate parses an RFC 5322 date, in UTC; an unreadable or absurd
// one (a zone beyond ±14 h, a year beyond 9999) is zero.
func parseNotifDate(v string) time.Time {
	t, err := netmail.ParseDate(v)
	if err != nil {
		return time.Time{}
	}
	if _, offset := t.Zone(); offset < -14*3600 || offset > 14*3600 {
		return time.Time{}
	}
	if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}
	}
	return t
}

// textHasDSN reports whether a plain text holds a DSN recipient block: a
// Final-Recipient (or Original-Recipient) with an Action or a Status.
func textHasDSN(text string) bool {
	var probe Notification
	if err := readDSNFields(&probe, text); err != nil {
		return true // too many fields or recipients: let readDSNFields say so
	}
	for _, r := range probe.Recipients {
		if r.Action != "" || r.Status != "" {
			return true
		}
	}
	return false
}

// dispositionTypes are the disposition types of RFC 8098, and the two of
// RFC 2298 still seen.
var dispositionTypes = []string{"displayed", "processed", "deleted", "dispatched", "denied", "failed"}

// readMDNFields reads the fields of an MDN report into n and reports
// whether it had a Disposition. In plain text (inText), the Disposition
// must have a known type and come with an Original-Message-ID or a
// Final-Recipient, so that a sentence is not taken for a report.
func readMDNFields(n *Notification, text string, inText bool) (bool, error) {
	blocks, err := fieldBlocks(text)
	if err != nil {
		return false, err
	}
	var h notifHeader
	for _, b := range blocks {
		h = append(h, b...)
	}
	v := h.get("Disposition")
	if v == "" {
		return false, nil
	}
	d := parseDisposition(v)
	if inText && (!slices.Contains(dispositionTypes, d.Type) ||
		h.get("Original-Message-Id") == "" && h.get("Final-Recipient") == "") {
		return false, nil
	}
	if e := decodeNotifWords(h.get("Error")); e != "" && d.Error == "" {
		d.Error = e
		d.ErrorCode, d.ErrorLabel = splitDispositionError(e)
	}
	if d.Failed() && d.ErrorCode == "" {
		if m := mssanteErrorSubject.FindStringSubmatch(n.Subject); m != nil {
			d.ErrorCode = m[1]
		}
	}
	d.FinalRecipient = dsnAddress(h.get("Final-Recipient"), false)
	d.OriginalRecipient = dsnAddress(h.get("Original-Recipient"), true)
	n.Disposition = &d
	if id := trimMessageID(h.get("Original-Message-Id")); id != "" {
		n.OriginalMessageID = id
	}
	return true, nil
}

// mssanteErrorSubject matches the subject of an MSSanté error MDN:
// "[KO Intégration système !][902] XDM/1.0/DDM+...".
var mssanteErrorSubject = regexp.MustCompile(`(?i)^\s*\[KO[^\]]*\]\s*\[(\d{3})\]`)

// parseDisposition reads "action-mode/sending-mode; type/modifier, ...",
// with the MSSanté error modifier "Error: 902^label" (any case, with or
// without the colon).
func parseDisposition(v string) Disposition {
	var d Disposition
	modes, rest, found := strings.Cut(v, ";")
	if !found {
		rest, modes = modes, ""
	}
	action, sending, _ := strings.Cut(modes, "/")
	d.ActionMode = strings.ToLower(strings.TrimSpace(action))
	d.SendingMode = strings.TrimSpace(sending)
	for _, canonical := range []string{"MDN-sent-automatically", "MDN-sent-manually"} {
		if strings.EqualFold(d.SendingMode, canonical) {
			d.SendingMode = canonical
		}
	}
	rest = strings.TrimSpace(rest)
	end := strings.IndexFunc(rest, func(r rune) bool { return !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') })
	if end < 0 {
		end = len(rest)
	}
	d.Type = strings.ToLower(rest[:end])
	mods := strings.TrimLeft(strings.TrimSpace(rest[end:]), "/ \t")
	for mods != "" {
		token, after, _ := strings.Cut(mods, ",")
		word := strings.TrimSpace(token)
		if len(word) >= 5 && strings.EqualFold(word[:5], "error") {
			d.Modifiers = append(d.Modifiers, "error")
			// The error text runs to the end: labels may hold commas.
			text := strings.TrimSpace(strings.TrimSpace(mods)[5:])
			text = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(text, ":"), "="))
			if text != "" && !strings.HasPrefix(text, ",") {
				d.Error = decodeNotifWords(text)
				d.ErrorCode, d.ErrorLabel = splitDispositionError(d.Error)
				break
			}
			mods = after
			continue
		}
		if word = strings.ToLower(word); word != "" {
			d.Modifiers = append(d.Modifiers, word)
		}
		mods = after
	}
	return d
}

// splitDispositionError splits "902^Patient inconnu^..." (or "902 Patient
// inconnu", "902 - Patient inconnu") into its code and label; an error
// without a leading number is all label.
func splitDispositionError(e string) (code, label string) {
	e = strings.TrimSpace(e)
	digits := 0
	for digits < len(e) && e[digits] >= '0' && e[digits] <= '9' {
		digits++
	}
	if digits > 0 && digits <= 4 && (digits == len(e) || strings.ContainsRune("^ \t-:", rune(e[digits]))) {
		code, e = e[:digits], strings.TrimLeft(e[digits:], "^ \t-:")
	}
	label, _, _ = strings.Cut(e, "^")
	return code, strings.TrimSpace(label)
}

// dsnAddress returns the address of a Final-Recipient or Original-Recipient
// field without its type: "rfc822; a@b" (RFC 3464), "utf-8; é@b" with
// \x{E9} escapes (RFC 6533). The ORCPT (orcpt) is xtext (RFC 3461).
func dsnAddress(v string, orcpt bool) string {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok || strings.ContainsAny(typ, "@<\"") {
		typ, addr = "", v
	}
	addr = strings.TrimSpace(addr)
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "utf-8":
		addr = decodeUTF8AddrXtext(addr)
	case "rfc822", "":
		if orcpt {
			addr = decodeXtext(addr)
		}
	}
	if strings.HasPrefix(addr, "<") {
		if end := strings.IndexByte(addr, '>'); end > 0 {
			addr = addr[1:end]
		}
	}
	return strings.TrimSpace(addr)
}

// stripType removes the type of a typed field: "smtp; 550 ..." -> "550 ...",
// "dns; mx.example" -> "mx.example".
func stripType(v string) string {
	typ, rest, ok := strings.Cut(v, ";")
	if !ok || strings.ContainsAny(strings.TrimSpace(typ), " \t<@") {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(rest)
}

// decodeXtext decodes the xtext of RFC 3461 ("+2B" is "+"), conservatively:
// only the hexchars xtext requires (+, =, controls, non-ASCII), so that a
// plain address with a "+" is left as it is.
func decodeXtext(s string) string {
	if !strings.Contains(s, "+") {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]) {
			c, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if c == '+' || c == '=' || c < 33 || c > 126 {
				b.WriteByte(byte(c))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return toValidUTF8(strings.TrimSpace(b.String()))
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// decodeUTF8AddrXtext decodes the \x{HEX} escapes of an RFC 6533 utf-8 address.
func decodeUTF8AddrXtext(s string) string {
	if !strings.Contains(s, `\x{`) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, `\x{`)
		if i < 0 {
			break
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			break
		}
		r, err := strconv.ParseUint(s[i+3:i+end], 16, 32)
		b.WriteString(s[:i])
		if err != nil || end-3 > 6 || !utf8.ValidRune(rune(r)) {
			b.WriteString(s[i : i+end+1])
		} else {
			b.WriteRune(rune(r))
		}
		s = s[i+end+1:]
	}
	b.WriteString(s)
	return b.String()
}

// notifMediaType parses a Content-Type, leniently when mime.ParseMediaType
// refuses it (duplicate or malformed parameters). The type is lower case,
// text/plain when absent.
func notifMediaType(v string) (string, map[string]string) {
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	if t, params, err := mime.ParseMediaType(v); err == nil {
		return t, params
	}
	parts := strings.Split(v, ";")
	t := strings.ToLower(strings.TrimSpace(parts[0]))
	params := map[string]string{}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			continue
		}
		if _, dup := params[k]; !dup {
			params[k] = strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return t, params
}

// guessBoundary returns the boundary of a multipart without one: the first
// line that starts with "--".
func guessBoundary(body []byte) string {
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		line = bytes.TrimRight(line, "\r \t")
		if b, ok := bytes.CutPrefix(line, []byte("--")); ok && len(b) > 0 && len(b) <= 70 {
			return string(bytes.TrimSuffix(b, []byte("--")))
		}
	}
	return ""
}

// splitMultipart returns the parts of a multipart body. A delimiter is a
// line that starts with "--boundary" followed by "--" (the last), spaces,
// or a character that cannot be in a boundary (a stray dash of another
// alphabet); a body cut before its last delimiter keeps its last part.
func splitMultipart(body []byte, boundary string) [][]byte {
	if boundary == "" {
		return nil
	}
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1 // start of the current part
	for i := 0; i < len(body); {
		j := bytes.Index(body[i:], delim)
		if j < 0 {
			break
		}
		at := i + j
		i = at + len(delim)
		if at > 0 && body[at-1] != '\n' {
			continue
		}
		rest := body[i:]
		closing := bytes.HasPrefix(rest, []byte("--")) && (len(rest) == 2 || !isBoundaryChar(rest[2]))
		if !closing && len(rest) > 0 && isBoundaryChar(rest[0]) {
			continue
		}
		if start >= 0 {
			end := at
			if end > start && body[end-1] == '\n' {
				end--
			}
			if end > start && body[end-1] == '\r' {
				end--
			}
			parts = append(parts, body[start:end])
		}
		if closing {
			return parts
		}
		eol := bytes.IndexByte(rest, '\n')
		if eol < 0 {
			return parts
		}
		start = i + eol + 1
		i = start
	}
	if start >= 0 && start < len(body) {
		parts = append(parts, body[start:])
	}
	return parts
}

// isBoundaryChar reports whether c may be in a boundary (RFC 2046 bchars).
func isBoundaryChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("'()+_,-./:=?", c) >= 0
}

// decodeTransfer undoes the Content-Transfer-Encoding of a body; what a
// broken encoding lets through is kept.
func decodeTransfer(h notifHeader, body []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(h.get("Content-Transfer-Encoding"))) {
	case "base64":
		clean := make([]byte, 0, len(body))
		for _, c := range body {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
				clean = append(clean, c)
			}
		}
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, _ := base64.RawStdEncoding.Decode(out, clean)
		return out[:n]
	case "quoted-printable":
		out, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		return out
	}
	return body
}

// decodeNotifText decodes a text body to UTF-8: its transfer encoding, then
// its charset; 8-bit text that is not UTF-8 is read as Windows-1252.
func decodeNotifText(h notifHeader, body []byte, cs string) string {
	b := decodeTransfer(h, body)
	switch strings.ToLower(strings.TrimSpace(cs)) {
	case "", "us-ascii", "utf-8", "utf8":
	default:
		if r, err := charset.Reader(cs, bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(r); err == nil {
				return string(out)
			}
		}
	}
	return toValidUTF8(string(b))
}

// toValidUTF8 returns s, read as Windows-1252 when it is not valid UTF-8.
func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	if out, err := charmap.Windows1252.NewDecoder().String(s); err == nil {
		return out
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// notifWordDecoder decodes RFC 2047 encoded words in any charset.
var notifWordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeNotifWords decodes the encoded words of a header value.
func decodeNotifWords(v string) string {
	if out, err := notifWordDecoder.DecodeHeader(v); err == nil {
		v = out
	}
	return collapseSpaces(toValidUTF8(v))
}

// collapseSpaces trims s and turns its runs of white space into one space.
func collapseSpaces(s string) string {
	s = strings.TrimSpace(s)
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		c := s[i]
		clean = c >= 0x21 && c < 0x7f || c == ' ' && s[i+1] != ' '
	}
	if clean {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// firstToken returns the first word of s ("failed (bad address)" -> "failed").
func firstToken(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return strings.TrimRight(f[0], ";,")
	}
	return ""
}

// trimMessageID returns the first <id> of v without brackets, or v trimmed.
func trimMessageID(v string) string {
	if ids := messageIDList(v); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// messageIDList returns the Message-IDs of an In-Reply-To or References
// field, without brackets; without brackets, its words.
func messageIDList(v string) []string {
	var ids []string
	for rest := v; ; {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+j]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[i+j+1:]
	}
	if len(ids) > 0 {
		return ids
	}
	for _, f := range strings.Fields(strings.ReplaceAll(v, ",", " ")) {
		if f = strings.Trim(f, "<>"); f != "" {
			ids = append(ids, f)
		}
	}
	return ids
}

// inlineMessageID finds the Message-ID of the message a plain text bounce
// quotes: a "Message-ID:" line of its body.
func inlineMessageID(text string) string {
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if len(line) > 11 && strings.EqualFold(line[:11], "message-id:") {
			if id := trimMessageID(line[11:]); id != "" {
				return id
			}
		}
	}
	return ""
}
