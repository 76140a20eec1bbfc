package correspondents

import (
	"context"
	"fmt"
	"strings"
)

// Channels of a route.
const (
	ChannelMSSante = "mssante"
	ChannelPaper   = "paper"
)

// Reasons of a route, machine-readable.
const (
	ReasonDPIAddress       = "dpi_address"       // the DPI's address, in the trust space
	ReasonDirectoryAddress = "directory_address" // the directory's only address for the person
	ReasonUntrustedAddress = "untrusted_address" // the address's domain is outside the trust space
	ReasonSeveralAddresses = "several_addresses" // the directory has several addresses, none given
	ReasonNoAddress        = "no_address"        // no address given nor in the directory
)

// Recipient is a correspondent listed by the DPI for a report.
type Recipient struct {
	// NationalID is the person's national id: "8" + RPPS or "0" + ADELI.
	NationalID string
	// Name is the person's display name.
	Name string
	// Address is the MSSanté address the DPI gave (PRT-15), if any.
	Address string
}

// Route is one way to deliver a report to a recipient.
type Route struct {
	Channel string
	// Address is the MSSanté address of an mssante route.
	Address string
	// Review is true when the resolver could not decide and a secretary must.
	Review bool
	// Reason is machine-readable (one of the Reason constants).
	Reason string
	// Text explains the decision to a secretary, in French.
	Text string
}

// Directory is what the resolver needs to know of the directory and trust space.
type Directory interface {
	Mailboxes(ctx context.Context, nationalID string) ([]Mailbox, error)
	Trusted(ctx context.Context, domain string) (bool, error)
}

// Resolver decides the routes of listed recipients.
type Resolver struct {
	dir Directory
}

// NewResolver returns a Resolver reading dir.
func NewResolver(dir Directory) *Resolver { return &Resolver{dir: dir} }

// Resolve returns the routes of rcpt: at least one, with its reason.
func (r *Resolver) Resolve(ctx context.Context, rcpt Recipient) ([]Route, error) {
	if addr := strings.ToLower(strings.TrimSpace(rcpt.Address)); addr != "" {
		trusted, err := r.trusted(ctx, addr)
		if err != nil {
			return nil, err
		}
		if !trusted {
			return []Route{review(ReasonUntrustedAddress,
				fmt.Sprintf("L'adresse %s transmise par le DPI n'est pas dans l'espace de confiance MSSanté.", addr))}, nil
		}
		return []Route{{Channel: ChannelMSSante, Address: addr, Reason: ReasonDPIAddress,
			Text: fmt.Sprintf("Adresse MSSanté transmise par le DPI (%s).", addr)}}, nil
	}
	if rcpt.NationalID == "" {
		return []Route{review(ReasonNoAddress, "Ni adresse MSSanté ni identifiant national: destinataire à compléter.")}, nil
	}
	boxes, err := r.dir.Mailboxes(ctx, rcpt.NationalID)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", rcpt.NationalID, err)
	}
	var trusted []Mailbox
	for _, b := range boxes {
		ok, err := r.trusted(ctx, b.Address)
		if err != nil {
			return nil, err
		}
		if ok {
			trusted = append(trusted, b)
		}
	}
	switch len(trusted) {
	case 0:
		return []Route{review(ReasonNoAddress, "Aucune adresse MSSanté connue dans l'annuaire pour ce destinataire.")}, nil
	case 1:
		return []Route{{Channel: ChannelMSSante, Address: trusted[0].Address, Reason: ReasonDirectoryAddress,
			Text: fmt.Sprintf("Adresse MSSanté trouvée dans l'annuaire (%s).", trusted[0].Address)}}, nil
	default:
		return []Route{review(ReasonSeveralAddresses,
			fmt.Sprintf("L'annuaire connaît %d adresses MSSanté pour ce destinataire: choisir la bonne.", len(trusted)))}, nil
	}
}

func (r *Resolver) trusted(ctx context.Context, address string) (bool, error) {
	_, domain, ok := strings.Cut(address, "@")
	if !ok || domain == "" {
		return false, nil
	}
	trusted, err := r.dir.Trusted(ctx, domain)
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", domain, err)
	}
	return trusted, nil
}

// review is a paper route a secretary must confirm or correct.
func review(reason, text string) Route {
	return Route{Channel: ChannelPaper, Review: true, Reason: reason, Text: text}
}
