package queue

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// DepthCollector exports the jobs waiting or running, read from River's
// table at each scrape: mssdispatch_jobs{kind, state} for the states
// available, scheduled, retryable and running. All instances on a database
// report the same figures.
type DepthCollector struct {
	pool *pgxpool.Pool
	desc *prometheus.Desc
}

// NewDepthCollector returns the collector of the jobs of pool's database.
func NewDepthCollector(pool *pgxpool.Pool) *DepthCollector {
	return &DepthCollector{pool: pool, desc: prometheus.NewDesc("mssdispatch_jobs",
		"Jobs not finished in the shared queue, by kind and state (available, scheduled, retryable, running).",
		[]string{"kind", "state"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *DepthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector; a database error reports it as
// an invalid metric, which the scrape shows.
func (c *DepthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.pool.Query(ctx, `SELECT kind, state::text, count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running') GROUP BY kind, state`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var kind, state string
		var n int64
		if err := rows.Scan(&kind, &state, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), kind, state)
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
	}
}
