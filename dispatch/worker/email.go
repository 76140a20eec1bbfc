package worker

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/cda"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/mail"
)

// Defaults of the MSSanté email fields of WorkerConfig.
const (
	// DefaultNIL is the product reference written in X-MSS-NIL.
	DefaultNIL = "mssdispatch"
	// DemoSourceID is the submission set sourceId used when none is
	// configured: a UUID-derived OID (arc 2.25) that identifies no real
	// organisation, for tests and demonstrations only.
	DemoSourceID = "2.25.25475565850173193429657825623766816288"
)

// Header fields of the MSSanté email (Référentiel MSSanté #2), in the order
// they are written.
const (
	headerNIL     = "X-MSS-NIL"
	headerCodeCDA = "X-MSS-CODECDA"
	headerINS     = "X-MSS-INS"
	headerMES     = "X-MSS-MES"
	headerReadAck = "Disposition-Notification-To"
)

const (
	// xdmFilename is the name of the XDM attachment receivers look for.
	xdmFilename = "IHE_XDM.ZIP"
	// footerSentence ends the default bodies.
	footerSentence = "\r\nCe message a été envoyé automatiquement par la messagerie sécurisée de santé de l'établissement.\r\n"
)

var oidSyntax = regexp.MustCompile(`^[0-2](\.(0|[1-9][0-9]*))+$`)

// IsOID reports whether s is a dotted object identifier (e.g. 1.2.250.1.71.4.2.2).
func IsOID(s string) bool { return len(s) <= 64 && oidSyntax.MatchString(s) }

// errNotOneMSSanteRecipient is returned for a delivery that is not one
// MSSanté address: it cannot become a message.
var errNotOneMSSanteRecipient = errors.New("a message goes to exactly one MSSanté address / un message va à une seule adresse MSSanté")

// composeEmail builds the MSSanté email of an outgoing delivery: From the BAL
// applicative, To the delivery's address, Reply-To the DPI's PRT REPLY,
// Subject XDM/1.0/DDM+<title> <NOM> <prénom> <birth date>, the DPI's body
// (CORPSMAIL_PS, or CORPSMAIL_PATIENT for the patient) or the default text
// of the action, IHE_XDM.ZIP (from doc) and the PDF attached when the report has a CDA,
// and the X-MSS headers; a read notification is asked when the DPI wants one
// (ACK_LECTURE_MSS) or the rule watches for it (unread_hours).
//
// A message has exactly one recipient, the delivery's, on the MSSanté
// channel: so the operators' rules "at most 40 recipients per message" and
// "never mix MSSanté and non-MSSanté recipients" hold by construction, and
// composeEmail refuses anything else (errNotOneMSSanteRecipient). Its
// errors are all for good, the delivery cannot become an email: that one,
// ErrUnpackable when the documents cannot be packaged, and a
// *mail.PermanentError wrapping mail.ErrTooLarge when the attachments
// exceed 10 MB.
func composeEmail(cfg WorkerConfig, o outgoing, doc sendDocument, now time.Time) (mail.Message, error) {
	if o.Channel != correspondents.ChannelMSSante || o.Address == "" || strings.ContainsAny(o.Address, ", ") {
		// No address in the error: a patient's is their INS, and errors are logged.
		return mail.Message{}, fmt.Errorf("delivery %d (channel %s): %w", o.DeliveryID, o.Channel, errNotOneMSSanteRecipient)
	}
	title := o.Document.Title
	if title == "" {
		title = "Document"
	}
	m := mail.Message{
		From:      cfg.Sender,
		To:        []string{o.Address},
		ReplyTo:   o.ReplyTo,
		Subject:   "XDM/1.0/DDM+" + strings.Join(nonEmpty(title, strings.ToUpper(o.Patient.Family), o.Patient.Given, o.Patient.DisplayBirthDate()), " "),
		MessageID: o.MessageID,
		Date:      now,
		Body:      emailBody(o, title),
		Headers:   []mail.Field{{Name: headerNIL, Value: cfg.NIL}},
	}
	if len(doc.xdm) > 0 {
		xdm, err := packageXDM(cfg, o, doc.xdm, now)
		if err != nil {
			return mail.Message{}, fmt.Errorf("delivery %d: %w: IHE_XDM.ZIP: %w", o.DeliveryID, ErrUnpackable, err)
		}
		m.Attachments = append(m.Attachments, mail.Attachment{Filename: xdmFilename, ContentType: "application/zip", Data: xdm})
		for i, pdf := range doc.pdfs {
			name := fileSafe.ReplaceAllString(title, "_")
			if i > 0 { // the same report in another format
				name += fmt.Sprintf("_%d", i+1)
			}
			m.Attachments = append(m.Attachments, mail.Attachment{Filename: name + ".pdf", ContentType: "application/pdf", Data: pdf})
		}
		codes := make([]string, len(doc.codes))
		for i, c := range doc.codes {
			codes[i] = cmp.Or(c, o.Document.Code)
		}
		ins := "N"
		if o.Patient.INSQualified {
			ins = "O"
		}
		m.Headers = append(m.Headers, mail.Field{Name: headerCodeCDA, Value: strings.Join(codes, ",")}, mail.Field{Name: headerINS, Value: ins})
	}
	if o.Recipient.Kind == dispatch.KindPatient && (cfg.PatientNoReply || o.Flags.PatientNoReply) {
		m.Headers = append(m.Headers, mail.Field{Name: headerMES, Value: "FIN"})
	}
	if o.Flags.ReadAck || o.Policy.UnreadHours > 0 {
		m.Headers = append(m.Headers, mail.Field{Name: headerReadAck, Value: "<" + cfg.Sender + ">"})
	}
	if err := m.CheckLimits(); err != nil {
		return mail.Message{}, fmt.Errorf("delivery %d: %w", o.DeliveryID, err)
	}
	return m, nil
}

