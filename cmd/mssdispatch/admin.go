package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/migrations"
	"github.com/mssdispatch/mssdispatch/queue"
)

func migrateCommand(ctx context.Context, e env, stdout io.Writer) error {
	pool, err := openPool(ctx, e.get("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := migrations.Up(ctx, pool, queue.Migrate)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema up to date")
	}
	for _, name := range applied {
		fmt.Fprintln(stdout, "applied", name)
	}
	return nil
}

// importCommand imports the directory extraction or the whitelist from path.
func importCommand(ctx context.Context, e env, kind, path string, stdout, stderr io.Writer) error {
	pool, err := openPool(ctx, e.get("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := checkSchema(ctx, pool); err != nil {
		return err
	}
	store := correspondents.NewStore(pool)
	var sum correspondents.ImportSummary
	if kind == "whitelist" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		domains, err := correspondents.ParseWhitelist(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if sum, err = store.ImportWhitelist(ctx, path, domains); err != nil {
			return err
		}
	} else {
		rc, err := correspondents.OpenExtraction(path)
		if err != nil {
			return err
		}
		defer rc.Close()
		r, err := correspondents.NewExtractionReader(rc)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		sum, err = store.ImportDirectory(ctx, path, r, func(rows int64) {
			fmt.Fprintf(stderr, "\r%d rows read", rows)
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s imported from %s: %d rows (%d skipped), %d added, %d removed, %d changed\n",
		kind, path, sum.Rows, sum.Skipped, sum.Added, sum.Removed, sum.Changed)
	return nil
}
