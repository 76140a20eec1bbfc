package correspondents

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Channel is how a route delivers (deliveries.channel).
type Channel string

// Channels of a route.
const (
	ChannelMSSante Channel = "mssante"
	ChannelPaper   Channel = "paper"
)

// Kinds of recipient.
const (
	KindProfessional = "professional"
	KindOrganisation = "organisation"
	KindPatient      = "patient"
)

// PatientMailDomain is the domain of the patients' MSSanté mailboxes
// (INS@patient.mssante.fr), run by the national operator and part of the
// trust space by definition.
const PatientMailDomain = "patient.mssante.fr"

// Reason says why a route (and the delivery made of it) is as it is,
// machine-readable (deliveries.reason): what the CME rules match on and what
// the dashboard explains.
type Reason string

// Reasons of a route.
const (
	// ReasonLocalAddress: the address of the hospital's local directory.
	ReasonLocalAddress Reason = "local_address"
	// ReasonDPIAddress: the DPI's address, in the trust space, which the
	// directory knows for this recipient or does not contradict.
	ReasonDPIAddress Reason = "dpi_address"
	// ReasonDPIAddressMismatch: the DPI's address, in the trust space, while
	// the directory knows other addresses for this recipient.
	ReasonDPIAddressMismatch Reason = "dpi_address_mismatch"
	// ReasonDirectoryAddress: the directory's only address for the recipient.
	ReasonDirectoryAddress Reason = "directory_address"
	// ReasonUntrustedAddress: the address's domain is outside the trust space.
	ReasonUntrustedAddress Reason = "untrusted_address"
	// ReasonSeveralAddresses: the directory has several addresses, none chosen.
	ReasonSeveralAddresses Reason = "several_addresses"
	// ReasonNoAddress: no MSSanté address given nor in the directory.
	ReasonNoAddress Reason = "no_address"
	// ReasonPaperCopy: a paper copy besides MSSanté, because the recipient did
	// not tick dématérialisation or the local directory asks for both.
	ReasonPaperCopy Reason = "paper_copy"
	// ReasonLocalPaper: the local directory says paper only.
	ReasonLocalPaper Reason = "local_paper"
	// ReasonPatientMailbox: the patient's mailbox, INS@patient.mssante.fr.
	ReasonPatientMailbox Reason = "patient_mailbox"
	// ReasonPatientNotQualified: the patient's identity is not qualified, so
	// their INS and mailbox cannot be used.
	ReasonPatientNotQualified Reason = "patient_ins_not_qualified"
	// ReasonPatientAddressMismatch: the DPI gave the patient an address that
	// is not the mailbox of their qualified INS.
	ReasonPatientAddressMismatch Reason = "patient_address_mismatch"
)

// PatientMailbox is the MSSanté mailbox of the patient whose INS is ins:
// INS@patient.mssante.fr, and "" when the identity is not qualified (then
// neither the INS nor the mailbox may be used).
func PatientMailbox(ins string, qualified bool) string {
	if !qualified || ins == "" {
		return ""
	}
	return ins + "@" + PatientMailDomain
}

// Recipient is a correspondent listed by the DPI for a report.
type Recipient struct {
	// Kind is KindProfessional, KindOrganisation or KindPatient; empty is a professional.
	Kind string
	// NationalID is the person's national id: "8" + RPPS or "0" + ADELI (a NationalID).
	NationalID string
	// FINESS identifies an organisation.
	FINESS string
	// Name is the display name.
	Name string
	// Address is the MSSanté address the DPI gave (PRT-15), if any.
	Address string
	// PostalAddress is the postal address the DPI gave, if any (the
	// patient's PID-11).
	PostalAddress PostalAddress
	// INS and INSQualified identify a patient: the mailbox INS@patient.mssante.fr
	// is used only when the identity is qualified.
	INS          string
	INSQualified bool
	// Paper is the paper policy of the hospital's rules for this recipient:
	// PaperDirectory (the default), PaperAlways or PaperNever.
	Paper string
}

