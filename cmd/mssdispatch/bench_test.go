package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

const (
	// benchConns is how many MLLP connections BenchmarkMLLPIntake sends over concurrently.
	benchConns = 8
	// benchPDFSize is the size of the PDF of every BenchmarkMLLPIntake message.
	benchPDFSize = 100 << 10
)

// BenchmarkMLLPIntake measures the intake of the real service: b.N distinct
// ORU^R01 (the sample report, its PDF padded to 100 KiB) sent over 8
// concurrent MLLP connections, each timed from Send to its ACK (parse, map,
// one committed transaction, ACK). The resolve and send jobs the reports
// enqueue run in the background meanwhile, as in production.
//
// It reports msgs/s, p50_ms and p99_ms, and fails unless every message got
// an AA for its control id and the reports table holds exactly b.N rows with
// b.N distinct control ids.
func BenchmarkMLLPIntake(b *testing.B) {
	dbURL := demoDatabase(b)
	mllpAddr := start(b, serveConfig{DatabaseURL: dbURL, Transport: "outbox", OutboxDir: b.TempDir()}).mllpAddr
	msgs := benchMessages(b, b.N)
	clients := make([]*mllp.Client, benchConns)
	for i := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := mllp.Dial(ctx, mllpAddr)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		clients[i] = c
	}

	var (
		acks      = make([][]byte, b.N)
		errs      = make([]error, b.N)
		latencies = make([]time.Duration, b.N)
		next      atomic.Int64
		wg        sync.WaitGroup
	)
	b.SetBytes(int64(len(msgs[0])))
	b.ResetTimer()
	began := time.Now()
	for _, c := range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				sent := time.Now()
				acks[i], errs[i] = c.Send(ctx, msgs[i])
				latencies[i] = time.Since(sent)
				cancel()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	b.StopTimer()

	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(ms(percentile(latencies, 0.50)), "p50_ms")
	b.ReportMetric(ms(percentile(latencies, 0.99)), "p99_ms")

	// No lost ACK, no refusal, no ACK for another message.
	var failed []string
	for i, msg := range msgs {
		if problem := ackProblem(msg, acks[i], errs[i]); problem != "" {
			failed = append(failed, problem)
		}
	}
	if len(failed) > 0 {
		b.Fatalf("%d of %d messages without their AA; first: %s", len(failed), b.N, failed[0])
	}
	// One report per message, no duplicate.
	var rows, distinct int
	err := pgtest.Connect(b, dbURL).QueryRow(context.Background(),
		"SELECT count(*), count(DISTINCT message_control_id) FROM reports").Scan(&rows, &distinct)
	if err != nil {
		b.Fatal(err)
	}
	if rows != b.N || distinct != b.N {
		b.Fatalf("reports: %d rows, %d distinct control ids; want %d of each", rows, distinct, b.N)
	}
}

// ackProblem describes what is wrong with the response to msg, "" when it is its AA.
func ackProblem(msg, raw []byte, err error) string {
	id := hl7.ControlIDOf(msg)
	if err != nil {
		return fmt.Sprintf("%s: %v", id, err)
	}
	ack, err := hl7.Parse(raw, hl7.ParseOptions{})
	if err != nil {
		return fmt.Sprintf("%s: unreadable ACK: %v", id, err)
	}
	msa := ack.Segment("MSA")
	switch {
	case msa.Get(1) != "AA":
		return fmt.Sprintf("%s: %s %s", id, msa.Get(1), ack.Segment("ERR").Get(8))
	case msa.Get(2) != id:
		return fmt.Sprintf("%s: ACK of %s", id, msa.Get(2))
	}
	return ""
}

// percentile returns the nearest-rank p-quantile of sorted, which is not empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[max(0, int(math.Ceil(p*float64(len(sorted))))-1)]
}

// benchMessages returns n fresh sample reports whose PDF is padded to
// benchPDFSize bytes: comment lines of seeded random base64 after %%EOF,
// which readers ignore and which compress about as little as the compressed
// streams of a real PDF (what PostgreSQL's TOAST and the XDM zip see).
func benchMessages(b testing.TB, n int) [][]byte {
	b.Helper()
	pdf, err := sampleFiles.ReadFile("sample/compte-rendu.pdf")
	if err != nil {
		b.Fatal(err)
	}
	padded := bytes.NewBuffer(slices.Clip(pdf))
	random := rand.NewChaCha8([32]byte{'p', 'd', 'f'})
	line := make([]byte, 57)
	for padded.Len() < benchPDFSize {
		_, _ = random.Read(line)
		padded.WriteString("\n%" + base64.StdEncoding.EncodeToString(line))
	}
	oldPDF := base64.StdEncoding.EncodeToString(pdf)
	newPDF := base64.StdEncoding.EncodeToString(padded.Bytes()[:benchPDFSize])

	const marker = "^Base64^" // OBX-5: ^text^XML^Base64^<CDA>
	msgs := make([][]byte, n)
	seen := make(map[string]bool, n)
	for i := range msgs {
		msg, _, err := sampleReport(time.Now())
		if err != nil {
			b.Fatal(err)
		}
		s := string(msg)
		start := strings.Index(s, marker) + len(marker)
		end := start + strings.IndexAny(s[start:], "|\r")
		if start < len(marker) || end < start {
			b.Fatal("sample report: no base64 CDA in OBX-5")
		}
		cda, err := base64.StdEncoding.DecodeString(s[start:end])
		if err != nil {
			b.Fatal(err)
		}
		if strings.Count(string(cda), oldPDF) != 1 {
			b.Fatal("sample report: the CDA does not hold the sample PDF once")
		}
		cda = []byte(strings.Replace(string(cda), oldPDF, newPDF, 1))
		msgs[i] = []byte(s[:start] + base64.StdEncoding.EncodeToString(cda) + s[end:])
		id := hl7.ControlIDOf(msgs[i])
		if seen[id] {
			b.Fatalf("sample report: control id %s twice", id)
		}
		seen[id] = true
	}
	return msgs
}
