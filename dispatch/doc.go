// Package dispatch owns the domain: reports received from the DPI, the
// deliveries made of them (one per recipient and channel, each with the reason
// for its channel) and their statuses, their planning under a rule set
// (PlanReport; Replan, which writes nothing, for a dry run), and the jobs
// that take them further (their args: ResolveArgs, SendArgs…). It never
// speaks HL7, HTTP, IMAP or PDF: the edges (package dispatch/hl7intake,
// package web, package dispatch/mail/ingest) translate. What comes back to
// the BAL applicative's mailbox reaches it as the acknowledgement of a
// delivery (Service.Acknowledge): the mailbox's reader finds the delivery,
// records the message and keeps its checkpoint. Package dispatch/worker does the
// jobs (resolve, send, follow up, the business acknowledgements), changing
// deliveries through the store this package exports (PlanReport, Release,
// MarkSending, InsertEvent…); package dispatch/mail builds and transmits
// the emails; package letters runs the paper channel (the batches, the
// letters' PDFs), changing a delivery's status only through Transition and
// recording its batch through PutInBatch; package readmodel reads for the
// dashboard and the REST API; package dispatch/desk holds what people do
// to a delivery (approve, hold, cancel, resend, edit its recipient…),
// through the same store (Act, Transition, Release…); package
// dispatch/quarantine lists the messages Service.Reject keeps and acts on
// them; package dispatch/retention purges what is past its retention
// period; package dispatch/ruleset keeps the CME's rules, gives the ones
// in force to the resolve job, and runs the dry run of a proposal.
package dispatch
