// Package mllp owns the Minimal Lower Layer Protocol (HL7 v2 transport over
// TCP): framing (0x0B, message, 0x1C 0x0D), a Server shaped like
// net/http.Server that hands each framed message to a Handler and writes back
// its acknowledgement, within bounds on the connections it serves and on the
// bytes they buffer, and a Client that sends a message and waits for the
// response frame, dialing lazily and reconnecting after a broken connection,
// and saying in its errors whether a message may have been delivered.
//
// The package is content-agnostic: it moves bytes and never parses nor logs
// HL7 content (only sizes, remote addresses and errors).
package mllp
