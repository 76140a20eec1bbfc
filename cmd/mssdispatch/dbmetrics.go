package main

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// statementCounter counts the statements serve's pool sends to PostgreSQL,
// River's included, as mssdispatch_db_statements_total{kind}: "statement"
// for the work, "begin", "commit" and "rollback" for the explicit
// transactions around it, and "autocommit" for the transaction PostgreSQL
// makes of a statement (or a batch) sent outside one, so that commit +
// autocommit is the transactions committed. It is the pool's pgx tracer (a
// batch counts each of its statements, a COPY one): the cost of a report in
// statements and commits is read off /metrics, as the load table does.
type statementCounter struct {
	*prometheus.CounterVec // the prometheus.Collector serve registers
}

// statementKinds are the kinds of mssdispatch_db_statements_total.
var statementKinds = []string{"statement", "begin", "commit", "rollback", "autocommit"}

func newStatementCounter() *statementCounter {
	c := &statementCounter{prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mssdispatch_db_statements_total",
		Help: "Statements sent to PostgreSQL by this instance, by kind: statement (the work, River's included), begin, commit or rollback; autocommit counts the transactions of statements sent outside one.",
	}, []string{"kind"})}
	for _, k := range statementKinds {
		c.WithLabelValues(k)
	}
	return c
}

// count counts sql by its kind, and the transaction it makes when conn is
// in none.
func (c *statementCounter) count(conn *pgx.Conn, sql string) {
	kind := "statement"
	if len(sql) <= len("rollback") {
		switch k := strings.ToLower(sql); k {
		case "begin", "commit", "rollback":
			kind = k
		}
	} else if strings.HasPrefix(sql, "begin ") { // pgx's BeginTx with options
		kind = "begin"
	}
	c.WithLabelValues(kind).Inc()
	if kind == "statement" && conn != nil && conn.PgConn().TxStatus() == 'I' {
		c.WithLabelValues("autocommit").Inc()
	}
}

// TraceQueryStart counts a statement.
func (c *statementCounter) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	c.count(conn, data.SQL)
	return ctx
}

// TraceQueryEnd does nothing.
func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart counts the transaction of a batch sent outside one (its
// statements run in one); TraceBatchQuery counts each statement.
func (c *statementCounter) TraceBatchStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	if conn.PgConn().TxStatus() == 'I' {
		c.WithLabelValues("autocommit").Inc()
	}
	return ctx
}

// TraceBatchQuery counts a statement of a batch.
func (c *statementCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	c.count(nil, data.SQL)
}

// TraceBatchEnd does nothing.
func (c *statementCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TraceCopyFromStart counts a COPY.
func (c *statementCounter) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	c.count(conn, "copy")
	return ctx
}

// TraceCopyFromEnd does nothing.
func (c *statementCounter) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
