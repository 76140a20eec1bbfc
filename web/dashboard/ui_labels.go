package dashboard

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/dispatch/desk"
	"github.com/mssdispatch/mssdispatch/letters"
	"github.com/mssdispatch/mssdispatch/readmodel"
)

// This file holds what the dashboard's templates call: the French labels of
// the codes, and the formatting of dates.

var worklistLabels = map[string]string{
	readmodel.WorklistReview:    "À vérifier",
	readmodel.WorklistFailed:    "Échecs",
	readmodel.WorklistPaper:     "Courrier papier",
	readmodel.WorklistScheduled: "Programmés",
	readmodel.WorklistAll:       "Tous les envois",
}

var statusLabels = map[dispatch.Status]string{
	dispatch.StatusReview:       "À vérifier",
	dispatch.StatusScheduled:    "Programmé",
	dispatch.StatusQueued:       "En file d'envoi",
	dispatch.StatusSent:         "Envoyé",
	dispatch.StatusDelivered:    "Distribué",
	dispatch.StatusRead:         "Lu",
	dispatch.StatusFailed:       "Échec",
	dispatch.StatusPaperPending: "À imprimer",
	dispatch.StatusPaperSent:    "Posté",
	dispatch.StatusCancelled:    "Annulé",
	dispatch.StatusSuperseded:   "Remplacé",
}

var eventLabels = map[dispatch.Event]string{
	readmodel.EventReceived:     "Reçu du DPI",
	dispatch.ReportEventWarning: "Avertissement à la réception",
	dispatch.ReportEventResent:  "Document envoyé à nouveau par le DPI",
	dispatch.EventCreated:       "Envoi créé",
	dispatch.EventReleased:      "Délai écoulé",
	dispatch.EventApproved:      "Approuvé",
	dispatch.EventHeld:          "Remis en vérification",
	dispatch.EventSending:       "Transmission au serveur de messagerie",
	dispatch.EventSent:          "Envoyé",
	dispatch.EventRetry:         "Nouvel essai prévu",
	dispatch.EventResumed:       "Envoi repris",
	dispatch.EventFailed:        "Échec",
	dispatch.EventNoDSN:         "Pas d'accusé de réception",
	dispatch.EventUnread:        "Non lu",
	dispatch.EventFallback:      "Repli",
	dispatch.EventSuperseded:    "Remplacé",
	dispatch.EventCancelled:     "Annulé",
	dispatch.EventResent:        "Relancé",
	dispatch.EventPaperSent:     "Posté",
	dispatch.EventReturned:      "Retour postal",
	dispatch.EventDelivered:     "Accusé de réception (DSN)",
	dispatch.EventRead:          "Accusé de lecture (MDN)",
	dispatch.EventDelayed:       "Distribution retardée",
	dispatch.EventReply:         "Réponse reçue",
	dispatch.EventPurged:        "Document purgé",
	dispatch.EventDomainWait:    "Opérateur en attente",
	dispatch.EventUntrusted:     "Non envoyé : hors espace de confiance",
	desk.EventEdited:            "Destinataire modifié",
	desk.EventPaper:             "Passé en papier",
	dispatch.EventBatched:       "Mis dans un lot à imprimer",
}

var actionLabels = map[string]string{
	readmodel.ActionApprove: "Approuver l'envoi",
	readmodel.ActionSendNow: "Envoyer maintenant",
	readmodel.ActionHold:    "Remettre en vérification",
	readmodel.ActionEdit:    "Modifier le destinataire",
	readmodel.ActionPaper:   "Envoyer par courrier",
	readmodel.ActionResend:  "Renvoyer",
	readmodel.ActionCancel:  "Annuler",
	readmodel.ActionPosted:  "Marquer posté",
	readmodel.ActionReturn:  "Retour postal (NPAI)",
}

