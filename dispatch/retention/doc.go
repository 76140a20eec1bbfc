// Package retention is the periodic job that purges the patient data kept
// past its retention period: the bytes of the documents no delivery needs
// any more (it reads the domain's reports, deliveries and their follow-ups,
// and keeps a document while the state machine may still send or print
// it), the raw bytes of the quarantined messages, and the audit log's old
// entries. Reports, deliveries, their history and the quarantine's reasons
// stay. AddPurge registers it; the command schedules PurgeArgs.
package retention
