package correspondents_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/internal/queuetest"
)

var quiet = slog.New(slog.DiscardHandler)

// TestDirectorySync runs the sync job through River on the real database:
// a good sync imports both sources; a broken directory file then fails the
// job, keeps the directory in use and raises the alert metric.
func TestDirectorySync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := correspondents.NewStore(pool)
	dir := t.TempDir()
	directory := filepath.Join(dir, "Extraction_Correspondance_MSSante.txt")
	demo, err := os.ReadFile("../testdata/demo/Extraction_Correspondance_MSSante.txt")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(directory, demo, 0o644))

	registry := prometheus.NewRegistry()
	workers := river.NewWorkers()
	require.NoError(t, correspondents.AddDirectorySync(workers, correspondents.DirectorySyncConfig{Store: store,
		DirectorySource: directory, WhitelistSource: "../testdata/demo/liste_blanche.xml", Registerer: registry, Logger: quiet}))
	client := queuetest.Start(t, pool, workers)
	runSync := func(want rivertype.JobState) {
		t.Helper()
		res, err := client.Insert(ctx, correspondents.DirectorySyncArgs{}, &river.InsertOpts{MaxAttempts: 1})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			j, err := client.JobGet(ctx, res.Job.ID)
			require.NoError(t, err)
			return j.State == want
		}, 20*time.Second, 50*time.Millisecond)
	}
	metric := func(name, kind string) float64 {
		t.Helper()
		families, err := registry.Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
			for _, m := range f.GetMetric() {
				if m.GetLabel()[0].GetValue() == kind {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("no metric %s{kind=%q}", name, kind)
		return 0
	}

	runSync(rivertype.JobStateCompleted)
	statuses, err := store.ImportStatuses(ctx)
	require.NoError(t, err)
	require.Len(t, statuses, 2)
	for _, st := range statuses {
		require.False(t, st.LastFailed, st.Kind)
		require.False(t, st.LastSuccess.IsZero(), st.Kind)
		require.Positive(t, st.Entries, st.Kind)
	}
	entries := metric("mssdispatch_directory_entries", "directory")
	require.Equal(t, float64(statuses[0].Entries), entries)
	require.Zero(t, metric("mssdispatch_directory_import_last_failed", "directory"))
	var trigger string
	require.NoError(t, pool.QueryRow(ctx, "SELECT trigger FROM directory_imports ORDER BY id DESC LIMIT 1").Scan(&trigger))
	require.Equal(t, correspondents.TriggerSchedule, trigger)

	// The published file changes layout: the sync fails, the directory stays.
	require.NoError(t, os.WriteFile(directory, []byte("Type de BAL|Adresse\nPER|x@y.fr\n"), 0o644))
	runSync(rivertype.JobStateDiscarded)
	require.Equal(t, 1.0, metric("mssdispatch_directory_import_last_failed", "directory"))
	require.Zero(t, metric("mssdispatch_directory_import_last_failed", "whitelist"), "the whitelist imported fine")
	require.Equal(t, entries, metric("mssdispatch_directory_entries", "directory"), "the previous directory stays in use")
	statuses, err = store.ImportStatuses(ctx)
	require.NoError(t, err)
	require.Contains(t, statuses[0].LastError, "column 2")
}
