package readmodel

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// WorklistCollector exports the size of the secretaries' worklists, counted
// at each scrape by one query: mssdispatch_worklist{list} for each of
// Worklists but WorklistAll, every service together and without the
// dashboard's CountCap. All instances on a database report the same figures.
type WorklistCollector struct {
	pool *pgxpool.Pool
	desc *prometheus.Desc
}

// NewWorklistCollector returns the collector of the worklists of pool's database.
func NewWorklistCollector(pool *pgxpool.Pool) *WorklistCollector {
	return &WorklistCollector{pool: pool, desc: prometheus.NewDesc("mssdispatch_worklist",
		"Deliveries in each worklist of the dashboard (review, failed, paper, scheduled).",
		[]string{"list"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *WorklistCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector; a database error reports it as
// an invalid metric, which the scrape shows.
func (c *WorklistCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := worklistCounts(ctx, c.pool, nil, 0)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, list := range Worklists {
		if n, ok := counts[list]; ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), list)
		}
	}
}
