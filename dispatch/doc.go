// Package dispatch owns the domain: reports received from the DPI, the
// deliveries made of them (one per recipient and channel, each with the reason
// for its channel) and their statuses, and the jobs that take them further
// (their args: ResolveArgs, SendArgs…). It never speaks HL7, HTTP, IMAP or
// PDF: the edges (package dispatch/hl7intake, package web, package
// dispatch/mail/ingest) translate. What comes back to the BAL applicative's
// mailbox reaches it classified (Service.AcknowledgeEmail), which it matches
// to a delivery, applies and records, with the mailbox reader's checkpoint.
// Package dispatch/worker does the jobs (resolve, send, follow up, the
// business acknowledgements), changing deliveries through the store this
// package exports (PlanReport, Release, MarkSending, InsertEvent…); package
// dispatch/mail builds and transmits the emails; package letters runs the
// paper channel (the batches, the letters' PDFs), changing a delivery's
// status only through Transition and recording its batch through
// PutInBatch; package readmodel reads for the dashboard.
package dispatch
