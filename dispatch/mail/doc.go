// Package mail builds the emails the service sends through the hospital's
// applicative mailbox (BAL applicative) and transmits them: to an outbox
// directory of .eml files, or by SMTP submission with STARTTLS or implicit TLS
// and an optional client certificate. Later: IMAP polling and DSN/MDN parsing.
package mail
