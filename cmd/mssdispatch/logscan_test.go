package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	dmail "github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
)

// The log scan (issue #19): logs carry ids and codes, never patient data.
// Every log line the tests of this package make is captured, the
// in-process services' through quiet (at debug level) and the binaries'
// through lockedBuffer, and TestMain fails the run when one holds the test
// patient's identity, whatever test logged it.

// captured collects the log lines of the package's tests.
var captured = newLogScan()

// TestMain runs the tests, then scans their logs. The binaries the tests
// start log at debug level too, unless a test says otherwise.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("MSSDISPATCH_LOG_LEVEL") == "" {
		if err := os.Setenv("MSSDISPATCH_LOG_LEVEL", "debug"); err != nil {
			fmt.Fprintln(os.Stderr, "TestMain:", err)
			os.Exit(2)
		}
	}
	code := m.Run()
	lines, problems := captured.problems(expectLogs())
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: log scan (issue #19, logs carry ids and codes only): %d problem(s)\n", len(problems))
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "  "+p)
		}
		code = max(code, 1)
	} else if testing.Verbose() {
		fmt.Printf("log scan: %d log lines, no patient data\n", lines)
	}
	os.Exit(code)
}

// expectLogs tells whether the tests run are expected to have logged: when
// the whole package ran. Then the scan checks that it saw the lines of
// reports going through, lest a logger silenced by mistake make it pass.
func expectLogs() bool {
	return flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.list").Value.String() == ""
}

// expectedLines are log messages of reports going through, accepted or
// refused: the scan requires them when the whole package ran.
var expectedLines = []string{"mssdispatch serving", "HL7 message accepted", "report resolved", "delivery sent", "HL7 message refused"}

// minLogLines is fewer lines than the whole package logs (about 600 with
// -short, 1200 without).
const minLogLines = 200

// patientData is what the logs may not hold: the test patient's identity
// as the sample (sample/oru.hl7, sample/cda.xml) and the tests give it, and
// the shapes of any patient's identifiers. Each is named for the message,
// which shows the offending line with it masked (its first group, if any).
var patientData = []struct {
	name string
	re   *regexp.Regexp
	// except, when set, is what a match followed by it is not: the doctor
	// Claire DUPONT-DEMO is no patient.
	except string
}{
	{name: "INS", re: regexp.MustCompile(`280017512345678|2 80 01 75 123 456 78|279035121518989`)},
	// A number glued to letters is an id (control_id=9ce1234567890123), not a NIR.
	{name: "NIR-shaped number", re: regexp.MustCompile(`(?:^|[^0-9A-Za-z])([1278](?:[0-9]{12}|[0-9]{14}))(?:[^0-9A-Za-z]|$)`)},
	{name: "patient address", re: regexp.MustCompile(`(?i)@patient\.mssante\.fr`)},
	{name: "patient name", re: regexp.MustCompile(`(?i)\bdupont\b`), except: "-demo"},
	{name: "patient name", re: regexp.MustCompile(`(?i)\bmarie\b`)},
	{name: "birth date", re: regexp.MustCompile(`19800115|1980-01-15|15/01/1980`)},
	{name: "IPP", re: regexp.MustCompile(`IPP0012345`)},
}

// logScan checks log lines as they come, from any number of sources (a
// source's writes may cut a line anywhere), and keeps what it found.
type logScan struct {
	mu       sync.Mutex
	partial  map[any][]byte // per source, the line begun
	lines    int
	seen     map[string]bool // expectedLines seen
	findings []string        // the offending lines, masked
	leaks    int
}

func newLogScan() *logScan {
	return &logScan{partial: map[any][]byte{}, seen: map[string]bool{}}
}

// source returns a writer to c, one source of whole lines: a logger's.
func (c *logScan) source() io.Writer { return &logSource{c} }

type logSource struct{ c *logScan }

func (s *logSource) Write(p []byte) (int, error) { s.c.write(s, p); return len(p), nil }

// write takes p, the next bytes of source's logs.
func (c *logScan) write(source any, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := append(c.partial[source], p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		c.check(string(buf[:i]))
		buf = buf[i+1:]
	}
	if len(buf) == 0 {
		delete(c.partial, source) // nor keeps a finished buffer alive
		return
	}
	c.partial[source] = bytes.Clone(buf)
}

// check scans one line.
func (c *logScan) check(line string) {
	c.lines++
	for _, l := range expectedLines {
		if strings.Contains(line, "msg=\""+l+"\"") || strings.Contains(line, "msg="+l+" ") {
			c.seen[l] = true
		}
	}
	masked, found := maskPatientData(line)
	if len(found) == 0 {
		return
	}
	c.leaks++
	if len(c.findings) < 20 {
		c.findings = append(c.findings, fmt.Sprintf("%s in: %s", strings.Join(found, ", "), masked))
	}
}

// maskPatientData returns line with the patient data it holds masked, and
// the names of what it held.
func maskPatientData(line string) (string, []string) {
	var found []string
	for _, p := range patientData {
		var b strings.Builder
		last, hit := 0, false
		for _, m := range p.re.FindAllStringSubmatchIndex(line, -1) {
			start, end := m[0], m[1]
			if len(m) > 2 {
				start, end = m[2], m[3]
			}
			if p.except != "" && strings.HasPrefix(strings.ToLower(line[end:]), p.except) {
				continue
			}
			b.WriteString(line[last:start])
			b.WriteString("<" + p.name + ">")
			last, hit = end, true
		}
		if hit {
			b.WriteString(line[last:])
			line = b.String()
			if !slices.Contains(found, p.name) {
				found = append(found, p.name)
			}
		}
	}
	return line, found
}

