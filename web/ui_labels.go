package web

import (
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/dispatch"
)

// This file holds what the dashboard's templates call: the French labels of
// the codes, and the formatting of dates.

var worklistLabels = map[string]string{
	dispatch.WorklistReview:    "À vérifier",
	dispatch.WorklistFailed:    "Échecs",
	dispatch.WorklistPaper:     "Courrier papier",
	dispatch.WorklistScheduled: "Programmés",
	dispatch.WorklistAll:       "Tous les envois",
}

var statusLabels = map[string]string{
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

var eventLabels = map[string]string{
	dispatch.EventReceived:      "Reçu du DPI",
	dispatch.ReportEventWarning: "Avertissement à la réception",
	dispatch.ReportEventResent:  "Document envoyé à nouveau par le DPI",
	dispatch.EventCreated:       "Envoi créé",
	dispatch.EventReleased:      "Délai écoulé",
	dispatch.EventApproved:      "Approuvé",
	dispatch.EventHeld:          "Remis en vérification",
	dispatch.EventSending:       "Transmission SMTP",
	dispatch.EventSent:          "Envoyé",
	dispatch.EventRetry:         "Nouvel essai prévu",
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
	dispatch.EventEdited:        "Destinataire modifié",
	dispatch.EventPaper:         "Passé en papier",
	dispatch.EventBatched:       "Mis dans un lot à imprimer",
}

var actionLabels = map[string]string{
	dispatch.ActionApprove: "Approuver l'envoi",
	dispatch.ActionHold:    "Remettre en vérification",
	dispatch.ActionEdit:    "Modifier le destinataire",
	dispatch.ActionPaper:   "Envoyer par courrier",
	dispatch.ActionResend:  "Renvoyer",
	dispatch.ActionCancel:  "Annuler",
	dispatch.ActionPosted:  "Marquer posté",
	dispatch.ActionReturn:  "Retour postal (NPAI)",
}

var batchLabels = map[string]string{
	dispatch.BatchReady:     "À imprimer et poster",
	dispatch.BatchSubmitted: "Confié au prestataire",
	dispatch.BatchPosted:    "Posté",
}

var channelLabels = map[string]string{"mssante": "MSSanté", "paper": "Papier"}

var roleLabels = map[auth.Role]string{
	auth.RoleSecretary: "Secrétariat",
	auth.RoleCME:       "CME",
	auth.RoleAdmin:     "Administrateur",
}

// label returns the label of code in labels, else the code.
func label(labels map[string]string, code string) string {
	if l, ok := labels[code]; ok {
		return l
	}
	return code
}

var uiFuncs = template.FuncMap{
	"worklistLabel": func(s string) string { return label(worklistLabels, s) },
	"statusLabel":   func(s string) string { return label(statusLabels, s) },
	"eventLabel":    func(s string) string { return label(eventLabels, s) },
	"actionLabel":   func(s string) string { return label(actionLabels, s) },
	"channelLabel":  func(s string) string { return label(channelLabels, s) },
	"batchLabel":    func(s string) string { return label(batchLabels, s) },
	"roleLabel":     func(r auth.Role) string { return roleLabels[r] },
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
		if n >= dispatch.CountCap {
			return strconv.Itoa(dispatch.CountCap) + "+"
		}
		return strconv.FormatInt(n, 10)
	},
	"worklist": func() []string { return dispatch.Worklists },
}

// permissions names the permissions for the templates' can.
var permissions = map[string]auth.Permission{
	"view": auth.PermView, "act": auth.PermAct, "correspondents": auth.PermCorrespondents,
	"rules": auth.PermRules, "admin": auth.PermAdmin,
}
