package dispatch

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

// composeEmail builds the email of an outgoing delivery: the PDF attached when
// the CDA embeds one, else the CDA itself. (The full MSSanté format, with
// IHE_XDM.ZIP and the X-MSS headers, comes later.)
func composeEmail(sender string, o outgoing) mail.Message {
	title := o.Document.Title
	if title == "" {
		title = "Document"
	}
	name := fileSafe.ReplaceAllString(title, "_")
	att := mail.Attachment{Filename: name + ".xml", ContentType: "text/xml", Data: o.Document.CDA}
	if len(o.Document.PDF) > 0 {
		att = mail.Attachment{Filename: name + ".pdf", ContentType: "application/pdf", Data: o.Document.PDF}
	}
	return mail.Message{
		From:      sender,
		To:        []string{o.Address},
		Subject:   "XDM/1.0/DDM+" + strings.Join(nonEmpty(title, strings.ToUpper(o.Patient.Family), o.Patient.Given, displayDate(o.Patient.BirthDate)), " "),
		MessageID: o.MessageID,
		Body: fmt.Sprintf("Bonjour,\r\n\r\nVeuillez trouver ci-joint le document « %s » concernant votre patient(e).\r\n\r\n"+
			"Ce message a été envoyé automatiquement par la messagerie sécurisée de santé de l'établissement.\r\n", title),
		Attachments: []mail.Attachment{att},
	}
}

var fileSafe = regexp.MustCompile(`[^\pL\pN._-]+`)

// displayDate turns YYYYMMDD into DD/MM/YYYY, leaving anything else as is.
func displayDate(d string) string {
	if len(d) < 8 {
		return d
	}
	return d[6:8] + "/" + d[4:6] + "/" + d[0:4]
}

func nonEmpty(parts ...string) []string {
	out := parts[:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
