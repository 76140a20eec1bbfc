package readmodel

import "github.com/jackc/pgx/v5/pgxpool"

// Reader reads the dashboard's views from the database.
type Reader struct {
	pool *pgxpool.Pool
}

// New returns the Reader of pool's database.
func New(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }
