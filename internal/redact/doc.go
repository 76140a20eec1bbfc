// Package redact owns what the logs may not carry: patient data. Logs carry
// ids and codes; a log attribute holding text from outside the service (an
// error's text, an SMTP reply, a DPI's ERR message) goes through Text, which
// masks patient addresses, NIR-shaped numbers, birth-date-shaped dates and
// the quoted field values errors repeat.
package redact