// Paper policies of Recipient.Paper.
const (
	// PaperDirectory: a paper copy unless the recipient ticked
	// dématérialisation (or as the local directory says).
	PaperDirectory = "directory"
	// PaperAlways: a paper copy whenever a postal address is known.
	PaperAlways = "always"
	// PaperNever: never on paper; a recipient without MSSanté waits in review.
	PaperNever = "never"
)

// Route is one way to deliver a report to a recipient.
type Route struct {
	Channel Channel
	// Address is the MSSanté address of an mssante route (for a review route,
	// the address proposed, if any).
	Address string
	// Name is the recipient's name as the directories know it, for letters.
	Name string
	// PostalAddress is where a paper route posts to; for an MSSanté route, where
	// a paper fallback would post to (zero when unknown).
	PostalAddress PostalAddress
	// Review is true when the resolver could not decide and a secretary must.
	Review bool
	// Choices are the trusted addresses a secretary chooses among, when
	// the directories know several (or the DPI's differs from theirs).
	Choices []string
	// Reason is machine-readable (one of the Reason constants).
	Reason Reason
	// Text explains the decision to a secretary, in French.
	Text string
}

// Directory is what the resolver reads: the national directory, the trust
// space and the hospital's local directory (a *Store).
type Directory interface {
	Know(ctx context.Context, rcs []Recipient) (Known, error)
}

// Resolver decides the routes of listed recipients.
type Resolver struct {
	dir Directory
}

// NewResolver returns a Resolver reading dir.
func NewResolver(dir Directory) *Resolver { return &Resolver{dir: dir} }

// Resolve returns the routes of rc, at least one, each with its reason.
//
// The MSSanté address is, in this order: the local directory's, the DPI's
// (when it is in the trust space; otherwise a secretary reviews it), the
// national directory's only address for the person or organisation (several
// go to review). A recipient with an address gets a paper copy too when they
// did not tick dématérialisation in the national directory (or the local
// directory asks for both) and a postal address is known. A recipient without
// a usable address gets paper when a postal address is known (local
// directory, DPI, national directory, in this order), else review.
//
// A patient is sent to at INS@patient.mssante.fr when the identity is
// qualified, else on paper to the address the DPI gave, else to review. The
// caller passes the patient only when the DPI's flags send the document to
// the patient (DESTMSSANTEPAT=Y, INVISIBLE_PATIENT=N).
//
// rc.Paper changes the paper routes: PaperAlways adds a copy whenever a
// postal address is known, PaperNever drops the copies and sends to review
// what would have gone on paper only.
func (r *Resolver) Resolve(ctx context.Context, rc Recipient) ([]Route, error) {
	routes, err := r.ResolveAll(ctx, []Recipient{rc})
	if err != nil {
		return nil, err
	}
	return routes[0], nil
}

// ResolveAll returns the routes of each of rcs, as Resolve does, reading
// the directories once for all of them (Directory.Know).
func (r *Resolver) ResolveAll(ctx context.Context, rcs []Recipient) ([][]Route, error) {
	var listed []Recipient
	for _, rc := range rcs {
		if rc.Kind != KindPatient {
			listed = append(listed, rc)
		}
	}
	var known Known
	if len(listed) > 0 {
		var err error
		if known, err = r.dir.Know(ctx, listed); err != nil {
			return nil, fmt.Errorf("resolve recipients: %w", err)
		}
	}
	out := make([][]Route, len(rcs))
	for i, rc := range rcs {
		if rc.Kind == KindPatient {
			out[i] = noPaper(rc, resolvePatient(rc))
			continue
		}
		out[i] = resolveListed(rc, known)
	}
	return out, nil
}

// resolveListed returns the routes of rc, a professional or an
// organisation, from what the directories know.
func resolveListed(rc Recipient, known Known) []Route {
	f := gather(known, rc)
	mss, ok := f.electronic()
	switch {
	case ok && mss.Review:
		mss.PostalAddress, _ = f.postal(mss.Address)
		return []Route{mss}
	case ok:
		mss.PostalAddress, _ = f.postal(mss.Address)
		routes := []Route{mss}
		if paper, ok := f.paperCopy(mss.Address); ok && rc.Paper != PaperNever {
			routes = append(routes, paper)
		}
		return routes
	}
	return noPaper(rc, []Route{f.paperOnly()})
}

