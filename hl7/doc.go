// Package hl7 owns the HL7 v2 wire format used by the intake: the message
// model (segments, fields, repetitions, components, sub-components), a
// tolerant parser for the ER7 "pipe" encoding as sent by hospital EHRs, the
// encoder, escape sequences, character sets (MSH-18), the technical
// acknowledgement (ACK with MSA and ERR, HL7 table 0357, coding system
// messageErrorCondition as the volet writes it) and the business
// acknowledgement (ZAM).
//
// It knows nothing about MLLP transport (see package mllp) nor about the
// meaning of ORU/MDM messages for MSSanté: callers read fields by number, or
// through the typed views of segments.go (PID, OBX, TXA, PRT...), which name
// the fields and components of HL7 v2.5/2.6 (PRT as pre-adopted from v2.9).
//
// # Parsing rules
//
// Parse accepts what real feeds send when the meaning is clear and rejects
// the rest with a *ParseError carrying a table 0357 code:
//
//   - Segments may end with "\r" (the standard), "\n" or "\r\n"; blank lines,
//     lines made only of control characters or spaces, a leading byte order
//     mark and leading whitespace are ignored.
//   - The message must start with MSH; the encoding characters come from
//     MSH-1 and MSH-2 (four characters, or five with the v2.7 truncation
//     character). Segment names are three characters, an upper-case letter
//     followed by upper-case letters or digits.
//   - A line that is not a segment but continues a long base64 run of the
//     previous segment (a base64 payload wrapped at 64 or 76 columns, seen in
//     OBX-5) is joined to it without the line break.
//   - MSH-18 selects the character set: "8859/1" … "8859/9" and "8859/15" are
//     decoded with golang.org/x/text; "UNICODE UTF-8", "UNICODE", "UTF-8" and
//     "ASCII" mean UTF-8. When the label (or ParseOptions.DefaultCharset, used
//     when MSH-18 is empty) says UTF-8 but the bytes are not valid UTF-8, the
//     message is decoded as ISO-8859-1 instead: feeds that lie about their
//     charset are almost always Latin-1, and every byte sequence is valid
//     Latin-1. An unknown MSH-18 is an error (code 102 on MSH-18).
//   - Values are unescaped: \F\ \S\ \T\ \R\ \E\ (and \P\ when a truncation
//     character is declared) give back the delimiter, \Xhh…\ gives bytes
//     decoded in the message charset, \.br\ gives "\n", \H\ and \N\
//     (highlighting) are dropped, any other escape is kept literally.
//   - A NUL character (0x00) in a segment, raw or decoded from \X..\, is an
//     error (code 102, located at its segment and field): no text field can
//     hold it (PostgreSQL refuses it). NULs in what Parse ignores anyway
//     (before MSH, in blank lines) are ignored with it.
//
// When Parse cannot read MSH itself, it returns no message; SalvageHeader
// then recovers what it can of the header so that the ACK still mirrors the
// sender.
//
// All values in a parsed Message are UTF-8. The parser returns a canonical
// form: empty fields, repetitions and components are nil, and trailing empty
// fields, repetitions, components and sub-components are dropped, so that
// Parse(Encode(m)) equals m.
package hl7
