// Package dispatch owns the domain: reports received from the DPI, the
// deliveries made of them (one per recipient and channel, each with the reason
// for its channel) and their statuses, and the River workers that resolve
// recipients and send. It never speaks HL7 or HTTP: the edges (package
// dispatch/hl7intake, package web) translate. Package dispatch/mail builds and
// transmits the emails; package letters runs the paper channel (the batches,
// the letters' PDFs), changing a delivery's status only through Transition
// and recording its batch through PutInBatch.
package dispatch
