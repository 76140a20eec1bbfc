// Package mail builds the emails the service sends through the hospital's
// applicative mailbox (BAL applicative) and transmits them: to an outbox
// directory of .eml files, or by SMTP submission with STARTTLS or implicit TLS
// and an optional client certificate, asking for DSNs. It reads that
// mailbox over IMAP (Inbox) and classifies what comes back
// (ParseNotification): delivery status notifications, disposition
// notifications (MDN, with the MSSanté integration errors), replies. It
// knows neither the domain nor the database: package dispatch/mail/ingest
// turns what comes back into the deliveries' states.
package mail
