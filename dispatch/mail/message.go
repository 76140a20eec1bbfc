package mail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

// Message is an email to compose.
type Message struct {
	From        string
	To          []string
	ReplyTo     string
	Subject     string
	MessageID   string // without angle brackets
	Date        time.Time
	Body        string // plain text
	Attachments []Attachment
}

// Attachment is a file attached to a Message.
type Attachment struct {
	Filename    string
	ContentType string
	Data        []byte
}

// Bytes renders m as an RFC 5322 message with CRLF line ends.
func (m Message) Bytes() ([]byte, error) {
	if m.From == "" || len(m.To) == 0 || m.MessageID == "" {
		return nil, errors.New("mail: a message needs From, To and a Message-ID")
	}
	var h gomail.Header
	h.SetAddressList("From", []*gomail.Address{{Address: m.From}})
	to := make([]*gomail.Address, len(m.To))
	for i, a := range m.To {
		to[i] = &gomail.Address{Address: a}
	}
	h.SetAddressList("To", to)
	if m.ReplyTo != "" {
		h.SetAddressList("Reply-To", []*gomail.Address{{Address: m.ReplyTo}})
	}
	h.SetSubject(m.Subject)
	h.SetMessageID(m.MessageID)
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)

	var buf bytes.Buffer
	w, err := gomail.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("mail: create message: %w", err)
	}
	var th gomail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	if err := writePart(func() (io.WriteCloser, error) { return w.CreateSingleInline(th) }, []byte(m.Body)); err != nil {
		return nil, err
	}
	for _, a := range m.Attachments {
		var ah gomail.AttachmentHeader
		ah.SetContentType(a.ContentType, nil)
		ah.SetFilename(a.Filename)
		if err := writePart(func() (io.WriteCloser, error) { return w.CreateAttachment(ah) }, a.Data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("mail: close message: %w", err)
	}
	return buf.Bytes(), nil
}

func writePart(create func() (io.WriteCloser, error), data []byte) error {
	pw, err := create()
	if err != nil {
		return fmt.Errorf("mail: create part: %w", err)
	}
	if _, err := pw.Write(data); err != nil {
		return fmt.Errorf("mail: write part: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("mail: close part: %w", err)
	}
	return nil
}
