package hl7

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file builds the business acknowledgements ("accusés métier") of the
// ANS volet "Transmission d'un document CDA-R2 en HL7v2" (CISIS_CDA_HL7_V2),
// message structure ZAM_Z01 in v2.6, which the PFI sends back to the system
// that created the document:
//
//	MSH|^~\&|<us>|<us>|<DPI MSH-3>|<DPI MSH-4>|<now>||ZAM^Z02^ZAM_Z01|<id>|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2
//	EVN||<time of the DSN>
//	OBX|1|CWE|ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM|<original MSH-10>|Y^^expandedYes-NoIndicator||||||F
//	OBX|2|XTN|DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM|<recipient id>|^^X.400^<address>||||||F
//	[ERR|||207^Application error^messageErrorCondition|E|<code>^<label>^SMTPERRORCODE[|||<explanation>]]
//
// and the same for ZAM^Z03 with ACK_LECTURE_MSS / LECTEUR_MSS and the
// applicationErrorCondition codes (900…) of the MDN. The layout is that of
// the volet's constraints on ZAM_Z01 (profils-messages, "Description des
// contraintes à appliquer sur les accusés métiers") and of the official
// examples (ansforge/hl7V2-exemples, "Message metier reception MSS" and
// "Message metier lecture MSS"); the message carries no patient segment.

// Business acknowledgement events (MSH-9.2 of a ZAM^…^ZAM_Z01).
const (
	ZAMDelivery = "Z02" // accusé de réception MSSanté, from a DSN
	ZAMRead     = "Z03" // accusé de lecture MSSanté, from an MDN
)

// Codes of the volet's AckMetierZAM table (OBX-3 of a ZAM).
const (
	ZAMCodeDeliveryAck = "ACK_RECEPTION_MSS" // status of the delivery (Z02)
	ZAMCodeRecipient   = "DESTINATAIRE_MSS"  // the recipient's mailbox (Z02)
	ZAMCodeReadAck     = "ACK_LECTURE_MSS"   // status of the reading (Z03)
	ZAMCodeReader      = "LECTEUR_MSS"       // the mailbox that read it (Z03)
)

// ZAMProfile is MSH-21 of a ZAM: the version of the volet and its message profile.
const ZAMProfile = "2.1^CISIS_CDA_HL7_V2"

// ZAM is one business acknowledgement to build with BuildZAM.
type ZAM struct {
	// Event is ZAMDelivery or ZAMRead (MSH-9.2).
	Event string
	// ControlID is MSH-10, unique to this message: a DPI that gets the same
	// acknowledgement twice (a retry) recognises it by it.
	ControlID string
	// Time is MSH-7, when the message is built.
	Time time.Time
	// ProcessingID is MSH-11: P (production), T (test) or D (debug). Defaults to P.
	ProcessingID string
	// SendingApplication and SendingFacility are MSH-3 and MSH-4: this
	// service, as the DPI knows it (the MSH-5 and MSH-6 of its messages).
	SendingApplication, SendingFacility HD
	// ReceivingApplication and ReceivingFacility are MSH-5 and MSH-6: the
	// system that sent the document (the MSH-3 and MSH-4 of its message).
	ReceivingApplication, ReceivingFacility HD
	// EventTime is EVN-2, when the DSN or MDN was received. Defaults to Time.
	EventTime time.Time
	// OriginalControlID is OBX-4 of the first OBX: the MSH-10 of the ORU or
	// MDM message that carried the document.
	OriginalControlID string
	// RecipientAddress is the MSSanté address of the second OBX (OBX-5.4 of
	// its XTN): the recipient's mailbox (Z02), the mailbox that read the
	// email (Z03).
	RecipientAddress string
	// RecipientID is OBX-4 of the second OBX, the recipient's identifier as
	// the DPI gave it (a professional's national id, "8" + RPPS); optional.
	RecipientID string
	// Error, when not nil, makes the status of the first OBX N (failure)
	// instead of Y and adds the ERR segment describing it.
	Error *ZAMError
}

