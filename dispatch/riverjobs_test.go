package dispatch_test

import (
	"testing"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// jobs lists, in id order, the jobs of kind (any kind when empty) in the
// states (any state when none).
func (b *testBundle) jobs(t *testing.T, kind string, states ...rivertype.JobState) []*rivertype.JobRow {
	t.Helper()
	return b.env.Jobs(t, kind, states...)
}

// deliveryJobs lists, in id order, the jobs of kind for the delivery id (the
// delivery_id of their args) in the states (any state when none).
func (b *testBundle) deliveryJobs(t *testing.T, kind string, id int64, states ...rivertype.JobState) []*rivertype.JobRow {
	t.Helper()
	return b.env.DeliveryJobs(t, kind, id, states...)
}

// runNow makes jobs available at once (dispatchtest.Env.RunNow).
func (b *testBundle) runNow(t *testing.T, jobs []*rivertype.JobRow) {
	t.Helper()
	b.env.RunNow(t, jobs)
}

// driver is River's driver on the test's database, for rivertest.
func (b *testBundle) driver() *riverpgxv5.Driver { return riverpgxv5.New(b.pool) }