// packageXDM builds the IHE_XDM.ZIP of the report's CDAs, prepared in docs,
// addressed to o's recipient: one submission set whose author is the
// sender the DPI named (PRT SB), else the first CDA's author. It is the one
// call into cda's XDM packaging.
func packageXDM(cfg WorkerConfig, o outgoing, docs []*cda.XDMDocument, now time.Time) ([]byte, error) {
	return cda.Package(cda.XDMOptions{
		SourceID:       cfg.SourceID,
		SubmissionTime: now,
		Action:         xdmActions[o.Action],
		Recipients: []cda.XDMRecipient{{Address: o.Address, ID: recipientID(o), Family: o.Recipient.Family,
			Given: o.Recipient.Given, Organization: o.Recipient.Organisation}},
		PracticeSetting:        cfg.PracticeSetting,
		HealthcareFacilityType: cfg.HealthcareFacilityType,
		SubmissionAuthor:       submissionAuthor(o.Author),
	}, docs...)
}

// submissionAuthor is the author of the XDM submission set: the sender the
// DPI named (PRT SB: PRT-5 person, PRT-8 organisation), zero otherwise.
func submissionAuthor(a dispatch.Recipient) cda.Author {
	if a.Role != dispatch.RoleSender {
		return cda.Author{}
	}
	var out cda.Author
	out.Family, out.Given = a.Family, a.Given
	if a.NationalID != "" {
		out.ID = cda.II{Root: cda.OIDRPPS, Extension: a.NationalID}
	}
	out.Organization.Name = a.Organisation
	if a.FINESS != "" {
		out.Organization.ID = cda.II{Root: cda.OIDFINESS, Extension: "1" + a.FINESS}
	}
	return out
}

// xdmActions are the XDM metadata actions: none for a new document, C for a
// replacement, D for a deletion.
var xdmActions = map[dispatch.Action]string{dispatch.ActionNew: "", dispatch.ActionReplace: "C", dispatch.ActionDelete: "D"}

// recipientID identifies o's recipient (a person) in the XDM metadata: the
// patient's qualified INS, a professional's national id ("8" + RPPS, "0" +
// ADELI); zero otherwise (an organisation is named by XDMRecipient.Organization).
func recipientID(o outgoing) cda.II {
	r := o.Recipient
	switch {
	case r.Kind == dispatch.KindPatient && o.Patient.INSQualified && o.Patient.INS != "" && o.Patient.INSOID != "":
		return cda.II{Root: o.Patient.INSOID, Extension: o.Patient.INS}
	case r.Kind != dispatch.KindOrganisation && r.NationalID != "":
		return cda.II{Root: cda.OIDRPPS, Extension: r.NationalID}
	}
	return cda.II{}
}

// emailBody is the DPI's body for o's recipient (CORPSMAIL_PATIENT for the
// patient, CORPSMAIL_PS for the others), else the default text of o's action.
func emailBody(o outgoing, title string) string {
	custom := o.BodyProfessional
	if o.Recipient.Kind == dispatch.KindPatient {
		custom = o.BodyPatient
	}
	if strings.TrimSpace(custom) != "" {
		body := strings.ReplaceAll(strings.ReplaceAll(custom, "\r\n", "\n"), "\n", "\r\n")
		if !strings.HasSuffix(body, "\r\n") {
			body += "\r\n"
		}
		return body
	}
	texts := defaultBodies
	if o.Recipient.Kind == dispatch.KindPatient {
		texts = defaultPatientBodies
	}
	text, ok := texts[o.Action]
	if !ok {
		text = texts[dispatch.ActionNew]
	}
	return text(title) + footerSentence
}

// defaultPatientBodies are the email texts per action for the patient, when
// the DPI wrote no CORPSMAIL_PATIENT.
var defaultPatientBodies = map[dispatch.Action]func(title string) string{
	dispatch.ActionNew: func(title string) string {
		return fmt.Sprintf("Bonjour,\r\n\r\nVeuillez trouver ci-joint votre document « %s ».\r\n", title)
	},
	dispatch.ActionReplace: func(title string) string {
		return fmt.Sprintf("Bonjour,\r\n\r\nLe document ci-joint « %s » annule et remplace la version que vous avez reçue précédemment.\r\n", title)
	},
	dispatch.ActionDelete: func(title string) string {
		return fmt.Sprintf("Bonjour,\r\n\r\nLe document « %s » que vous avez reçu est annulé : merci de ne plus en tenir compte.\r\n", title)
	},
}

// defaultBodies are the email texts per action for professionals, when the
// DPI wrote no CORPSMAIL_PS.
var defaultBodies = map[dispatch.Action]func(title string) string{
	dispatch.ActionNew: func(title string) string {
		return fmt.Sprintf("Bonjour,\r\n\r\nVeuillez trouver ci-joint le document « %s » concernant votre patient(e).\r\n", title)
	},
	dispatch.ActionReplace: func(title string) string {
		return fmt.Sprintf("Bonjour,\r\n\r\nLe document ci-joint « %s » annule et remplace la version que vous avez reçue précédemment.\r\n", title)
	},
	dispatch.ActionDelete: func(title string) string {
		return fmt.Sprintf("Bonjour,\r\n\r\nLe document « %s » que vous avez reçu concernant votre patient(e) est annulé : merci de ne plus en tenir compte.\r\n", title)
	},
}

var fileSafe = regexp.MustCompile(`[^\pL\pN._-]+`)

func nonEmpty(parts ...string) []string {
	out := parts[:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
