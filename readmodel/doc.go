// Package readmodel answers what the dashboard and the REST API read,
// straight from the database: the secretaries' worklists and the search of
// all deliveries with their counts (and the metric mssdispatch_worklist), a
// report with its recipients, deliveries and timeline, the statistics of
// the Hop'En dematerialisation rate, the adoption campaign, a report and
// its deliveries as the DPI sees them (by id or document id), and the
// types of document received, for the rules screen. It never changes a
// delivery: the domain (package dispatch) does, and its state machine says
// which actions a row offers. Every read of patient data is in the audit
// log, in the transaction that serves it.
package readmodel
