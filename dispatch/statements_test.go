package dispatch_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/internal/pgtrace"
)

// TestReceiveStatements lists what PostgreSQL receives while the DPI waits
// for the ACK of a report (issue #22): the round trips Service.Receive
// takes, each with its statements (a pgx batch's joined by " + "), River's
// insert of the resolve job included. Left out: River's NOTIFY of the
// queue, one more round trip after its insert when the client's previous
// NOTIFY is older than its FetchCooldown (100 ms), which depends on time.
func TestReceiveStatements(t *testing.T) {
	t.Parallel()
	b, _ := setupOutbox(t)
	original := testReport(t)
	b.receive(t, original)
	replacement := testReport(t)
	replacement.Action = dispatch.ActionReplace
	replacement.Document.ParentID = original.Document.ID
	setDocumentID(t, &replacement, original.Document.ID+"-v2")
	fresh := testReport(t)
	setDocumentID(t, &fresh, "1.2.250.1.999.1.statements")
	warned := testReport(t)
	setDocumentID(t, &warned, "1.2.250.1.999.1.warned")
	warned.Flags = dispatch.Flags{Present: true, ToProfessionals: true, ToPatient: true} // the INS is not qualified: a warning

	for _, tc := range []struct {
		name       string
		report     dispatch.Report
		statements int
		want       []string
	}{{
		name:       "new report",
		report:     fresh,
		statements: 11,
		want: []string{
			"begin",
			"INSERT inbound_messages + SELECT FROM documents",
			"INSERT reports + INSERT documents + INSERT recipients + INSERT recipients + INSERT recipients",
			"river JobInsertFastMany",
			"UPDATE inbound_messages",
			"commit",
		},
	}, {
		name:       "new report with a warning",
		report:     warned,
		statements: 13,
		want: []string{
			"begin",
			"INSERT inbound_messages + SELECT FROM documents",
			"INSERT reports + INSERT documents + INSERT recipients + INSERT recipients + INSERT recipients + INSERT recipients + INSERT report_events",
			"river JobInsertFastMany",
			"UPDATE inbound_messages",
			"commit",
		},
	}, {
		name:       "replacement",
		report:     replacement,
		statements: 13,
		want: []string{
			"begin",
			"INSERT inbound_messages + SELECT FROM documents",
			"WITH stopped + SELECT FROM deliveries",
			"INSERT reports + INSERT documents + INSERT recipients + INSERT recipients + INSERT recipients",
			"river JobInsertFastMany",
			"UPDATE inbound_messages",
			"commit",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var log pgtrace.Log
			svc := tracedService(t, b, &log)
			rc, err := svc.Receive(b.ctx, inbound(tc.name, tc.name), tc.report, respond)
			require.NoError(t, err)
			require.False(t, rc.Duplicate)
			sent := slices.DeleteFunc(log.Take(), func(s pgtrace.Sent) bool { return statementName(s.SQL) == riverNotify })
			got := roundTrips(sent)
			require.Equal(t, tc.want, got, "round trips")
			require.Len(t, sent, tc.statements, "statements")
		})
	}
}

// riverNotify is River's NOTIFY of a queue that has jobs.
const riverNotify = "river PGNotifyMany"

// tracedService is a Service on b's database whose pool records in log what
// it sends; its jobs are b's River client's, inserted in its transactions.
func tracedService(t *testing.T, b *testBundle, log *pgtrace.Log) *dispatch.Service {
	t.Helper()
	cfg := b.pool.Config()
	cfg.ConnConfig.Tracer = &pgtrace.Tracer{Record: log.Record}
	pool, err := pgxpool.NewWithConfig(b.ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	svc, err := dispatch.NewService(dispatch.ServiceConfig{Pool: pool, Jobs: b.env.Client, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return svc
}

// statementName names a statement: River's by its sqlc name, ours by their
// verb and table (the first FROM's for a SELECT), a CTE by its first name.
func statementName(sql string) string {
	words := strings.Fields(sql)
	switch {
	case len(words) >= 3 && words[0] == "--" && words[1] == "name:":
		return "river " + words[2]
	case len(words) < 3:
		return strings.Join(words, " ")
	}
	switch verb := strings.ToUpper(words[0]); verb {
	case "INSERT", "DELETE":
		return verb + " " + words[2]
	case "UPDATE", "WITH":
		return verb + " " + words[1]
	case "SELECT":
		for i, w := range words[:len(words)-1] {
			if strings.EqualFold(w, "FROM") {
				return "SELECT FROM " + words[i+1]
			}
		}
	}
	return strings.Join(words[:2], " ")
}

// roundTrips lists the round trips of sent, each as its statements' names
// (statementName) joined by " + ".
func roundTrips(sent []pgtrace.Sent) []string {
	var out []string
	for _, s := range sent {
		if s.RoundTrip() {
			out = append(out, statementName(s.SQL))
		} else {
			out[len(out)-1] += " + " + statementName(s.SQL)
		}
	}
	return out
}