// reasonLabels say why a delivery was made as it was (its reason code).
var reasonLabels = map[correspondents.Reason]string{
	correspondents.ReasonLocalAddress:           "adresse de l'annuaire local",
	correspondents.ReasonDPIAddress:             "adresse transmise par le DPI",
	correspondents.ReasonDPIAddressMismatch:     "adresse du DPI absente de l'annuaire",
	correspondents.ReasonDirectoryAddress:       "adresse de l'annuaire national",
	correspondents.ReasonUntrustedAddress:       "adresse hors de l'espace de confiance",
	correspondents.ReasonSeveralAddresses:       "plusieurs adresses connues : à choisir",
	correspondents.ReasonNoAddress:              "aucune adresse MSSanté connue",
	correspondents.ReasonPaperCopy:              "copie papier (pas de dématérialisation)",
	correspondents.ReasonLocalPaper:             "courrier demandé par l'annuaire local",
	correspondents.ReasonPatientMailbox:         "messagerie du patient (INS)",
	correspondents.ReasonPatientNotQualified:    "identité du patient non qualifiée",
	correspondents.ReasonPatientAddressMismatch: "adresse du patient différente de son INS",
	desk.ReasonUserPaper:                        "courrier demandé par le secrétariat",
	desk.ReasonUserEdit:                         "adresse choisie par le secrétariat",
	desk.ReasonUserAdded:                        "destinataire ajouté par le secrétariat",
	dispatch.ReasonFallbackPaper:                "courrier de secours après un échec",
	dispatch.ReasonNotForProfessionals:          "le DPI n'envoie pas aux professionnels",
	dispatch.ReasonServed:                       "avait reçu la version précédente",
	dispatch.ReasonRuleNoPatient:                "la règle n'envoie pas au patient",
}

// recipientRoleLabels name why a recipient is on the report (its role code).
var recipientRoleLabels = map[string]string{
	dispatch.RoleResultCopiesTo: "destinataire",
	dispatch.RolePatient:        "patient",
	dispatch.RoleSender:         "auteur",
	dispatch.RoleGP:             "médecin traitant",
	dispatch.RoleReferring:      "médecin adresseur",
	dispatch.RoleAttending:      "médecin responsable",
	dispatch.RoleAdmitting:      "médecin ayant admis",
	dispatch.RoleConsulting:     "médecin consultant",
	dispatch.RoleResultsCopy:    "copie des résultats",
	dispatch.RolePrimaryCare:    "médecin de premier recours",
	desk.RoleAdded:              "ajouté par le secrétariat",
	dispatch.RoleServed:         "avait reçu la version précédente",
}

// boxTypeLabels name the kinds of mailboxes of the national directory.
var boxTypeLabels = map[string]string{"PER": "personnelle", "ORG": "de structure", "APP": "applicative", "CAB": "de cabinet"}

// technicalEvents are the events whose detail is for administrators (a
// Message-ID): the others see the event without it.
var technicalEvents = map[dispatch.Event]bool{dispatch.EventSending: true, dispatch.EventSent: true, dispatch.EventResent: true}

// auditLabels name the actions of the audit log (audit.Actions).
var auditLabels = map[string]string{
	"login": "connexion", "login_failed": "connexion refusée", "logout": "déconnexion", "user_added": "compte créé",
	"user_disabled": "compte désactivé", "user_enabled": "compte réactivé", "password_changed": "mot de passe changé",
	"grants_changed": "droits changés", "report_viewed": "compte rendu consulté", "document_downloaded": "PDF du compte rendu ouvert",
	"letter_printed": "courrier imprimé", "patient_searched": "recherche par patient", "quarantine_viewed": "message en quarantaine lu",
	"quarantine_reprocessed": "message en quarantaine retraité", "quarantine_dismissed": "message en quarantaine écarté",
	"delivery_approved": "envoi approuvé", "delivery_held": "envoi remis en vérification", "delivery_edited": "destinataire modifié",
	"delivery_paper": "passé en courrier", "delivery_cancelled": "envoi annulé", "delivery_resent": "envoi relancé",
	"delivery_paper_sent": "courrier posté", "delivery_returned": "retour postal", "recipient_added": "destinataire ajouté",
	"batch_posted": "lot posté", "rules_changed": "règles modifiées", "correspondent_created": "fiche locale créée",
	"correspondent_changed": "fiche locale modifiée", "correspondent_deleted": "fiche locale supprimée",
	"correspondent_proposed": "fiche locale proposée", "correspondent_proposal_rejected": "proposition refusée",
	"campaign_exported": "campagne exportée", "audit_exported": "journal exporté", "audit_purged": "journal purgé (conservation)",
}

var batchLabels = map[string]string{
	letters.BatchReady:     "À imprimer et poster",
	letters.BatchSubmitted: "Confié au prestataire",
	letters.BatchPosted:    "Posté",
}

