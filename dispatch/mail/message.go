package mail

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Limits the MSSanté operators set on a message.
const (
	// MaxRecipients is the most recipients one message may have.
	MaxRecipients = 40
	// MaxAttachmentBytes is the most attachment bytes (decoded, in total) one
	// message may carry: 10 MB.
	MaxAttachmentBytes = 10 << 20
)

// ErrTooLarge is returned (in a *PermanentError) for a message over the
// MSSanté limits: retrying will not make it smaller.
var ErrTooLarge = errors.New("mail: message over the MSSanté limits")

// Message is an email to compose.
type Message struct {
	From      string
	To        []string
	ReplyTo   string
	Subject   string
	MessageID string // without angle brackets
	Date      time.Time
	// Headers are extra header fields (X-MSS-NIL, X-MSS-CODECDA, X-MSS-INS,
	// X-MSS-MES, Disposition-Notification-To...), written in this order after
	// From, To, Reply-To, Subject, Message-ID and Date. Values must be ASCII;
	// an empty value omits the field.
	Headers     []Field
	Body        string // plain text
	Attachments []Attachment
}

// Field is one header field.
type Field struct {
	Name, Value string
}

// AttachmentBytes is the total size of m's attachments, before encoding.
func (m Message) AttachmentBytes() int {
	n := 0
	for _, a := range m.Attachments {
		n += len(a.Data)
	}
	return n
}

// CheckLimits returns a *PermanentError wrapping ErrTooLarge when m has more
// than MaxRecipients recipients or more than MaxAttachmentBytes of attachments.
func (m Message) CheckLimits() error {
	switch n := m.AttachmentBytes(); {
	case len(m.To) > MaxRecipients:
		return &PermanentError{Err: fmt.Errorf("%w: %d recipients, at most %d allowed / %d destinataires, %d au plus",
			ErrTooLarge, len(m.To), MaxRecipients, len(m.To), MaxRecipients)}
	case n > MaxAttachmentBytes:
		mb := float64(n) / (1 << 20)
		return &PermanentError{Err: fmt.Errorf("%w: attachments of %.1f MB, over the MSSanté limit of 10 MB / pièces jointes de %.1f Mo, au-delà de la limite MSSanté de 10 Mo",
			ErrTooLarge, mb, mb)}
	}
	return nil
}

// Attachment is a file attached to a Message.
type Attachment struct {
	Filename    string
	ContentType string
	Data        []byte
}

// Bytes renders m as an RFC 5322 message with CRLF line ends. It refuses a
// message over the MSSanté limits (see CheckLimits).
func (m Message) Bytes() ([]byte, error) {
	if m.From == "" || len(m.To) == 0 || m.MessageID == "" {
		return nil, errors.New("mail: a message needs From, To and a Message-ID")
	}
	if err := m.CheckLimits(); err != nil {
		return nil, err
	}
	for _, f := range m.Headers {
		if !validField(f) {
			return nil, fmt.Errorf("mail: header field %q: want a token name and a printable ASCII value", f.Name)
		}
	}
	// go-message inserts each field at the top: add them from the last to the
	// first so that they come out as From, To, Reply-To, Subject, Message-ID,
	// Date, then m.Headers in order.
	var h gomail.Header
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if f := m.Headers[i]; f.Value != "" {
			// Raw keeps the name's case (X-MSS-NIL, not X-Mss-Nil).
			h.AddRaw([]byte(f.Name + ": " + f.Value + "\r\n"))
		}
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)
	h.SetMessageID(m.MessageID)
	h.SetSubject(m.Subject)
	if m.ReplyTo != "" {
		h.SetAddressList("Reply-To", []*gomail.Address{{Address: m.ReplyTo}})
	}
	to := make([]*gomail.Address, len(m.To))
	for i, a := range m.To {
		to[i] = &gomail.Address{Address: a}
	}
	h.SetAddressList("To", to)
	h.SetAddressList("From", []*gomail.Address{{Address: m.From}})

	// The parts are written with go-message's multipart writer, not its
	// mail writer, so that each attachment's base64 is written at once
	// (base64Lines) rather than through go-message's line wrapper, which
	// cuts it a byte at a time: the same bytes in less than half the time
	// (BenchmarkMessageBytes).
	var buf bytes.Buffer
	size := 4<<10 + 3*len(m.Body)
	for _, a := range m.Attachments {
		size += 1<<10 + base64LinesLen(len(a.Data))
	}
	buf.Grow(size)
	parts := textproto.NewMultipartWriter(&buf)
	h.Set("MIME-Version", "1.0")
	h.SetContentType("multipart/mixed", map[string]string{"boundary": parts.Boundary()})
	if err := textproto.WriteHeader(&buf, h.Header.Header); err != nil {
		return nil, fmt.Errorf("mail: write header: %w", err)
	}
	var th gomail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Disposition", "inline")
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	pw, err := parts.CreatePart(th.Header.Header)
	if err != nil {
		return nil, fmt.Errorf("mail: create part: %w", err)
	}
	qp := quotedprintable.NewWriter(pw)
	if _, err := qp.Write([]byte(m.Body)); err != nil {
		return nil, fmt.Errorf("mail: write part: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("mail: close part: %w", err)
	}
	for _, a := range m.Attachments {
		var ah gomail.AttachmentHeader
		ah.SetContentType(a.ContentType, nil)
		ah.SetFilename(a.Filename)
		ah.Set("Content-Transfer-Encoding", "base64")
		pw, err := parts.CreatePart(ah.Header.Header)
		if err != nil {
			return nil, fmt.Errorf("mail: create part: %w", err)
		}
		if _, err := pw.Write(base64Lines(a.Data)); err != nil {
			return nil, fmt.Errorf("mail: write part: %w", err)
		}
	}
	if err := parts.Close(); err != nil {
		return nil, fmt.Errorf("mail: close message: %w", err)
	}
	return buf.Bytes(), nil
}

// base64Lines is data in base64, in lines of 76 characters separated by
// CRLF (RFC 2045), the last one without.
func base64Lines(data []byte) []byte {
	const in = 57 // bytes a line of 76 characters encodes
	out := make([]byte, base64LinesLen(len(data)))
	o := 0
	for len(data) > in {
		base64.StdEncoding.Encode(out[o:], data[:in])
		out[o+76], out[o+77] = '\r', '\n'
		o += 78
		data = data[in:]
	}
	base64.StdEncoding.Encode(out[o:], data)
	return out
}

// base64LinesLen is the length of base64Lines of n bytes.
func base64LinesLen(n int) int {
	text := base64.StdEncoding.EncodedLen(n)
	return text + (text-1)/76*2 // text = 0: (text-1)/76 is 0 too
}

// validField reports whether f has a token name and a printable ASCII value.
func validField(f Field) bool {
	if f.Name == "" {
		return false
	}
	for _, c := range f.Name {
		if c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	for _, c := range f.Value {
		if (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}
