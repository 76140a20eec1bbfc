// Package ingest reads what comes back to the BAL applicative's mailbox and
// hands it to the domain. One instance at a time (a PostgreSQL advisory
// lock; the others try again every LockRetry) reads the mailbox over IMAP
// (mail.Inbox) and classifies each message (mail.ParseNotification) into the
// acknowledgement it makes: a DSN delivered, failed or delayed, an MDN
// displayed or processed, or with an MSSanté integration error (900–906), a
// reply. Its Ledger finds the delivery a message concerns (by the DSN's
// envelope id, checked against its recipient, else by the Message-ID the
// message answers), has the domain apply the acknowledgement (Domain, a
// *dispatch.Service: Acknowledge), records the message in
// mail_notifications, reads the delay of the first acknowledgement of each
// kind, and keeps the mailbox's checkpoint in the database; what concerns
// no delivery goes to the unknown folder. Its metrics are
// mssdispatch_notifications_total{kind,outcome} and
// mssdispatch_ack_delay_seconds{ack}.
//
// It sits beside package mail rather than in it: mail builds the domain's
// emails, so the domain imports it and mail cannot name the domain's
// acknowledgements, and mail knows no database, where the lock is taken
// and the messages and the checkpoint are kept. The domain does not import
// it: it sees only Acknowledge.
package ingest