// ZAMError is why a delivery or a reading failed: the ERR segment of a ZAM.
type ZAMError struct {
	// Code is ERR-5.1: for Z02 an SMTP reply code of the volet's
	// SMTPERRORCODE table (e.g. "550"), for Z03 an integration error of its
	// applicationErrorCondition table (e.g. "902", from the MDN). Three
	// digits, or empty when unknown: ERR-5 is required, so it then defaults
	// to ZAMDefaultDeliveryError (Z02) or ZAMDefaultReadError (Z03).
	Code string
	// Text is a free-text explanation (such as the DSN's diagnostic). ERR-5.2
	// is the label the volet's table gives the code (ZAMErrorText), or Text
	// for a code the table does not list; Text goes to ERR-8 (user message)
	// when it says something other than ERR-5.2.
	Text string
}

// Error codes BuildZAM writes in ERR-5 when ZAMError.Code is empty.
const (
	ZAMDefaultDeliveryError = "554" // SMTPERRORCODE: "l'envoi a échoué", a permanent error
	ZAMDefaultReadError     = "906" // applicationErrorCondition: "Erreur 'Autre'"
)

// Coding systems of a ZAM.
const (
	zamCodingSystem     = "AckMetierZAM"
	yesNoCodingSystem   = "expandedYes-NoIndicator"
	smtpErrorSystem     = "SMTPERRORCODE"
	applicationErrorSys = "applicationErrorCondition"
)

// zamObservations names, per event, the codes and labels of the two OBX.
var zamObservations = map[string][2][2]string{
	ZAMDelivery: {{ZAMCodeDeliveryAck, "Accusé de réception MSSanté"}, {ZAMCodeRecipient, "Destinataire MSSanté"}},
	ZAMRead:     {{ZAMCodeReadAck, "Accusé de lecture"}, {ZAMCodeReader, "Lecteur du courriel MSSanté"}},
}

// ErrZAM is wrapped by the errors of BuildZAM.
var ErrZAM = errors.New("hl7: invalid ZAM")

// BuildZAM returns the ZAM^<Event>^ZAM_Z01 message of z, to be encoded with
// Encode (UTF-8, MSH-18 "UNICODE UTF-8"). It returns an error wrapping ErrZAM
// when a field the volet requires is missing or malformed.
func BuildZAM(z ZAM) (*Message, error) {
	if err := z.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrZAM, err)
	}
	obs := zamObservations[z.Event]
	processing := z.ProcessingID
	if processing == "" {
		processing = "P"
	}
	eventTime := z.EventTime
	if eventTime.IsZero() {
		eventTime = z.Time
	}

	msh := NewSegment("MSH")
	msh.Set(1, Text(string(DefaultDelimiters.Field)))
	msh.Set(2, Text(DefaultDelimiters.encodingChars()))
	msh.Set(3, hdField(z.SendingApplication))
	msh.Set(4, hdField(z.SendingFacility))
	msh.Set(5, hdField(z.ReceivingApplication))
	msh.Set(6, hdField(z.ReceivingFacility))
	msh.Set(7, Text(z.Time.Format(ackTimeLayout)))
	msh.Set(9, Comps("ZAM", z.Event, "ZAM_Z01"))
	msh.Set(10, Text(z.ControlID))
	msh.Set(11, Text(processing))
	msh.Set(12, Text("2.6"))
	msh.Set(17, Text("FRA"))
	msh.Set(18, Text(CharsetUTF8))
	msh.Set(21, Comps(strings.Split(ZAMProfile, "^")...))

	evn := NewSegment("EVN")
	evn.Set(2, Text(eventTime.Format(ackTimeLayout)))

	status := "Y"
	if z.Error != nil {
		status = "N"
	}
	ack := NewSegment("OBX")
	ack.Set(1, Text("1"))
	ack.Set(2, Text("CWE"))
	ack.Set(3, Comps(obs[0][0], obs[0][1], zamCodingSystem))
	ack.Set(4, Text(z.OriginalControlID))
	ack.Set(5, Comps(status, "", yesNoCodingSystem))
	ack.Set(11, Text("F"))

	who := NewSegment("OBX")
	who.Set(1, Text("2"))
	who.Set(2, Text("XTN"))
	who.Set(3, Comps(obs[1][0], obs[1][1], zamCodingSystem))
	who.Set(4, Text(z.RecipientID))
	who.Set(5, Comps("", "", "X.400", z.RecipientAddress))
	who.Set(11, Text("F"))

	m := &Message{Delims: DefaultDelimiters, Charset: CharsetUTF8}
	m.Add(msh)
	m.Add(evn)
	m.Add(ack)
	m.Add(who)
	if z.Error != nil {
		m.Add(z.Error.segment(z.Event))
	}
	return m, nil
}

