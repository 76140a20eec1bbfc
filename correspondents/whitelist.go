package correspondents

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
	"golang.org/x/net/idna"
)

// The MSSanté whitelist ("liste blanche", published by the ANS at
// https://espacedeconfiance.mssante.fr/listeblanchemssante.xml) looks like:
//
//	<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">
//	  <DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>
//	  <ListeDomaines>
//	    <Domaine>
//	      <Nom>ch-exemple.mssante.fr</Nom>
//	      <Description>…</Description>
//	      <DNCertificatOperateur>CN=…,OU=…,O=…,ST=…,C=FR</DNCertificatOperateur>
//	      <ResponsableContact>…</ResponsableContact>
//	      <SupportContact>…</SupportContact>
//	      <DateMAJ>2024-06-07T10:24:42Z</DateMAJ>
//	    </Domaine>
//	    …
//	  </ListeDomaines>
//	  <Signature xmlns="http://www.w3.org/2000/09/xmldsig#">…</Signature>
//	</ListeBlancheMSSante>
//
// A domain served by several operator certificates has one Domaine per
// certificate, so names repeat. The enveloped XML signature is not checked
// here.

// maxWhitelistSize bounds the XML read by ParseWhitelist; the published file is about 4 MB.
const maxWhitelistSize = 64 << 20

// ErrInvalidDomain is wrapped by the errors of NormaliseDomain.
var ErrInvalidDomain = errors.New("invalid domain name")

// ParseWhitelist reads the trust-space domains of the MSSanté whitelist XML (//Domaine/Nom), normalised by NormaliseDomain, sorted and without duplicates.
//
// It fails if the root element is not ListeBlancheMSSante (in any
// namespace), if the document holds no Domaine, if a Domaine does not have
// exactly one Nom, or if a Nom is not a valid domain name: the whitelist
// decides what is MSSanté, so it is taken whole or not at all.
func ParseWhitelist(r io.Reader) ([]string, error) {
	return parseWhitelist(r, maxWhitelistSize)
}

// parseWhitelist is ParseWhitelist with a size limit in bytes.
func parseWhitelist(r io.Reader, limit int64) ([]string, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.CharsetReader = utf8Only
	lr := &io.LimitedReader{R: r, N: limit + 1}
	_, err := doc.ReadFrom(lr)
	if lr.N <= 0 {
		return nil, fmt.Errorf("whitelist: larger than %d bytes", limit)
	}
	if err != nil {
		return nil, fmt.Errorf("whitelist: %w", err)
	}
	root := doc.Root()
	if root == nil {
		return nil, errors.New("whitelist: no root element")
	}
	if root.Tag != "ListeBlancheMSSante" {
		return nil, fmt.Errorf("whitelist: root element is %q, want ListeBlancheMSSante", root.Tag)
	}
	seen := make(map[string]struct{})
	for i, d := range root.FindElements("//Domaine") {
		noms := d.SelectElements("Nom")
		if len(noms) != 1 {
			return nil, fmt.Errorf("whitelist: Domaine %d: %d Nom elements, want 1", i+1, len(noms))
		}
		name, err := NormaliseDomain(noms[0].Text())
		if err != nil {
			return nil, fmt.Errorf("whitelist: Domaine %d: %w", i+1, err)
		}
		seen[name] = struct{}{}
	}
	if len(seen) == 0 {
		return nil, errors.New("whitelist: no Domaine")
	}
	domains := make([]string, 0, len(seen))
	for d := range seen {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	return domains, nil
}

// utf8Only accepts the UTF-8 encoding declarations and refuses the others rather than misread the names.
func utf8Only(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "utf8":
		return input, nil
	}
	return nil, fmt.Errorf("encoding %q not supported, want UTF-8", charset)
}

// domainProfile is the IDNA profile of NormaliseDomain: the lookup mapping
// of UTS #46 (case folding, NFC, full-width and compatibility forms, the
// ideographic full stops as dots), the label checks of RFC 5891 (hyphens,
// joiners, STD3 characters), the Bidi rule of RFC 5893 and the DNS lengths.
// It is spelled out rather than idna.Lookup, whose configuration "may change
// over time" and which does not check lengths: the form it gives is stored
// and compared, so it must not move under us.
//
// It is non-transitional: ß (like ς and the ZWJ/ZWNJ joiners) stays itself,
// "straße.de" is xn--strae-oqa.de, not strasse.de. That is IDNA2008, where
// ß is a letter of its own, as registries such as DENIC, current browsers
// and x/net's own Lookup (since Go 1.18, golang.org/issue/47510) apply it;
// UTS #46 has deprecated transitional processing since Unicode 15.1. The
// whitelist's names are lower-case ASCII in practice, but the addresses
// compared with them come from people and DPIs: the two names can belong to
// different owners, and mapping ß to "ss" would trust a domain the ANS never
// listed.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.VerifyDNSLength(true),
)

// NormaliseDomain returns a domain name in the lower-case ASCII form used to compare domains: trimmed, without a trailing dot, with Unicode labels converted to their "xn--" Punycode form.
//
// The conversion is golang.org/x/net/idna's with domainProfile: UTS #46
// lookup mapping and IDNA2008 label validation, non-transitional (ß stays
// ß). Every label must then be 1 to 63 bytes and the name at most 253. The
// mapping tables follow the Unicode version of the Go toolchain. Errors wrap
// ErrInvalidDomain.
func NormaliseDomain(d string) (string, error) {
	s := strings.TrimSpace(d)
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w %q: not UTF-8", ErrInvalidDomain, d)
	}
	// The root's trailing dot goes, in any of the forms UTS #46 maps to '.'.
	switch r, size := utf8.DecodeLastRuneInString(s); r {
	case '.', '\u3002', '\uff0e', '\uff61':
		s = s[:len(s)-size]
	}
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidDomain)
	}
	ascii, err := domainProfile.ToASCII(s)
	if strings.HasSuffix(ascii, ".") {
		// A second trailing dot ("a.fr.."): an empty last label, which the
		// profile refuses only from Unicode 16 on.
		err = errors.New("empty label")
	}
	if err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrInvalidDomain, d, err)
	}
	return ascii, nil
}
