package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mssdispatch/mssdispatch/internal/pgtrace"
)

// statementCounter counts the statements serve's pool sends to PostgreSQL,
// River's included, as mssdispatch_db_statements_total{kind}: "statement"
// for the work, "begin", "commit" and "rollback" for the explicit
// transactions around it, and "autocommit" for the transaction PostgreSQL
// makes of a statement (or a batch) sent outside one, so that commit +
// autocommit is the transactions committed. It is the pool's pgx tracer
// (package pgtrace: a batch counts each of its statements, a COPY one): the
// cost of a report in statements and commits is read off /metrics, as the
// load table does.
type statementCounter struct {
	*prometheus.CounterVec // the prometheus.Collector serve registers
	*pgtrace.Tracer        // the pgx tracer openPool installs
}

// statementKinds are the kinds of mssdispatch_db_statements_total.
var statementKinds = []string{string(pgtrace.Statement), string(pgtrace.Begin), string(pgtrace.Commit),
	string(pgtrace.Rollback), "autocommit"}

func newStatementCounter() *statementCounter {
	c := &statementCounter{CounterVec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_db_statements_total",
		Help: "Statements sent to PostgreSQL by this instance, by kind: statement (the work, River's included), begin, commit or rollback; autocommit counts the transactions of statements sent outside one.",
	}, []string{"kind"})}
	for _, k := range statementKinds {
		c.WithLabelValues(k)
	}
	c.Tracer = &pgtrace.Tracer{Record: c.count}
	return c
}

// count counts s by its kind, and the transaction it makes when sent
// outside one.
func (c *statementCounter) count(s pgtrace.Sent) {
	c.WithLabelValues(string(s.Kind)).Inc()
	if s.Autocommit {
		c.WithLabelValues("autocommit").Inc()
	}
}