// validate says what z lacks.
func (z ZAM) validate() error {
	switch {
	case z.Event != ZAMDelivery && z.Event != ZAMRead:
		return fmt.Errorf("event %q: want %s or %s", z.Event, ZAMDelivery, ZAMRead)
	case strings.TrimSpace(z.ControlID) == "":
		return errors.New("MSH-10: the control id is empty")
	case len(z.ControlID) > maxControlIDLen:
		return fmt.Errorf("MSH-10: the control id is longer than %d characters", maxControlIDLen)
	case z.Time.IsZero():
		return errors.New("MSH-7: the time is zero")
	case z.ProcessingID != "" && z.ProcessingID != "P" && z.ProcessingID != "T" && z.ProcessingID != "D":
		return fmt.Errorf("MSH-11: processing id %q: want P, T or D", z.ProcessingID)
	case hdEmpty(z.SendingApplication):
		return errors.New("MSH-3: the sending application is empty")
	case hdEmpty(z.ReceivingApplication):
		return errors.New("MSH-5: the receiving application (the DPI's MSH-3) is empty")
	case strings.TrimSpace(z.OriginalControlID) == "":
		return errors.New("OBX-4: the control id of the original message is empty")
	case !strings.Contains(z.RecipientAddress, "@"):
		return fmt.Errorf("OBX-5.4: %q is not an email address", z.RecipientAddress)
	}
	if z.Error != nil && z.Error.Code != "" && !isCode3(z.Error.Code) {
		return fmt.Errorf("ERR-5: error code %q: want three digits", z.Error.Code)
	}
	return nil
}

// segment returns the ERR segment of e in a ZAM of event, as the volet's
// constraints on ZAM_Z01 want it: ERR-3 207^Application error^messageErrorCondition,
// ERR-4 E, ERR-5 (required) <code>^<label>^<the event's table>, and ERR-8 the
// explanation of e when it is not the label.
func (e *ZAMError) segment(event string) *Segment {
	code, system := e.Code, smtpErrorSystem
	if event == ZAMRead {
		system = applicationErrorSys
	}
	if code == "" {
		code = ZAMDefaultDeliveryError
		if event == ZAMRead {
			code = ZAMDefaultReadError
		}
	}
	text := strings.TrimSpace(e.Text)
	label := ZAMErrorText(event, code)
	if label == "" {
		label = text
	}
	err := NewSegment("ERR")
	err.Set(3, Comps(fmt.Sprint(CodeInternal), "Application error", messageErrorSystem))
	err.Set(4, Text("E"))
	err.Set(5, Comps(code, label, system))
	if text != "" && text != label {
		err.Set(8, Text(text))
	}
	return err
}

// ZAMErrorText returns the label the volet gives to an error code of a ZAM
// of event (SMTPERRORCODE for Z02, applicationErrorCondition for Z03), or ""
// for a code it does not list.
func ZAMErrorText(event, code string) string {
	if event == ZAMRead {
		return applicationErrorText[code]
	}
	return smtpErrorText[code]
}