// problems finishes the scan: it checks the lines left unterminated, and
// returns the number of lines and what is wrong: the patient data found
// and, when the run was expected to log (want), the lines not seen.
func (c *logScan) problems(want bool) (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for source, rest := range c.partial {
		if len(rest) > 0 {
			c.check(string(rest))
		}
		delete(c.partial, source)
	}
	var out []string
	if c.leaks > 0 {
		out = append(out, fmt.Sprintf("%d log line(s) with patient data; the first:", c.leaks))
		out = append(out, c.findings...)
	}
	if !want {
		return c.lines, out
	}
	if c.lines < minLogLines {
		out = append(out, fmt.Sprintf("only %d log lines captured, want at least %d: are the logs still captured (quiet, lockedBuffer)?", c.lines, minLogLines))
	}
	for _, l := range expectedLines {
		if !c.seen[l] {
			out = append(out, fmt.Sprintf("no %q line captured: are the logs still captured (quiet, lockedBuffer)?", l))
		}
	}
	return c.lines, out
}

func TestLogScan(t *testing.T) {
	t.Parallel()
	c := newLogScan()
	log := slog.New(slog.NewTextHandler(c.source(), nil))
	log.Info("mssdispatch serving", "mllp", "127.0.0.1:2575")
	log.Info("HL7 message accepted", "control_id", "9ce812345678210422", "report_id", 1234) // ids
	log.Warn("delivery failed", "delivery_id", 7, "error", "550 5.1.1 <280017512345678@patient.mssante.fr>: no such user")
	// A binary's output, cut anywhere.
	src := &struct{ name string }{"binary"}
	c.write(src, []byte("level=WARN msg=\"HL7 message refused\" error=\"PID-5 DUP"))
	c.write(src, []byte("ONT^Marie, PID-7 19800115\"\nlevel=INFO msg=\"delivery sent\" to=claire.dupont-demo@medecin-demo.mssante.fr name=\"Claire DUPONT-DEMO\"\nlevel=INFO msg=\"2 80 01 75\""))

	lines, problems := c.problems(true)
	require.Equal(t, 6, lines, "the last one unterminated")
	require.Equal(t, 2, c.leaks, "%s", problems)
	report := strings.Join(problems, "\n")
	require.Contains(t, report, "patient address in: ")
	require.Contains(t, report, "error=\"550 5.1.1 <<INS><patient address>>: no such user\"")
	require.Contains(t, report, "patient name, birth date in: ")
	for _, data := range []string{"280017512345678", "DUPONT^", "Marie", "19800115"} {
		require.NotContains(t, report, data, "the report masks the patient data")
	}
	require.Contains(t, report, "only 6 log lines captured")
	require.Contains(t, report, `no "report resolved" line captured`)
	require.NotContains(t, report, `no "delivery sent" line`)

	_, problems = newLogScan().problems(false)
	require.Empty(t, problems, "a run not expected to log")
	_, problems = newLogScan().problems(true)
	require.Len(t, problems, 1+len(expectedLines), "a run that should have logged")
}

// TestNoPatientDataInLogs drives the paths the issue saw leak into the logs,
// for the log scan to check: an INS mismatch refused, and the patient's
// email refused by the SMTP server with a 550 echoing the address.
func TestNoPatientDataInLogs(t *testing.T) {
	t.Parallel()
	smtpSrv := smtptest.Start(t, smtptest.Options{Rcpt: func(to string) *smtp.SMTPError {
		if !strings.HasSuffix(to, "@patient.mssante.fr") {
			return nil
		}
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: fmt.Sprintf("<%s>: Recipient address rejected: User unknown in virtual mailbox table", to)}
	}})
	r := start(t, serveConfig{DatabaseURL: demoDatabase(t), Transport: "smtp",
		SMTP: dmail.SMTPConfig{Addr: smtpSrv.Addr, TLS: dmail.TLSStartTLS, CAFile: smtpSrv.CA.File}})

	msg, _, err := sampleReport(time.Now())
	require.NoError(t, err)
	msg = bytes.Replace(msg, []byte("PID|1||280017512345678^"), []byte("PID|1||279035121518989^"), 1)
	ack := sendMLLP(t, r.mllpAddr, msg)
	require.Equal(t, "AE", ack.Segment("MSA").Get(1), "INS mismatch: %s", ack.Encode())

	msg, documentID, err := sampleReport(time.Now())
	require.NoError(t, err)
	msg = bytes.Replace(msg, []byte("DESTMSSANTEPAT^Destinataire Patient^MetaDMPMSS||N^"), []byte("DESTMSSANTEPAT^Destinataire Patient^MetaDMPMSS||Y^"), 1)
	ack = sendMLLP(t, r.mllpAddr, msg)
	require.Equal(t, "AA", ack.Segment("MSA").Get(1), "%s", ack.Encode())
	require.Eventually(t, func() bool {
		for _, d := range getReport(t, r.httpAddr, documentID).Deliveries {
			if strings.HasSuffix(d.Recipient, "@patient.mssante.fr") {
				return d.Status == dispatch.StatusFailed
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "the patient's email refused for good")
}
