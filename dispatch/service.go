package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// JobInserter inserts River jobs within a transaction (a *river.Client).
type JobInserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Service receives reports and answers questions about them.
type Service struct {
	pool   *pgxpool.Pool
	jobs   JobInserter
	logger *slog.Logger
}

// NewService returns a Service storing in pool and enqueuing with jobs.
func NewService(pool *pgxpool.Pool, jobs JobInserter, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{pool: pool, jobs: jobs, logger: logger}
}

// InvalidError says why a report cannot be accepted.
type InvalidError struct {
	Field string
	Msg   string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

// Receive durably stores r with the job that will resolve its recipients, in
// one transaction: when it returns nil, the report is committed. A
// retransmission stores nothing and returns the first report's id.
func (s *Service) Receive(ctx context.Context, r Report) (Receipt, error) {
	if err := r.validate(); err != nil {
		return Receipt{}, err
	}
	var rc Receipt
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, dup, err := insertReport(ctx, tx, r)
		if err != nil {
			return err
		}
		rc = Receipt{ReportID: id, Duplicate: dup}
		if dup {
			return nil
		}
		if _, err := s.jobs.InsertTx(ctx, tx, ResolveArgs{ReportID: id}, nil); err != nil {
			return fmt.Errorf("enqueue resolve: %w", err)
		}
		return nil
	})
	if err != nil {
		return Receipt{}, fmt.Errorf("receive report: %w", err)
	}
	s.logger.InfoContext(ctx, "report received", "report_id", rc.ReportID, "control_id", r.ControlID,
		"duplicate", rc.Duplicate, "recipients", len(r.Recipients))
	return rc, nil
}

// Report returns the report with id, or ErrNotFound.
func (s *Service) Report(ctx context.Context, id int64) (ReportView, error) {
	if id <= 0 {
		return ReportView{}, ErrNotFound
	}
	return reportView(ctx, s.pool, id, "")
}

// ReportByDocumentID returns the latest report carrying documentID, or ErrNotFound.
func (s *Service) ReportByDocumentID(ctx context.Context, documentID string) (ReportView, error) {
	if documentID == "" {
		return ReportView{}, ErrNotFound
	}
	return reportView(ctx, s.pool, 0, documentID)
}

// IsInvalid reports whether err is an *InvalidError.
func IsInvalid(err error) bool {
	var inv *InvalidError
	return errors.As(err, &inv)
}
