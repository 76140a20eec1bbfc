// Package pgtest gives each test its own PostgreSQL database, cloned from a
// template migrated once per schema version, so database tests run in
// parallel against a real server without seeing each other's rows.
//
// The server is MSSDISPATCH_TEST_DATABASE_URL when set, else the local server
// on 127.0.0.1:5432 as user postgres (`make test` starts a private cluster and
// sets the variable when there is none).
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mssdispatch/mssdispatch/migrations"
	"github.com/mssdispatch/mssdispatch/queue"
)

// DefaultURL is the server used when MSSDISPATCH_TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// lockKey serialises template building and cloning across test processes.
const lockKey = 0x7067746573 // "pgtes"

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// AdminURL returns the URL of the test server's maintenance database.
func AdminURL() string {
	if u := os.Getenv("MSSDISPATCH_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// NewDatabase creates a fresh migrated database for t, dropped when t ends,
// and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	templateOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		templateName, templateErr = ensureTemplate(ctx)
	})
	if templateErr != nil {
		t.Fatalf("pgtest: template database: %v", templateErr)
	}
	return newDatabase(t, templateName)
}

// NewEmptyDatabase creates a fresh database without any schema for t,
// dropped when t ends, and returns its URL.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "template0")
}

func newDatabase(t testing.TB, template string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "mssdispatch_test_" + randomHex(6)
	err := withAdmin(ctx, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template))
		return err
	})
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Errorf("pgtest: drop database: %v", err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return databaseURL(t, name)
}

// NewPool creates a fresh migrated database for t and returns a pool on it,
// closed when t ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Connect(t, NewDatabase(t))
}

// Connect returns a pool on url, closed when t ends.
func Connect(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func databaseURL(t testing.TB, name string) string {
	cfg, err := pgx.ParseConfig(AdminURL())
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", "MSSDISPATCH_TEST_DATABASE_URL", err)
	}
	host := cfg.Host
	if len(host) > 0 && host[0] == '/' {
		return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", cfg.User, name, host, cfg.Port)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, host, cfg.Port, name)
}

// ensureTemplate builds, once per schema version, a migrated template database.
func ensureTemplate(ctx context.Context) (string, error) {
	all, err := migrations.All()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range all {
		fmt.Fprintf(h, "%s\n%s\n", m.Name, m.SQL)
	}
	name := "mssdispatch_tmpl_" + hex.EncodeToString(h.Sum(nil))[:12]
	err = withAdmin(ctx, func(conn *pgx.Conn) error {
		var ready bool
		err := conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&ready)
		if err == nil && ready {
			return nil
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Absent, or left half-built by an interrupted run (dropped). The
		// templates of other schemas stay: another checkout (a branch with
		// other migrations) may be running its tests from one right now.
		if err == nil {
			if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH IS_TEMPLATE false", name)); err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE %s WITH (FORCE)", name)); err != nil {
				return err
			}
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return err
		}
		cfg, err := pgxpool.ParseConfig(AdminURL())
		if err != nil {
			return err
		}
		cfg.ConnConfig.Database = name
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return err
		}
		_, err = migrations.Up(ctx, pool, queue.Migrate)
		pool.Close()
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH IS_TEMPLATE true ALLOW_CONNECTIONS false", name))
		return err
	})
	return name, err
}

// withAdmin runs fn on a maintenance connection holding the pgtest lock.
func withAdmin(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return fmt.Errorf("connect to %s (set MSSDISPATCH_TEST_DATABASE_URL): %w", AdminURL(), err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockKey)); err != nil {
		return err
	}
	return fn(conn)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