// noPaper turns the paper routes of rc into review routes when the rules
// never send rc on paper.
func noPaper(rc Recipient, routes []Route) []Route {
	if rc.Paper != PaperNever {
		return routes
	}
	for i, r := range routes {
		if r.Channel == ChannelPaper && !r.Review {
			routes[i].Review = true
			routes[i].Text = strings.TrimSuffix(r.Text, ".") + "; les règles de l'établissement excluent le papier pour ce document: à décider."
		}
	}
	return routes
}

// facts is what the directories know of one recipient.
type facts struct {
	rc       Recipient
	local    LocalCorrespondent
	hasLocal bool
	// localTrusted and dpiTrusted say if those addresses are in the trust space.
	localTrusted, dpiTrusted bool
	// trusted and untrusted are the national directory's mailboxes, split by trust.
	trusted, untrusted []Mailbox
}

func gather(known Known, rc Recipient) facts {
	f := facts{rc: rc}
	f.rc.Address = normalAddress(rc.Address)
	f.local, f.hasLocal = known.Local(rc.NationalID, rc.FINESS)
	for _, b := range known.Mailboxes(rc.NationalID, rc.FINESS) {
		if known.Trusted(b.Address) {
			f.trusted = append(f.trusted, b)
		} else {
			f.untrusted = append(f.untrusted, b)
		}
	}
	f.localTrusted = f.hasLocal && f.local.MSSanteAddress != "" && known.Trusted(f.local.MSSanteAddress)
	f.dpiTrusted = f.rc.Address != "" && known.Trusted(f.rc.Address)
	return f
}

// normalAddress is an address as the DPI gave it, compared and sent: trimmed
// and lower-cased.
func normalAddress(a string) string { return strings.ToLower(strings.TrimSpace(a)) }

// electronic is the MSSanté route, a review route when a secretary must
// choose, or nothing (ok false) when there is no address to use.
func (f facts) electronic() (Route, bool) {
	name := f.name()
	switch {
	case f.hasLocal && f.local.Preference == PreferencePaper:
		return Route{}, false
	case f.hasLocal && f.local.MSSanteAddress != "":
		a := f.local.MSSanteAddress
		if !f.localTrusted {
			return f.untrustedRoute(a, "de l'annuaire local"), true
		}
		return Route{Channel: ChannelMSSante, Address: a, Name: name, Reason: ReasonLocalAddress,
			Text: fmt.Sprintf("Adresse MSSanté de l'annuaire local de l'établissement (%s).", a)}, true
	case f.rc.Address != "":
		a := f.rc.Address
		known := addresses(f.trusted)
		switch {
		case !f.dpiTrusted && len(known) > 0:
			return f.untrustedRoute(a, "transmise par le DPI"), true
		case !f.dpiTrusted:
			return Route{}, false
		case len(known) == 0 || slices.Contains(known, a):
			return Route{Channel: ChannelMSSante, Address: a, Name: name, Reason: ReasonDPIAddress,
				Text: fmt.Sprintf("Adresse MSSanté transmise par le DPI (%s).", a)}, true
		default:
			return Route{Channel: ChannelMSSante, Address: a, Name: name, Reason: ReasonDPIAddressMismatch,
				Text: fmt.Sprintf("Adresse MSSanté transmise par le DPI (%s), absente de l'annuaire qui connaît %s.",
					a, strings.Join(known, ", ")), Choices: append([]string{a}, known...)}, true
		}
	}
	switch known := addresses(f.trusted); len(known) {
	case 0:
		return Route{}, false
	case 1:
		return Route{Channel: ChannelMSSante, Address: known[0], Name: name, Reason: ReasonDirectoryAddress,
			Text: fmt.Sprintf("Adresse MSSanté trouvée dans l'annuaire (%s).", known[0])}, true
	default:
		r := reviewRoute(ChannelMSSante, "", name, ReasonSeveralAddresses,
			fmt.Sprintf("L'annuaire connaît %d adresses MSSanté pour ce destinataire (%s): choisir la bonne.",
				len(known), strings.Join(known, ", ")))
		r.Choices = known
		return r, true
	}
}

