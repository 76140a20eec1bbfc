package redact_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/redact"
)

func TestText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		// Patient addresses, as an SMTP server echoes them.
		{"550 5.1.1 <279035121518989@patient.mssante.fr>: Recipient address rejected: User unknown",
			"550 5.1.1 <[adresse patient]>: Recipient address rejected: User unknown"},
		{"RCPT TO:<280017512345678@Patient.MSSante.FR> refused", "RCPT TO:<[adresse patient]> refused"},
		{"to marie.dupont@patient.mssante.fr, then x@ch.mssante.fr", "to [adresse patient], then x@ch.mssante.fr"},
		{`"marie dupont"@patient.mssante.fr`, "[adresse patient]"},
		{"the domain @patient.mssante.fr alone", "the domain [adresse patient] alone"},
		{"patient.mssante.fr is the patients' domain", "patient.mssante.fr is the patients' domain"},
		// NIRs: 15 and 13 digits, spaced, Corsica, temporary (7, 8).
		{"PID-3 280017512345678 is not the CDA's 279035121518989", "PID-3 [NIR] is not the CDA's [NIR]"},
		{"INS 2800175123456 without key", "INS [NIR] without key"},
		{"NIR 2 80 01 75 123 456 78.", "NIR [NIR]."},
		{"NIR 1 85 07 2A 123 987 65, 2 99 12 2b 123 000, 29912 2B12300 0, 280017512345678", "NIR [NIR], [NIR], 29912 2B12300 0, [NIR]"},
		{"2800175123456 78, 280012A12345678, 28001 2A 123456 78", "[NIR], [NIR], 28001 2A 123456 78"},
		{"NIA 780017512345678 and 880017512345678", "NIA [NIR] and [NIR]"},
		{"280017512345678^^^1.2.250.1.213.1.4.10&ISO^INS", "[NIR]^^^1.2.250.1.213.1.4.10&ISO^INS"},
		{"ins_280017512345678", "ins_[NIR]"},
		// Not NIRs: other lengths and first digits, ids, codes, RPPS.
		{"550 5.1.1 delivery 12345 job 987654321", "550 5.1.1 delivery 12345 job 987654321"},
		{"RPPS 10003456789, 899900000002", "RPPS 10003456789, 899900000002"},
		{"380017512345678 2800175123456789 28001751234567", "380017512345678 2800175123456789 28001751234567"},
		{"127.0.0.1:54321 took 1.5s", "127.0.0.1:54321 took 1.5s"},
		// Dates a birth date is written as.
		{"PID-7 19800115 invalid", "PID-7 [date] invalid"},
		{"born 1980-01-15, 15/01/1980, 15.01.1980", "born [date], [date], [date]"},
		{"PID-7 198001150000 and 19800115000000", "PID-7 [date] and [date]"},
		{"1980-01-15T00:00:00Z, 1980-01-15 00:00:00 +0000 UTC", "[date]T00:00:00Z, [date] 00:00:00 +0000 UTC"},
		// Timestamps with a time of day stay; so do other 8-digit numbers.
		{"x509: certificate has expired: current time 2026-03-01T10:04:05Z is after 2026-02-28T23:59:59Z",
			"x509: certificate has expired: current time 2026-03-01T10:04:05Z is after 2026-02-28T23:59:59Z"},
		{"MSH-7 20260301100405, le 01/03/2026 10:04", "MSH-7 20260301100405, le 01/03/2026 10:04"},
		{"id 12345678, 19801315, 18991231, 1980011", "id 12345678, 19801315, 18991231, 1980011"},
		// Quoted values, as our errors quote fields (%q) and French quotes.
		{`OBX-11 (statut) du document vaut "X" : attendu F`, `OBX-11 (statut) du document vaut "…" : attendu F`},
		{`la date de naissance "19800115" est invalide`, `la date de naissance "…" est invalide`},
		{`PID-5 "DUPONT^Marie" et « Marie DUPONT »`, `PID-5 "…" et «…»`},
		{`escaped "a \"b\" c" end`, `escaped "…" end`},
		{`empty "" stays`, `empty "" stays`},
		{`unterminated "DUPONT Marie 19800115`, `unterminated "…`},
		{`unterminated « DUPONT`, `unterminated «…`},
		{`trailing quote "`, `trailing quote "`},
		// Plain text stays.
		{"", ""},
		{"dial tcp: connection refused", "dial tcp: connection refused"},
	} {
		got := redact.Text(c.in)
		require.Equal(t, c.want, got, "%q", c.in)
		require.Equal(t, got, redact.Text(got), "Text(Text(%q))", c.in)
	}
}

// FuzzText checks that Text's output holds no patient address and no
// unspaced NIR, that masking twice changes nothing, and that text with none
// of what Text looks for (digits, quotes, @) is left alone.
func FuzzText(f *testing.F) {
	for _, s := range []string{
		"550 5.1.1 <279035121518989@patient.mssante.fr>: no such user",
		`OBX-11 vaut "X", PID-7 "19800115", « DUPONT »`,
		"2 80 01 2A 123 456 78 and 15/01/1980 at 10:00",
		`"a\"b"@PATIENT.mssante.fr"`,
		"1980-01-15T00:00:00Z 2026-03-01T10:04:05Z",
		"x@patient.mssante.fr.example 12800175123456789",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := redact.Text(s)
		if strings.Contains(asciiLower(got), "@patient.mssante.fr") {
			t.Fatalf("Text(%q) = %q: a patient address", s, got)
		}
		if run, ok := nirRun(got); ok {
			t.Fatalf("Text(%q) = %q: NIR-shaped %s", s, got, run)
		}
		if again := redact.Text(got); again != got {
			t.Fatalf("Text(%q) = %q, then %q", s, got, again)
		}
		if !strings.ContainsAny(s, "0123456789\"«@") && got != s {
			t.Fatalf("Text(%q) = %q: nothing to mask", s, got)
		}
	})
}

// asciiLower lowers the ASCII letters of s only, as a mail server matches
// a domain.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// nirRun returns the first run of 13 or 15 digits of s (not part of a
// longer one) that starts with 1, 2, 7 or 8.
func nirRun(s string) (string, bool) {
	for _, run := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		if (len(run) == 13 || len(run) == 15) && strings.ContainsRune("1278", rune(run[0])) {
			return run, true
		}
	}
	return "", false
}
