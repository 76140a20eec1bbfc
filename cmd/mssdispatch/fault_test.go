package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
)

// countBy runs query, which returns a key and a count per row, into a map.
func countBy(t *testing.T, pool *pgxpool.Pool, query string) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), query)
	require.NoError(t, err)
	counts := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		require.NoError(t, rows.Scan(&k, &n))
		counts[k] = n
	}
	require.NoError(t, rows.Err())
	return counts
}

// lockedBuffer collects a process's logs for the test to read safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	captured.write(l, p) // the log scan (logscan_test.go)
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const (
	faultReports = 100 // two MSSanté sends each: 200 sends
	faultCrashes = 5
	// faultWorkers is the concurrency of the service under test: each crash
	// can duplicate at most the emails in flight between SMTP's 250 and their
	// record, so with one worker at most one per crash.
	faultWorkers = "1"
)

// TestKillDuringSends sends 100 reports (200 MSSanté emails) to a real SMTP
// server over TCP and STARTTLS, and kills the service with SIGKILL at random
// moments while it sends, restarting it each time. Every accepted report
// must end with its deliveries in a final or waiting state, no email may be
// lost, and the duplicates the server received are counted: at most one per
// crash, each one detected and recorded by the service.
func TestKillDuringSends(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary and crashes it")
	}
	bin := buildBinary(t)
	dbURL := demoDatabase(t)
	inRcpt := make(chan struct{}, 1)
	srv := smtptest.Start(t, smtptest.Options{Rcpt: func(string) *smtp.SMTPError {
		select {
		case inRcpt <- struct{}{}: // an SMTP session is under way
		default:
		}
		time.Sleep(10 * time.Millisecond)
		return nil
	}})
	mllpAddr, httpAddr := freeAddr(t), freeAddr(t)
	env := append(os.Environ(),
		"MSSDISPATCH_DATABASE_URL="+dbURL, "MSSDISPATCH_API_TOKEN="+testToken, "MSSDISPATCH_SENDER="+testSender,
		"MSSDISPATCH_TRANSPORT=smtp", "MSSDISPATCH_SMTP_ADDR="+srv.Addr, "MSSDISPATCH_SMTP_CA_FILE="+srv.CA.File,
		"MSSDISPATCH_SOURCE_OID=1.2.250.1.999.7", "MSSDISPATCH_MLLP_ADDR="+mllpAddr, "MSSDISPATCH_HTTP_ADDR="+httpAddr,
		"MSSDISPATCH_WORKERS="+faultWorkers, "MSSDISPATCH_JOB_TIMEOUT=2s", "MSSDISPATCH_JOB_RESCUE_AFTER=3s",
		"MSSDISPATCH_LOG_LEVEL=warn")
	logs := &lockedBuffer{}
	startService := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
		require.NoError(t, cmd.Start())
		waitReady(t, httpAddr, logs)
		return cmd
	}
	cmd := startService()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var documents []string
	for range faultReports {
		msg, documentID, err := sampleReport(time.Now())
		require.NoError(t, err)
		ack := sendMLLP(t, mllpAddr, msg)
		require.Equal(t, "AA", ack.Segment("MSA").Get(1), "report %s", hl7.ControlIDOf(msg))
		documents = append(documents, documentID)
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("crash seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, seed))
	for i := range faultCrashes {
		// Kill while emails go out, after a few more reached the server: in
		// turn during an SMTP session (before its 250), just after the server
		// stored an email (before the service records it: the duplicate
		// window), or at a random moment.
		sent := len(srv.Messages())
		require.Eventually(t, func() bool { return len(srv.Messages()) >= sent+3 }, 60*time.Second, time.Millisecond,
			"sends do not progress; logs:\n%s", logs)
		switch i % 3 {
		case 0:
			select {
			case <-inRcpt:
			default:
			}
			<-inRcpt
		case 1:
			stored := len(srv.Messages())
			require.Eventually(t, func() bool { return len(srv.Messages()) > stored }, 60*time.Second, 100*time.Microsecond)
		default:
			time.Sleep(time.Duration(rnd.IntN(200)) * time.Millisecond)
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		t.Logf("crash %d: %d emails at the server", i+1, len(srv.Messages()))
		cmd = startService()
	}

	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	// Everything settles: no delivery left queued (rescued jobs resume after JOB_RESCUE_AFTER).
	require.Eventually(t, func() bool {
		var pending int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries
			WHERE status IN ('queued', 'scheduled')`).Scan(&pending))
		var unresolved int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM reports WHERE status <> 'resolved'`).Scan(&unresolved))
		return pending == 0 && unresolved == 0
	}, 120*time.Second, 200*time.Millisecond, "logs:\n%s", logs)

	// Every accepted report, every delivery, in a final or waiting state.
	var reports int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM reports WHERE document_id = ANY ($1)`,
		documents).Scan(&reports))
	require.Equal(t, faultReports, reports, "every accepted report is stored")
	states := countBy(t, pool, `SELECT channel || ' ' || status, count(*) FROM deliveries GROUP BY 1`)
	require.Equal(t, map[string]int{"mssante sent": 2 * faultReports, "mssante review": faultReports,
		"paper paper_pending": faultReports}, states, "Claire and Julie sent, Claire's paper copy, Jean in review")

	// No email lost: each sent delivery's Message-ID reached the server.
	want := map[string]bool{}
	rows, err := pool.Query(context.Background(), `SELECT message_id FROM deliveries WHERE status = 'sent'`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		want["<"+id+">"] = true
	}
	require.NoError(t, rows.Err())
	received := map[string]int{}
	for _, m := range srv.Messages() {
		received[headerOf(m.Data, "Message-Id")]++
	}
	for id := range want {
		require.Positive(t, received[id], "email %s lost", id)
	}
	require.Len(t, received, len(want), "no email the service does not know")
	duplicates := len(srv.Messages()) - len(received)

	// Duplicates: counted, at most one per crash, each detected and recorded.
	var interrupted int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM delivery_events
		WHERE event = 'sending' AND detail LIKE '%interrompu%'`).Scan(&interrupted))
	t.Logf("%d crashes, %d emails received for %d sent, %d duplicates; %d attempts found their predecessor interrupted",
		faultCrashes, len(srv.Messages()), len(want), duplicates, interrupted)
	require.LessOrEqual(t, duplicates, faultCrashes, "at most one duplicate per crash")
	require.LessOrEqual(t, duplicates, interrupted, "every duplicate was an interrupted attempt the service recorded")
	for id, n := range received {
		require.LessOrEqual(t, n, 2, "email %s received %d times", id, n)
	}
}

// headerOf returns the value of a header field of a raw email.
func headerOf(raw []byte, name string) string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for line := range strings.SplitSeq(string(head), "\r\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return v
		}
	}
	return ""
}
