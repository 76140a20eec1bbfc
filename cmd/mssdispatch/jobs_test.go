package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

// The tests see the service's River jobs through River's API, never through
// its tables.

// jobsClient is a River client on pool that works no job: it lists jobs and
// acts on them as River's UI does.
func jobsClient(t *testing.T, pool *pgxpool.Pool) *river.Client[pgx.Tx] {
	t.Helper()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return client
}

// listJobs lists, in id order, the jobs params selects, 10,000 at most.
func listJobs(t *testing.T, pool *pgxpool.Pool, params *river.JobListParams) []*rivertype.JobRow {
	t.Helper()
	res, err := jobsClient(t, pool).JobList(context.Background(), params.First(10_000))
	require.NoError(t, err)
	return res.Jobs
}