var channelLabels = map[correspondents.Channel]string{correspondents.ChannelMSSante: "MSSanté", correspondents.ChannelPaper: "Papier"}

var roleLabels = map[auth.Role]string{
	auth.RoleSecretary: "Secrétariat",
	auth.RoleCME:       "CME",
	auth.RoleAdmin:     "Administrateur",
}

// RoleLabel names a role in French.
func RoleLabel(r auth.Role) string { return roleLabels[r] }

// Label returns the label of code in labels, else the code.
func Label[Code ~string](labels map[Code]string, code Code) string {
	if l, ok := labels[code]; ok {
		return l
	}
	return string(code)
}

// reasonLabel returns the label of a delivery's reason: a
// correspondents.Reason, or the string a delivery's creation event has as
// its detail (text/template converts neither to the other).
func reasonLabel(code any) string {
	switch c := code.(type) {
	case correspondents.Reason:
		return Label(reasonLabels, c)
	case string:
		return Label(reasonLabels, correspondents.Reason(c))
	}
	return fmt.Sprint(code)
}

var uiFuncs = template.FuncMap{
	"worklistLabel": func(s string) string { return Label(worklistLabels, s) },
	"statusLabel":   func(s dispatch.Status) string { return Label(statusLabels, s) },
	"eventLabel":    func(s dispatch.Event) string { return Label(eventLabels, s) },
	"actionLabel":   func(s string) string { return Label(actionLabels, s) },
	"channelLabel":  func(s correspondents.Channel) string { return Label(channelLabels, s) },
	"reasonLabel":   reasonLabel,
	"recipientRole": func(s string) string { return Label(recipientRoleLabels, s) },
	"boxTypeLabel":  func(s string) string { return Label(boxTypeLabels, s) },
	"auditLabel":    func(s string) string { return Label(auditLabels, s) },
	"technical":     func(event dispatch.Event) bool { return technicalEvents[event] },
	"batchLabel":    func(s string) string { return Label(batchLabels, s) },
	"roleLabel":     RoleLabel,
	"can":           func(u auth.User, p string) bool { return u.Can(permissions[p]) },
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(paris).Format("02/01/2006 15:04")
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(paris).Format("02/01/2006")
	},
	"isoTime": func(t time.Time) string { return t.Format(time.RFC3339) },
	// birthDate shows a YYYYMMDD date as DD/MM/YYYY.
	"birthDate": func(s string) string {
		if len(s) >= 8 {
			return s[6:8] + "/" + s[4:6] + "/" + s[0:4]
		}
		return s
	},
	"join": strings.Join,
	// countLabel shows a worklist's count, "1000+" at the cap.
	"countLabel": func(n int64) string {
		if n >= readmodel.CountCap {
			return strconv.Itoa(readmodel.CountCap) + "+"
		}
		return strconv.FormatInt(n, 10)
	},
	"worklist": func() []string { return readmodel.Worklists },
	// paperConfirm asks before a letter to p; paperLabel names its button.
	"paperConfirm": func(p dispatch.PostalAddress) string {
		if !p.Known() {
			return "Envoyer par courrier ? L'adresse postale est inconnue : la lettre attendra que vous la complétiez."
		}
		return "Envoyer par courrier à " + p.String() + " ?"
	},
	"paperLabel": func(p dispatch.PostalAddress) string {
		if !p.Known() {
			return "Envoyer par courrier (adresse à compléter)"
		}
		return "Envoyer par courrier"
	},
	// sendNowConfirm asks before sending a delivery the rule holds until at.
	"sendNowConfirm": func(rule string, version int, at *time.Time) string {
		until := "jusqu'à la fin de son délai"
		if at != nil {
			until = "jusqu'au " + at.In(paris).Format("02/01/2006 à 15:04")
		}
		return fmt.Sprintf("La règle « %s » (version %d) retient cet envoi %s. L'envoyer maintenant ?", rule, version, until)
	},
	// releaseTime says when a scheduled delivery leaves.
	"releaseTime": func(at *time.Time) string {
		if at == nil {
			return ""
		}
		return "Part le " + at.In(paris).Format("02/01/2006 à 15:04")
	},
}

// permissions names the permissions for the templates' can.
var permissions = map[string]auth.Permission{
	"view": auth.PermView, "act": auth.PermAct, "correspondents": auth.PermCorrespondents,
	"rules": auth.PermRules, "admin": auth.PermAdmin,
}
