// Package mtatest runs a real mail server for end-to-end tests: Debian's
// Postfix for SMTP submission (STARTTLS and a TLS client certificate from a
// test CA required, RFC 3461 DSN parameters, real RFC 3464 delivery status
// notifications) and Debian's Dovecot for IMAP with STARTTLS, both
// configured in a private temporary directory, listening on free loopback
// ports, started by Start and stopped when the test ends.
//
// Mail to an existing mailbox is delivered to its Maildir (a success DSN if
// NOTIFY=SUCCESS was asked); mail to an unknown address of a served domain
// is accepted at RCPT time and then bounced by Postfix with a failure DSN;
// mail to DeferDomain is deferred forever, so a delay DSN follows. All DSNs
// go to the envelope sender, itself a local mailbox (the BAL applicative).
//
// Several servers may run at once, in one test binary or in several: each
// has its own directory, ports, pid files and sockets, and none touches the
// machine's own Postfix or Dovecot configuration or services.
//
// The harness needs root (Postfix's master daemon refuses to run otherwise)
// and the packages postfix and dovecot-imapd, which .ci/run installs.
package mtatest
