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

// TestClaimProbe checks which blocked scope a prober claims: the
// submission server first, a domain only while the server is not blocked,
// none held by another prober's claim, and a scope once more after its
// probe failed and the interval passed.
func TestClaimProbe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	const domain = "medecin.example"
	c, err := claimProbe(ctx, pool, time.Minute)
	require.NoError(t, err)
	require.Equal(t, probeClaim{}, c, "nothing blocked")
	for _, s := range []string{domain, serverScope} {
		_, err := block(ctx, pool, s, "421", time.Minute)
		require.NoError(t, err)
	}
	var next *time.Duration
	claim := func() string {
		t.Helper()
		c, err := claimProbe(ctx, pool, time.Minute)
		require.NoError(t, err)
		require.True(t, c.blocked)
		next = c.next
		return c.scope
	}
	require.Equal(t, serverScope, claim(), "the server first")
	require.Empty(t, claim(), "the server claimed, the domain waits for it")
	require.Greater(t, *next, 50*time.Second, "the server's claim lasts its lease, a minute")

	require.NoError(t, probeFailed(ctx, pool, serverScope, time.Second))
	require.Empty(t, claim(), "the server's next probe is not due yet")
	require.InDelta(t, time.Second, *next, float64(500*time.Millisecond), "it is due after the interval")
	require.Eventually(t, func() bool { return claim() == serverScope }, 5*time.Second, 20*time.Millisecond,
		"the server's next probe is due after the interval")

	n, err := countBlocked(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	held, resumed, err := resumeScope(ctx, pool, serverScope, "test")
	require.NoError(t, err)
	require.Zero(t, held+resumed, "no email waits")
	require.Equal(t, domain, claim(), "the server accepts: the domain's turn")
	require.Empty(t, claim())
}
