package worker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

// TestBlockCountsOnePerPeriod checks the backoff of a blocked scope: the
// failures of sends under way while it is blocked neither count nor extend
// the block; the first failure after it ends doubles it.
func TestBlockCountsOnePerPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	const base = time.Minute
	wait, err := block(ctx, pool, serverScope, "421 first", base)
	require.NoError(t, err)
	require.Equal(t, base, wait)
	for range 5 { // the other workers' sends, failing meanwhile
		again, err := block(ctx, pool, serverScope, "421 again", base)
		require.NoError(t, err)
		require.LessOrEqual(t, again, base)
		require.Greater(t, again, base-10*time.Second, "the block's remaining time")
	}
	var failures int
	require.NoError(t, pool.QueryRow(ctx, `SELECT failures FROM mail_domains WHERE domain = $1`, serverScope).Scan(&failures))
	require.Equal(t, 1, failures)

	// The block over, the next failure counts.
	_, err = pool.Exec(ctx, `UPDATE mail_domains SET blocked_until = now() - interval '1 second' WHERE domain = $1`, serverScope)
	require.NoError(t, err)
	wait, err = block(ctx, pool, serverScope, "421 after", base)
	require.NoError(t, err)
	require.Equal(t, 2*base, wait)
}
