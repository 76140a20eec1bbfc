package hl7

import (
	"strconv"
	"strings"
	"time"
)

// Acknowledgment codes (HL7 table 0008) for MSA-1.
const (
	AckAccept = "AA" // message accepted
	AckError  = "AE" // message rejected for an error in its content; do not resend as is
	AckReject = "AR" // message rejected for now (a circumstance): it may be sent again later
)

// Error codes of HL7 table 0357 (message error condition codes) for ERR-3 and ParseError.Code.
const (
	CodeAccepted                = 0   // message accepted
	CodeSegmentSequence         = 100 // segment sequence error
	CodeRequiredField           = 101 // required field missing
	CodeDataType                = 102 // data type error
	CodeTableValue              = 103 // table value not found
	CodeValueTooLong            = 104 // value too long (v2.6)
	CodeUnsupportedMessageType  = 200 // unsupported message type
	CodeUnsupportedEvent        = 201 // unsupported event code
	CodeUnsupportedProcessingID = 202 // unsupported processing ID
	CodeUnsupportedVersion      = 203 // unsupported version ID
	CodeUnknownKey              = 204 // unknown key identifier
	CodeDuplicateKey            = 205 // duplicate key identifier
	CodeRecordLocked            = 206 // application record locked
	CodeInternal                = 207 // application internal error
)

// messageErrorSystem is the coding system of ERR-3 (HL7 table 0357) as the
// volet writes it ("203^Unsupported version^messageErrorCondition").
const messageErrorSystem = "messageErrorCondition"

// ErrorCodeText returns the HL7 table 0357 text of code, "" for an unknown code.
func ErrorCodeText(code int) string {
	switch code {
	case CodeAccepted:
		return "Message accepted"
	case CodeSegmentSequence:
		return "Segment sequence error"
	case CodeRequiredField:
		return "Required field missing"
	case CodeDataType:
		return "Data type error"
	case CodeTableValue:
		return "Table value not found"
	case CodeValueTooLong:
		return "Value too long"
	case CodeUnsupportedMessageType:
		return "Unsupported message type"
	case CodeUnsupportedEvent:
		return "Unsupported event code"
	case CodeUnsupportedProcessingID:
		return "Unsupported processing id"
	case CodeUnsupportedVersion:
		return "Unsupported version id"
	case CodeUnknownKey:
		return "Unknown key identifier"
	case CodeDuplicateKey:
		return "Duplicate key identifier"
	case CodeRecordLocked:
		return "Application record locked"
	case CodeInternal:
		return "Application internal error"
	}
	return ""
}

// ErrDetail is one ERR segment.
type ErrDetail struct {
	Segment  string // ERR-2.1 segment ID of the error location ("" for no location)
	Sequence int    // ERR-2.2 1-based position of that segment in the message (0 if unknown)
	Field    int    // ERR-2.3 field number (0 if the whole segment)
	Code     int    // ERR-3 HL7 table 0357 code (coding system messageErrorCondition, as the volet writes it)
	Severity string // ERR-4 "E" (error), "W" (warning) or "I" (information); "" means "E"
	Msg      string // ERR-8 user message
}

// ackTimeLayout is the MSH-7 format of acknowledgements (YYYYMMDDHHMMSS).
const ackTimeLayout = "20060102150405"

// NewACK builds the technical acknowledgement (ACK, v2.5 style) of orig, whose
// MSH-10 goes to MSA-2.
//
// The header mirrors orig: MSH-3/4 take orig MSH-5/6 and MSH-5/6 take orig
// MSH-3/4, MSH-9 is ACK^<orig event>^ACK, MSH-11 and MSH-12 repeat orig's
// processing ID (default "P") and version (default "2.5"), MSH-17 repeats the
// country code; MSH-7 is now, MSH-10 is controlID and MSH-18 "UNICODE UTF-8".
// Each ErrDetail becomes an ERR segment. orig may be nil or partial: the
// message Parse returns with a *ParseError, or when Parse returns none,
// SalvageHeader(raw), whose MSA-2 is then ControlIDOf(raw).
func NewACK(orig *Message, ackCode, controlID string, now time.Time, errs ...ErrDetail) *Message {
	return newACK(orig, orig.ControlID(), ackCode, controlID, now, errs)
}