// untrustedRoute is the review route of an address outside the trust space
// (from, where it comes from): it is never proposed; the directory's
// trusted address is, when it knows one.
func (f facts) untrustedRoute(a, from string) Route {
	text := fmt.Sprintf("L'adresse %s %s n'est pas dans l'espace de confiance MSSanté : rien n'y sera envoyé.", a, from)
	proposed, known := "", addresses(f.trusted)
	switch len(known) {
	case 0:
		text += " Choisissez une adresse de l'annuaire, ou envoyez par courrier."
	case 1:
		proposed = known[0]
		text += fmt.Sprintf(" Approuver envoie à l'adresse de l'annuaire, %s ; ou envoyez par courrier.", proposed)
	default:
		text += fmt.Sprintf(" L'annuaire connaît %s : choisissez-en une, ou envoyez par courrier.", strings.Join(known, ", "))
	}
	r := reviewRoute(ChannelMSSante, proposed, f.name(), ReasonUntrustedAddress, text)
	if len(known) > 1 {
		r.Choices = known
	}
	return r
}

// paperCopy is the paper route that goes with an MSSanté route to address,
// when the recipient wants paper too and a postal address is known.
func (f facts) paperCopy(address string) (Route, bool) {
	var text string
	switch {
	case f.rc.Paper == PaperAlways:
		text = "Les règles de l'établissement demandent une copie papier pour ce document."
	case f.hasLocal && f.local.Preference == PreferenceElectronic:
		return Route{}, false
	case f.hasLocal && f.local.Preference == PreferenceBoth:
		text = "L'annuaire local demande aussi une copie papier."
	case f.dematerialised(address):
		return Route{}, false
	default:
		text = "Le destinataire n'a pas coché la dématérialisation dans l'annuaire: copie papier en plus de MSSanté."
	}
	postal, ok := f.postal(address)
	if !ok {
		return Route{}, false
	}
	return Route{Channel: ChannelPaper, Name: f.name(), PostalAddress: postal, Reason: ReasonPaperCopy, Text: text}, true
}

// paperOnly is the route of a recipient that gets no MSSanté email: paper
// when a postal address is known, else review.
func (f facts) paperOnly() Route {
	reason, why := ReasonNoAddress, "Aucune adresse MSSanté connue pour ce destinataire"
	switch {
	case f.hasLocal && f.local.Preference == PreferencePaper:
		reason, why = ReasonLocalPaper, "L'annuaire local demande un envoi papier"
	case f.rc.Address != "":
		reason, why = ReasonUntrustedAddress, fmt.Sprintf("L'adresse %s transmise par le DPI n'est pas dans l'espace de confiance MSSanté", f.rc.Address)
	case len(f.untrusted) > 0:
		reason, why = ReasonUntrustedAddress, fmt.Sprintf("Les adresses de l'annuaire (%s) ne sont pas dans l'espace de confiance MSSanté",
			strings.Join(addresses(f.untrusted), ", "))
	}
	postal, ok := f.postal("")
	if !ok {
		return reviewRoute(ChannelPaper, "", f.name(), reason, why+", et aucune adresse postale: destinataire à compléter.")
	}
	return Route{Channel: ChannelPaper, Name: f.name(), PostalAddress: postal, Reason: reason, Text: why + ": envoi papier."}
}

// dematerialised reports whether the recipient ticked dématérialisation: on
// the directory entry of address, else on any of their entries. The choice
// is a professional's: an organisation's or application's mailbox has none
// and counts as dematerialised.
func (f facts) dematerialised(address string) bool {
	demat := func(b Mailbox) bool { return b.Dematerialised || b.BoxType == "ORG" || b.BoxType == "APP" }
	if i := slices.IndexFunc(f.trusted, func(b Mailbox) bool { return b.Address == address }); i >= 0 {
		return demat(f.trusted[i])
	}
	return slices.ContainsFunc(f.trusted, demat)
}

