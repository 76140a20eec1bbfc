// Package pgtrace tells what a pgx pool sends to PostgreSQL: each
// statement, its kind (the work, or the begin, commit or rollback of an
// explicit transaction), whether PostgreSQL makes a transaction of it
// (autocommit), and whether it shares its round trip with others (a pgx
// batch). Serve's pool counts them as mssdispatch_db_statements_total; the
// tests count what an operation costs (Log).
package pgtrace

import (
	"context"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Kind is what a statement is to the transactions.
type Kind string

// The kinds of statement.
const (
	// Statement is the work: a query, a write, a COPY.
	Statement Kind = "statement"
	// Begin, Commit and Rollback delimit an explicit transaction.
	Begin    Kind = "begin"
	Commit   Kind = "commit"
	Rollback Kind = "rollback"
)

// Sent is one statement sent to PostgreSQL.
type Sent struct {
	Kind Kind
	// SQL is the statement's text ("COPY <table>" for a COPY).
	SQL string
	// Autocommit is true when the statement was sent outside a transaction
	// and PostgreSQL makes one of it; of a batch sent outside one, only its
	// first statement's is true (the batch runs in one).
	Autocommit bool
	// Batch is the statement's position in its pgx batch, from 1; 0 for a
	// statement sent alone. A batch is one round trip.
	Batch int
}

// RoundTrip reports whether s starts a round trip to the server: a
// statement sent alone, or the first of a batch.
func (s Sent) RoundTrip() bool { return s.Batch <= 1 }

// Tracer is a pool's pgx tracer (pgx.QueryTracer, pgx.BatchTracer and
// pgx.CopyFromTracer) that hands Record each statement the pool's
// connections send; Record is called from several connections at once.
type Tracer struct {
	Record func(Sent)
}

// kindOf is the kind of sql.
func kindOf(sql string) Kind {
	if len(sql) <= len("rollback") {
		switch k := Kind(strings.ToLower(sql)); k {
		case Begin, Commit, Rollback:
			return k
		}
	} else if strings.HasPrefix(sql, "begin ") { // pgx's BeginTx with options
		return Begin
	}
	return Statement
}

// idle reports whether conn is outside a transaction.
func idle(conn *pgx.Conn) bool { return conn.PgConn().TxStatus() == 'I' }

// TraceQueryStart records a statement sent alone.
func (t *Tracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	kind := kindOf(data.SQL)
	t.Record(Sent{Kind: kind, SQL: data.SQL, Autocommit: kind == Statement && idle(conn)})
	return ctx
}

// TraceQueryEnd does nothing.
func (t *Tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart records the statements of a batch, all sent at once.
func (t *Tracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	autocommit := idle(conn)
	for i, q := range data.Batch.QueuedQueries {
		t.Record(Sent{Kind: kindOf(q.SQL), SQL: q.SQL, Autocommit: autocommit && i == 0, Batch: i + 1})
	}
	return ctx
}

// TraceBatchQuery does nothing: TraceBatchStart recorded the batch.
func (t *Tracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd does nothing.
func (t *Tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TraceCopyFromStart records a COPY.
func (t *Tracer) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	t.Record(Sent{Kind: Statement, SQL: "COPY " + data.TableName.Sanitize(), Autocommit: idle(conn)})
	return ctx
}

// TraceCopyFromEnd does nothing.
func (t *Tracer) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// Log keeps the statements a Tracer records (its Record), for a test to
// read what an operation sent.
type Log struct {
	mu   sync.Mutex
	sent []Sent
}

// Record keeps s.
func (l *Log) Record(s Sent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, s)
}

// Take returns the statements kept since the last Take, and forgets them.
func (l *Log) Take() []Sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	sent := l.sent
	l.sent = nil
	return sent
}
