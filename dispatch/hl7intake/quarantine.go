package hl7intake

import (
	"slices"
	"strings"

	"github.com/mssdispatch/mssdispatch/hl7"
)

// This file reads what the quarantine shows of a refused message, so that a
// secretary recognises it: whom it is about and what it carries, as far as
// the message can be read.

// patientOf names the patient of msg for people: "DUPONT Marie · né(e) le
// 15/01/1980 · IPP 123", as far as PID gives it; "" without a name or an IPP.
func patientOf(msg *hl7.Message) string {
	pid := hl7.PID{Segment: msg.Segment("PID")}
	family, given := legalName(pid)
	name := strings.TrimSpace(family + " " + given)
	var ipp string
	for _, id := range pid.Identifiers() {
		if norm(id.TypeCode) == "PI" && strings.TrimSpace(id.ID) != "" {
			ipp = strings.TrimSpace(id.ID)
			break
		}
	}
	if name == "" && ipp == "" {
		return ""
	}
	var parts []string
	if name != "" {
		parts = append(parts, name)
	}
	if born := frenchDate(pid.BirthDate()); born != "" {
		parts = append(parts, "né(e) le "+born)
	}
	if ipp != "" {
		parts = append(parts, "IPP "+ipp)
	}
	return strings.Join(parts, " · ")
}

// legalName returns the family and given names of PID-5: the legal name
// (type L) when there is one, else the first.
func legalName(pid hl7.PID) (family, given string) {
	names := pid.Names()
	if i := slices.IndexFunc(names, func(n hl7.XPN) bool { return norm(n.TypeCode) == "L" }); i > 0 {
		names = names[i:]
	}
	if len(names) == 0 {
		return "", ""
	}
	return strings.TrimSpace(names[0].Family), strings.TrimSpace(names[0].Given)
}

// documentOf names the document of msg for people, "Lettre de sortie du
// 12/03/2024": its type as the document's OBX-3, TXA-2 or OBR-4 says it
// (text, else code), and its date (TXA-4, else OBR-7); "" when none.
func documentOf(msg *hl7.Message) string {
	types := []hl7.CE{hl7.TXA{Segment: msg.Segment("TXA")}.DocumentType(), hl7.OBR{Segment: msg.Segment("OBR")}.UniversalServiceID()}
	if docs := documentOBXs(msg); len(docs) > 0 {
		types = slices.Insert(types, 0, hl7.OBX{Segment: docs[0].Segment}.Identifier())
	}
	var title string
	for _, t := range types {
		if title = strings.TrimSpace(t.Text); title != "" {
			break
		}
	}
	for _, t := range types {
		if title != "" {
			break
		}
		title = strings.TrimSpace(t.Identifier)
	}
	date := frenchDate(msg.Segment("TXA").Get(4))
	if date == "" {
		date = frenchDate(msg.Segment("OBR").Get(7))
	}
	switch {
	case title == "" && date == "":
		return ""
	case title == "":
		return "document du " + date
	case date == "":
		return title
	}
	return title + " du " + date
}

// frenchDate shows the date of an HL7 DTM (YYYYMMDD…) as DD/MM/YYYY; "" when
// it does not start with eight digits.
func frenchDate(dtm string) string {
	d := strings.TrimSpace(dtm)
	if len(d) < 8 || strings.Trim(d[:8], "0123456789") != "" {
		return ""
	}
	return d[6:8] + "/" + d[4:6] + "/" + d[0:4]
}
