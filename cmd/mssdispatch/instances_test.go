package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	dmail "github.com/mssdispatch/mssdispatch/dispatch/mail"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
	"github.com/mssdispatch/mssdispatch/letters"
)

// TestTwoInstances runs two serve instances on one database, as a hospital
// group scales out: the DPI's messages go to both, River shares the jobs
// between them, every email leaves once, the periodic jobs (here the paper
// batching, every minute) are inserted by the leader alone, and no letter is
// batched twice.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for a minute's periodic job")
	}
	smtpSrv := smtptest.Start(t, smtptest.Options{})
	cfg := serveConfig{
		DatabaseURL:    demoDatabase(t),
		Transport:      "smtp",
		SMTP:           dmail.SMTPConfig{Addr: smtpSrv.Addr, TLS: dmail.TLSStartTLS, CAFile: smtpSrv.CA.File},
		Workers:        4,
		PaperBatchCron: "* * * * *",
	}
	instances := []*running{start(t, cfg), start(t, cfg)}
	for _, r := range instances {
		resp, err := http.Get("http://" + r.httpAddr + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}

	const reports = 30 // two emails each (Claire's and Julie's), and Claire's paper copy
	var wg sync.WaitGroup
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, _, err := sampleReport(time.Now())
			require.NoError(t, err)
			ack := sendMLLP(t, instances[i%2].mllpAddr, msg)
			require.Equal(t, "AA", ack.Segment("MSA").Get(1))
		}()
	}
	wg.Wait()
	smtpSrv.WaitMessages(t, 2*reports, 60*time.Second)

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	require.NoError(t, err)
	defer pool.Close()
	require.Eventually(t, func() bool {
		var sent int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE channel = 'mssante' AND status = 'sent'`).Scan(&sent))
		return sent == 2*reports
	}, 30*time.Second, 50*time.Millisecond, "every email recorded sent")
	// No late duplicate: no send job is left that could send again.
	require.Eventually(t, func() bool {
		var left int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'send_delivery'
			AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&left))
		return left == 0
	}, 30*time.Second, 50*time.Millisecond, "every send job finished")
	msgs := smtpSrv.Messages()
	require.Len(t, msgs, 2*reports, "each email sent once")
	envelopes := map[string]bool{}
	for _, m := range msgs {
		require.False(t, envelopes[m.MailOptions.EnvelopeID], "delivery %s sent twice", m.MailOptions.EnvelopeID)
		envelopes[m.MailOptions.EnvelopeID] = true
	}
	// Both instances worked: the send jobs were run by two River clients.
	workers := map[string]bool{}
	for _, j := range listJobs(t, pool, river.NewJobListParams().Kinds(dispatch.SendArgs{}.Kind()).States(rivertype.JobStateCompleted)) {
		if len(j.AttemptedBy) > 0 {
			workers[j.AttemptedBy[0]] = true
		}
	}
	require.Len(t, workers, 2, "the sends are shared")

	// The paper batching: once a minute, by one instance, each letter once.
	require.Eventually(t, func() bool {
		var batched int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE channel = 'paper'
			AND status = 'paper_pending' AND paper_batch_id IS NOT NULL`).Scan(&batched))
		return batched == reports
	}, 75*time.Second, 200*time.Millisecond, "the paper batch job ran")
	batches := map[time.Time]int{}
	for _, j := range listJobs(t, pool, river.NewJobListParams().Kinds(letters.BatchArgs{}.Kind())) {
		batches[j.ScheduledAt.Truncate(time.Minute)]++
	}
	for minute, n := range batches {
		require.Equal(t, 1, n, "paper_batch jobs for %s", minute.Format(time.TimeOnly))
	}
	var twice int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT delivery_id FROM paper_batch_letters
		GROUP BY delivery_id HAVING count(*) > 1) x`).Scan(&twice))
	require.Zero(t, twice, "no letter in two batches")
	var leaders int
	// River's API tells a client whether it leads, not how many leaders the
	// database has: its table does.
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_leader`).Scan(&leaders))
	require.Equal(t, 1, leaders, fmt.Sprintf("%d River leaders", leaders))
}

// TestInstanceNamedTwice: the jobs an instance works carry its name
// (MSSDISPATCH_INSTANCE), and a second serve under the same name on the
// same database refuses to start, naming the variable to set.
func TestInstanceNamedTwice(t *testing.T) {
	t.Parallel()
	cfg := serveConfig{DatabaseURL: demoDatabase(t), Transport: "outbox", OutboxDir: t.TempDir(), Instance: "ward-a"}
	r := start(t, cfg)
	msg, _, err := sampleReport(time.Now())
	require.NoError(t, err)
	require.Equal(t, "AA", sendMLLP(t, r.mllpAddr, msg).Segment("MSA").Get(1))
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	require.NoError(t, err)
	defer pool.Close()
	require.Eventually(t, func() bool {
		jobs := listJobs(t, pool, river.NewJobListParams().Kinds(dispatch.ResolveArgs{}.Kind()).States(rivertype.JobStateCompleted))
		return len(jobs) == 1 && slices.Equal(jobs[0].AttemptedBy, []string{"ward-a"})
	}, 30*time.Second, 20*time.Millisecond, "the report resolved by ward-a")

	cfg.MLLPAddr, cfg.HTTPAddr, cfg.APIToken, cfg.Sender, cfg.HL7Charset = "127.0.0.1:0", "127.0.0.1:0", testToken, testSender, "UNICODE UTF-8"
	err = serve(ctx, cfg, quiet, nil)
	var ce *configError
	require.ErrorAs(t, err, &ce)
	require.EqualError(t, err, "another instance runs as ward-a: give each its own MSSDISPATCH_INSTANCE")
}
