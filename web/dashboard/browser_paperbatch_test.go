package dashboard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/auth"
	"github.com/mssdispatch/mssdispatch/internal/webtest"
)

// TestBrowserPaperBatch drives a print batch as a secretary does
// (web/e2e/paperbatch.mjs), at 1366×768 and 800 px: the DPI sent a report
// twice, listing each time a doctor it knows by name and address only;
// she prepares the batches, opens the batch, finds each letter's patient,
// sees the doctor's second letter grouped with the first (not printed),
// prints, and marks the batch posted. Before, the page showed no patient
// and the batch held the doctor's letter twice, for her to post twice.
func TestBrowserPaperBatch(t *testing.T) {
	t.Parallel()
	b := webtest.Setup(t)
	b.ImportDemo(t)
	b.Work(t)
	ctx := context.Background()
	// Claire (RPPS) gets a paper copy; Paul Legrand (a name and a postal
	// address, PRT-14) a letter, and another one when the DPI resends.
	legrand := "\rPRT|4|AD||RCT^Result Copies To^participation|^LEGRAND^Paul|||||||||3 place Gambetta^^Bordeaux^^33000\rOBX|1|"
	oru := strings.Replace(webtest.SampleORU(t), "\rOBX|1|", legrand, 1)
	for _, id := range []string{"MSG0001", "MSG0002"} {
		code, _, ack := b.Call(t, "POST", "/api/v1/hl7", strings.Replace(oru, "|MSG0001|", "|"+id+"|", 1))
		require.Equal(t, 200, code)
		require.Contains(t, ack, "MSA|AA|"+id)
	}
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status = 'paper_pending'`).Scan(&n))
		return n == 3
	}, 20*time.Second, 50*time.Millisecond, "Claire's copy and Paul Legrand's two letters")
	_, err := b.Accounts.AddUser(ctx, auth.NewUser{Username: "alice", Password: webtest.Password, Role: auth.RoleSecretary})
	require.NoError(t, err)

	webtest.RunScenario(t, b, "paperbatch.mjs")

	// One batch: Claire's copy and Paul Legrand's letter posted, his second
	// letter cancelled as their duplicate.
	rows, err := b.Pool.Query(ctx, `SELECT d.recipient_name, d.status, l.position, coalesce(l.duplicate_of, 0) <> 0
		FROM paper_batch_letters l JOIN deliveries d ON d.id = l.delivery_id ORDER BY d.id`)
	require.NoError(t, err)
	type letter struct {
		Name, Status string
		Position     int
		Duplicate    bool
	}
	letters, err := pgx.CollectRows(rows, pgx.RowToStructByPos[letter])
	require.NoError(t, err)
	require.Equal(t, []letter{{"Claire DUPONT-DEMO", "paper_sent", 1, false}, {"Paul LEGRAND", "paper_sent", 2, false},
		{"Paul LEGRAND", "cancelled", 2, true}}, letters)
	// Each reading of the batch's page is in the audit log, once per letter.
	var viewed int
	require.NoError(t, b.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE actor = 'alice' AND action = 'report_viewed'
		AND object LIKE 'batch:%' AND delivery_id IS NOT NULL`).Scan(&viewed))
	require.Equal(t, 3*3, viewed, "three letters, read at 1366 px, after the posting, at 800 px")
}
