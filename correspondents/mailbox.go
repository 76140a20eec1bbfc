package correspondents

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidMailbox is wrapped by the errors of ParseMailbox.
var ErrInvalidMailbox = errors.New("adresse de messagerie invalide")

// maxLocalPart is the longest local part of a mailbox (RFC 5321 4.5.3.1.1).
const maxLocalPart = 64

// ParseMailbox checks that s is one RFC 5321 mailbox, local@domain, and
// returns it in the form addresses are stored and compared in: trimmed,
// lower-cased, the domain in its ASCII form (NormaliseDomain). The local
// part is a dot-string of the atom characters of RFC 5321 (letters,
// digits and !#$%&'*+-/=?^_`{|}~, dots between them), at most 64 bytes;
// quoted local parts, spaces, control characters, a second @ or a
// display name are refused, so that an address can never smuggle a header
// line or a second recipient into an email. Errors wrap ErrInvalidMailbox
// and say what is wrong, without repeating the address.
func ParseMailbox(s string) (string, error) {
	s = strings.TrimSpace(s)
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case s == "":
		return "", fmt.Errorf("%w : vide", ErrInvalidMailbox)
	case !ok || local == "" || domain == "":
		return "", fmt.Errorf("%w : local@domaine attendu", ErrInvalidMailbox)
	case strings.Contains(domain, "@"):
		return "", fmt.Errorf("%w : plus d'un @", ErrInvalidMailbox)
	case len(local) > maxLocalPart:
		return "", fmt.Errorf("%w : plus de %d caractères avant @", ErrInvalidMailbox, maxLocalPart)
	}
	for _, part := range strings.Split(local, ".") {
		if part == "" {
			return "", fmt.Errorf("%w : un point au début, à la fin ou doublé avant @", ErrInvalidMailbox)
		}
		for _, r := range part {
			if !isAtext(r) {
				return "", fmt.Errorf("%w : caractère %q interdit avant @", ErrInvalidMailbox, printable(r))
			}
		}
	}
	if strings.ContainsFunc(domain, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }) {
		return "", fmt.Errorf("%w : espace ou caractère de contrôle dans le domaine", ErrInvalidMailbox)
	}
	d, err := NormaliseDomain(domain)
	if err != nil {
		return "", fmt.Errorf("%w : %w", ErrInvalidMailbox, err)
	}
	if !strings.Contains(d, ".") {
		return "", fmt.Errorf("%w : domaine sans point", ErrInvalidMailbox)
	}
	return strings.ToLower(local) + "@" + d, nil
}

// isAtext reports whether r may stand in an atom of RFC 5322 (atext).
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// printable shows r in an error: a control character by its code.
func printable(r rune) string {
	if r < 0x20 || r == 0x7f {
		return fmt.Sprintf("U+%04X", r)
	}
	return string(r)
}
