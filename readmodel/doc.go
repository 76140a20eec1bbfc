// Package readmodel answers what the dashboard reads, straight from the
// database: the secretaries' worklists and the search of all deliveries
// with their counts (and the metric mssdispatch_worklist), a report with
// its recipients, deliveries and timeline, the statistics of the Hop'En
// dematerialisation rate, and the adoption campaign. It never changes a
// delivery: the domain (package dispatch) does, and its state machine says
// which actions a row offers. Every read of patient data is in the audit
// log, in the transaction that serves it.
package readmodel
