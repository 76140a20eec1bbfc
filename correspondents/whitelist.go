package correspondents

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/beevik/etree"
	"golang.org/x/text/unicode/norm"
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

// NormaliseDomain returns a domain name in the lower-case ASCII form used to compare domains: trimmed, without a trailing dot, with Unicode labels converted to their "xn--" Punycode form.
//
// Unicode labels are lower-cased and put in Unicode normalisation form C
// before Punycode encoding (RFC 3492). This covers the accented letters of
// French names; it is not a full UTS #46 mapping (no compatibility or
// special case mappings such as ß). Every label must then be 1 to 63
// letters, digits or hyphens not starting or ending with a hyphen, and the
// name at most 253 bytes. Errors wrap ErrInvalidDomain.
func NormaliseDomain(d string) (string, error) {
	s := strings.TrimSpace(d)
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w %q: not UTF-8", ErrInvalidDomain, d)
	}
	// The ideographic and full-width full stops separate labels too (UTS #46).
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\u3002', '\uff0e', '\uff61':
			return '.'
		}
		return r
	}, s)
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidDomain)
	}
	s = norm.NFC.String(strings.ToLower(s))
	labels := strings.Split(s, ".")
	for i, label := range labels {
		ascii, err := labelToASCII(label)
		if err != nil {
			return "", fmt.Errorf("%w %q: %w", ErrInvalidDomain, d, err)
		}
		labels[i] = ascii
	}
	s = strings.Join(labels, ".")
	if len(s) > 253 {
		return "", fmt.Errorf("%w %q: longer than 253 bytes", ErrInvalidDomain, d)
	}
	return s, nil
}

// labelToASCII checks one lower-cased label and encodes it with Punycode if it is not ASCII.
func labelToASCII(label string) (string, error) {
	switch {
	case label == "":
		return "", errors.New("empty label")
	case label[0] == '-' || label[len(label)-1] == '-':
		return "", fmt.Errorf("label %q starts or ends with a hyphen", label)
	case utf8.RuneCountInString(label) > 63:
		return "", fmt.Errorf("label %q longer than 63 characters", label)
	}
	ascii := true
	for _, r := range label {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)):
			ascii = false
		default:
			return "", fmt.Errorf("label %q has character %q", label, r)
		}
	}
	if ascii {
		return label, nil
	}
	enc, err := punycodeEncode(label)
	if err != nil {
		return "", fmt.Errorf("label %q: %w", label, err)
	}
	enc = "xn--" + enc
	if len(enc) > 63 {
		return "", fmt.Errorf("label %q longer than 63 bytes once encoded", label)
	}
	return enc, nil
}

// Punycode parameters (RFC 3492, section 5).
const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
	pcMaxDelta    = 1<<31 - 1
)

// punycodeEncode encodes a string with Punycode (RFC 3492, section 6.3), without the "xn--" prefix.
func punycodeEncode(input string) (string, error) {
	runes := []rune(input)
	out := make([]byte, 0, len(input)+8)
	for _, r := range runes {
		if r < 0x80 {
			out = append(out, byte(r))
		}
	}
	b := len(out)
	h := b
	if b > 0 {
		out = append(out, '-')
	}
	n, delta, bias := rune(pcInitialN), int64(0), int64(pcInitialBias)
	for h < len(runes) {
		m := rune(unicode.MaxRune + 1)
		for _, r := range runes {
			if r >= n && r < m {
				m = r
			}
		}
		delta += int64(m-n) * int64(h+1)
		if delta > pcMaxDelta {
			return "", errors.New("punycode overflow")
		}
		n = m
		for _, r := range runes {
			if r < n {
				delta++
				if delta > pcMaxDelta {
					return "", errors.New("punycode overflow")
				}
			}
			if r != n {
				continue
			}
			q := delta
			for k := int64(pcBase); ; k += pcBase {
				t := min(max(k-bias, pcTMin), pcTMax)
				if q < t {
					break
				}
				out = append(out, punycodeDigit(t+(q-t)%(pcBase-t)))
				q = (q - t) / (pcBase - t)
			}
			out = append(out, punycodeDigit(q))
			bias = punycodeAdapt(delta, int64(h+1), h == b)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(out), nil
}

// punycodeAdapt is the bias adaptation function of RFC 3492, section 6.1.
func punycodeAdapt(delta, numPoints int64, first bool) int64 {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := int64(0)
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}

// punycodeDigit returns the lower-case basic code point of a digit value (0 to 35).
func punycodeDigit(d int64) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}