// smtpErrorText is the volet's SMTPERRORCODE table (error-codes).
var smtpErrorText = map[string]string{
	"101": "Le serveur n'arrive pas à se connecter.",
	"111": "Connexion refusée ou impossibilité d'ouvrir un flux SMTP.",
	"251": "Le compte du destinataire n'est pas sur le serveur actuel. L'envoi sera donc relayé à un autre serveur.",
	"252": "Le serveur ne peut pas vérifier l'utilisateur. Il confirme cependant qu'il essaiera de transmettre le message malgré tout",
	"420": "« Problème de connexion de temporisation » : il y a eu des problèmes pendant le transfert du message.",
	"421": "Le service est indisponible en raison d'un problème de connexion.",
	"422": "La boîte aux lettres du destinataire a dépassé sa limite de stockage.",
	"431": "Espace insuffisant sur le disque, ou état de mémoire insuffisante en raison d'une surcharge de fichiers.",
	"432": "Mot de passe de transition nécessaire",
	"441": "Le serveur du destinataire ne répond pas",
	"442": "La connexion a été interrompue pendant la transmission",
	"450": "Action non effectuée : boîte-aux-lettres non disponible [Ex., bloquée par un autre utilisateur]",
	"451": "Action arrêtée : erreur de traitement",
	"452": "Action non effectuée : manque de ressources système.",
	"500": "Erreur de syntaxe, commande non reconnue [y compris des erreurs de type « ligne de commande trop longue »]",
	"501": "Erreur de syntaxe dans des paramètres ou arguments de commande",
	"502": "Commande non implémentée",
	"503": "Mauvaise séquence de commandes",
	"504": "Paramètre de commande non implémenté",
	"510": "Mauvaise adresse courriel",
	"512": "Ce code indique une erreur DNS. Le serveur hôte du nom de domaine du destinataire est introuvable.",
	"513": "Le type d'adresse est incorrect. Souvent un problème lié à une faute d'orthographe. Dans de rares cas, il peut être lié à un problème d'authentification.",
	"523": "La taille totale de votre mailing dépasse les limites du serveur destinataire.",
	"530": "L'authentification est requise. Vous devez authentifier votre compte de messagerie avant d'envoyer un e-mail",
	"541": "L'adresse du destinataire a rejeté votre message. Dans la plupart des cas, c'est une erreur causée par un filtre anti-spam.",
	"550": "Action non effectuée : boîte aux lettres non disponible (ex. : boîte-aux-lettres non trouvée, pas d'accès).",
	"551": "Un relais peut être interrompu car votre adresse et celle du destinataire ne sont pas hébergées localement par le serveur.",
	"552": "Action abandonnée - Allocation de stockage dépassée. La boîte aux lettres du destinataire a dépassé ses limites.",
	"553": "La commande a été abandonnée car le nom de la boîte aux lettres n'est pas valide.",
	"554": "Cela signifie que l'envoi a échoué. Ce code indique une erreur permanente et le serveur n'essaiera pas d'envoyer le message à nouveau.",
}

// applicationErrorText is the volet's table of the errors of the read
// acknowledgement (error-codes, applicationErrorCondition).
var applicationErrorText = map[string]string{
	"900": "Version du document incorrecte lors d'une demande de remplacement/suppression",
	"901": "Auteur non autorisé à remplacer ou supprimer un document",
	"902": "Identifiant patient inconnu",
	"903": "INS non présent dans le document",
	"904": "L'INS transmis ne correspond pas exactement à celui stocké dans la base du consommateur",
	"905": "L’INS transmis n’est pas complet",
	"906": "Erreur 'Autre'",
}

// hdField returns h as a field (HD.1^HD.2^HD.3), nil when empty.
func hdField(h HD) Field { return Comps(h.NamespaceID, h.UniversalID, h.UniversalIDType) }

func hdEmpty(h HD) bool {
	return strings.TrimSpace(h.NamespaceID) == "" && strings.TrimSpace(h.UniversalID) == ""
}

func isCode3(s string) bool {
	return len(s) == 3 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}