// NewACKFor builds the acknowledgement of a message of which only the control
// ID is known: generic header, MSA-2 = origControlID. For raw input Parse
// rejected without a message, NewACK(SalvageHeader(raw), …) mirrors more of
// the sender's header.
func NewACKFor(origControlID, ackCode, controlID string, now time.Time, errs ...ErrDetail) *Message {
	return newACK(nil, origControlID, ackCode, controlID, now, errs)
}

func newACK(orig *Message, origControlID, ackCode, controlID string, now time.Time, errs []ErrDetail) *Message {
	om := orig.msh() // nil-safe: accessors of a nil segment are empty
	_, event, _ := orig.Type()
	processing := Field{om.Field(11).Rep(0)}.Clone() // first repetition: ID^mode
	if om.Get(11) == "" {
		processing = Text("P")
	}
	version := om.Get(12)
	if version == "" {
		version = "2.5"
	}

	msh := NewSegment("MSH")
	msh.Set(1, Text(string(DefaultDelimiters.Field)))
	msh.Set(2, Text(DefaultDelimiters.encodingChars()))
	msh.Set(3, om.Field(5).Clone())
	msh.Set(4, om.Field(6).Clone())
	msh.Set(5, om.Field(3).Clone())
	msh.Set(6, om.Field(4).Clone())
	msh.Set(7, Text(now.Format(ackTimeLayout)))
	msh.Set(9, Comps("ACK", event, "ACK"))
	msh.Set(10, Text(controlID))
	msh.Set(11, processing)
	msh.Set(12, Text(version))
	msh.Set(17, om.Field(17).Clone())
	msh.Set(18, Text(CharsetUTF8))

	msa := NewSegment("MSA")
	msa.Set(1, Text(ackCode))
	if origControlID != "" {
		msa.Set(2, Text(origControlID)) // Set(2, nil) would leave a trailing empty field
	}

	ack := &Message{Delims: DefaultDelimiters, Charset: CharsetUTF8}
	ack.Add(msh)
	ack.Add(msa)
	for _, e := range errs {
		ack.Add(e.segment())
	}
	return ack
}

// Location is ERR-2 as text, e.g. "PID^1^3" (segment, sequence, field),
// "" when e has no location: where the error is, without the value.
func (e ErrDetail) Location() string { return strings.Join(e.location(), "^") }

// location is the components of ERR-2, nil when e has no location.
func (e ErrDetail) location() []string {
	if e.Segment == "" {
		return nil
	}
	loc := []string{e.Segment, "", ""}
	if e.Sequence > 0 {
		loc[1] = strconv.Itoa(e.Sequence)
	}
	if e.Field > 0 {
		loc[2] = strconv.Itoa(e.Field)
	}
	return loc
}

// segment returns the ERR segment (v2.5) describing e.
func (e ErrDetail) segment() *Segment {
	err := NewSegment("ERR")
	if loc := e.location(); loc != nil {
		err.Set(2, Comps(loc...))
	}
	err.Set(3, Comps(strconv.Itoa(e.Code), ErrorCodeText(e.Code), messageErrorSystem))
	sev := e.Severity
	if sev == "" {
		sev = "E"
	}
	err.Set(4, Text(sev))
	err.Set(8, Text(e.Msg))
	return err
}

// maxControlIDLen bounds, in bytes, each value SalvageHeader keeps, so what
// ControlIDOf returns, and the MSH-10 of a ZAM (MSH-10 is at most 199
// characters in v2.7).
const maxControlIDLen = 199

// ControlIDOf returns, best effort, MSH-10 of raw input that Parse rejected, for
// MSA-2 of the acknowledgement: the MSH-10 of SalvageHeader(raw), "" when raw
// holds no MSH segment or no MSH-10. Escape sequences are not decoded and
// non-printable characters are dropped.
func ControlIDOf(raw []byte) string {
	return SalvageHeader(raw).ControlID()
}
