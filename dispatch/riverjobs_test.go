package dispatch_test

import (
	"encoding/json"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

// The tests see River's jobs through River's API (the client's JobList and
// JobRetry, rivertest's assertions), never through its tables.

// jobs lists, in id order, the jobs of kind (any kind when empty) in the
// states (any state when none).
func (b *testBundle) jobs(t *testing.T, kind string, states ...rivertype.JobState) []*rivertype.JobRow {
	t.Helper()
	params := river.NewJobListParams().First(10_000)
	if kind != "" {
		params = params.Kinds(kind)
	}
	if len(states) > 0 {
		params = params.States(states...)
	}
	res, err := b.client.JobList(b.ctx, params)
	require.NoError(t, err)
	return res.Jobs
}

// deliveryJobs lists, in id order, the jobs of kind for the delivery id (the
// delivery_id of their args) in the states (any state when none).
func (b *testBundle) deliveryJobs(t *testing.T, kind string, id int64, states ...rivertype.JobState) []*rivertype.JobRow {
	t.Helper()
	var out []*rivertype.JobRow
	for _, j := range b.jobs(t, kind, states...) {
		var args struct {
			DeliveryID int64 `json:"delivery_id"`
		}
		require.NoError(t, json.Unmarshal(j.EncodedArgs, &args))
		if args.DeliveryID == id {
			out = append(out, j)
		}
	}
	return out
}

// jobArgs decodes the args of j.
func jobArgs[T river.JobArgs](t *testing.T, j *rivertype.JobRow) T {
	t.Helper()
	var args T
	require.NoError(t, json.Unmarshal(j.EncodedArgs, &args))
	require.Equal(t, args.Kind(), j.Kind)
	return args
}

// runNow makes jobs available at once with River's JobRetry (as its UI's
// retry does): a scheduled job runs without waiting for its time, a
// cancelled one runs after all.
func (b *testBundle) runNow(t *testing.T, jobs []*rivertype.JobRow) {
	t.Helper()
	for _, j := range jobs {
		_, err := b.client.JobRetry(b.ctx, j.ID)
		require.NoError(t, err)
	}
}

// driver is River's driver on the test's database, for rivertest.
func (b *testBundle) driver() *riverpgxv5.Driver { return riverpgxv5.New(b.pool) }