// postal is the postal address to write to: the local directory's, the
// DPI's, the national directory's structure address of the mailbox address,
// else of the first mailbox that has one.
func (f facts) postal(address string) (PostalAddress, bool) {
	if f.hasLocal && f.local.PostalAddress.Known() {
		return f.local.PostalAddress, true
	}
	if f.rc.PostalAddress.Known() {
		return f.rc.PostalAddress, true
	}
	boxes := append(slices.Clone(f.trusted), f.untrusted...)
	if i := slices.IndexFunc(boxes, func(b Mailbox) bool { return b.Address == address && b.PostalAddress.Known() }); i >= 0 {
		return boxes[i].PostalAddress, true
	}
	if i := slices.IndexFunc(boxes, func(b Mailbox) bool { return b.PostalAddress.Known() }); i >= 0 {
		return boxes[i].PostalAddress, true
	}
	return PostalAddress{}, false
}

// name is the recipient's name: the DPI's, else the local or national directory's.
func (f facts) name() string {
	switch {
	case strings.TrimSpace(f.rc.Name) != "":
		return strings.TrimSpace(f.rc.Name)
	case f.hasLocal:
		return f.local.Name()
	}
	for _, b := range append(slices.Clone(f.trusted), f.untrusted...) {
		if n := strings.TrimSpace(b.FirstName + " " + b.LastName); n != "" {
			return n
		}
		if b.OrgName != "" {
			return b.OrgName
		}
	}
	return ""
}

// resolvePatient sends to the mailbox of the patient's qualified INS. The
// address the DPI gave (PRT-15) is never used as such: when it is not that
// mailbox, a secretary reviews the delivery, with the INS's mailbox
// proposed; an identity not qualified goes to review too, with the
// patient's postal address for a paper copy.
func resolvePatient(rc Recipient) []Route {
	mailbox := PatientMailbox(rc.INS, rc.INSQualified)
	given := normalAddress(rc.Address)
	switch {
	case mailbox != "" && (given == "" || given == strings.ToLower(mailbox)):
		return []Route{{Channel: ChannelMSSante, Address: mailbox, Name: rc.Name, PostalAddress: rc.PostalAddress, Reason: ReasonPatientMailbox,
			Text: "Messagerie MSSanté du patient (identité qualifiée, INS)."}}
	case mailbox != "":
		r := reviewRoute(ChannelMSSante, mailbox, rc.Name, ReasonPatientAddressMismatch,
			fmt.Sprintf("Le DPI a donné au patient l'adresse %s, qui n'est pas la messagerie de son INS qualifié (%s) : rien n'a été envoyé ; vérifiez avant d'envoyer à la messagerie de l'INS.", given, mailbox))
		r.PostalAddress = rc.PostalAddress
		return []Route{r}
	}
	why := "L'identité du patient n'est pas qualifiée : sa messagerie MSSanté ne peut pas être utilisée"
	if !rc.PostalAddress.Known() {
		return []Route{reviewRoute(ChannelPaper, "", rc.Name, ReasonPatientNotQualified, why+", et son adresse postale est inconnue.")}
	}
	r := reviewRoute(ChannelPaper, "", rc.Name, ReasonPatientNotQualified, why+" : envoi papier à son domicile, à confirmer.")
	r.PostalAddress = rc.PostalAddress
	return []Route{r}
}

// addresses returns the addresses of boxes, without duplicates, in order.
func addresses(boxes []Mailbox) []string {
	var out []string
	for _, b := range boxes {
		if !slices.Contains(out, b.Address) {
			out = append(out, b.Address)
		}
	}
	return out
}

// reviewRoute is a route a secretary must confirm or correct.
func reviewRoute(channel Channel, address, name string, reason Reason, text string) Route {
	return Route{Channel: channel, Address: address, Name: name, Review: true, Reason: reason, Text: text}
}
