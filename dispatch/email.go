package dispatch

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

// composeEmail builds the email of an outgoing delivery: the PDF attached when
// the CDA embeds one, else the CDA itself; nothing for a deletion that came
// without its document. (The full MSSanté format, with IHE_XDM.ZIP and the
// X-MSS headers, comes later.)
func composeEmail(sender string, o outgoing) mail.Message {
	title := o.Document.Title
	if title == "" {
		title = "Document"
	}
	name := fileSafe.ReplaceAllString(title, "_")
	var attachments []mail.Attachment
	switch {
	case len(o.Document.PDF) > 0:
		attachments = []mail.Attachment{{Filename: name + ".pdf", ContentType: "application/pdf", Data: o.Document.PDF}}
	case len(o.Document.CDA) > 0:
		attachments = []mail.Attachment{{Filename: name + ".xml", ContentType: "text/xml", Data: o.Document.CDA}}
	}
	return mail.Message{
		From:        sender,
		To:          []string{o.Address},
		Subject:     "XDM/1.0/DDM+" + strings.Join(nonEmpty(title, strings.ToUpper(o.Patient.Family), o.Patient.Given, displayDate(o.Patient.BirthDate)), " "),
		MessageID:   o.MessageID,
		Body:        defaultBodies[o.Action](title) + "\r\nCe message a été envoyé automatiquement par la messagerie sécurisée de santé de l'établissement.\r\n",
		Attachments: attachments,
	}
}

// defaultBodies are the email texts per action, when the DPI wrote none.
var defaultBodies = map[Action]func(title string) string{
	ActionNew: func(title string) string {
		return fmt.Sprintf("Bonjour,\r\n\r\nVeuillez trouver ci-joint le document « %s » concernant votre patient(e).\r\n", title)
	},
	ActionReplace: func(title string) string {
		return fmt.Sprintf("Bonjour,\r\n\r\nLe document ci-joint « %s » annule et remplace la version que vous avez reçue précédemment.\r\n", title)
	},
	ActionDelete: func(title string) string {
		return fmt.Sprintf("Bonjour,\r\n\r\nLe document « %s » que vous avez reçu concernant votre patient(e) est annulé : merci de ne plus en tenir compte.\r\n", title)
	},
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
