package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/migrations"
	"github.com/mssdispatch/mssdispatch/queue"
)

func migrateCommand(ctx context.Context, e env, stdout io.Writer) error {
	pool, err := openPool(ctx, e.get("DATABASE_URL"), 0, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := migrations.Up(ctx, pool, queue.Migrate)
	if err != nil {
		return err
	}
	p := newPrinter(stdout)
	if len(applied) == 0 {
		p.println("schema up to date")
	}
	for _, name := range applied {
		p.println("applied", name)
	}
	return p.done()
}

// importCommand runs `directory import` or `whitelist import` (kind) with
// the arguments after the command: a file path or https:// URL, and an
// optional --force. It shows progress on stderr and the summary on stdout.
func importCommand(ctx context.Context, e env, kind string, args []string, stdout, stderr io.Writer) error {
	src, force, err := importArgs(kind, args)
	if err != nil {
		return err
	}
	pool, err := openMigratedPool(ctx, e.get("DATABASE_URL"), 0, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := correspondents.NewStore(pool)
	p := &progressLine{w: stderr}
	opts := correspondents.ImportOptions{
		Trigger:    correspondents.TriggerCommand,
		Force:      force,
		Downloaded: func(n int64) { p.show(fmt.Sprintf("%.1f MiB downloaded", float64(n)/(1<<20))) },
		Progress:   func(rows int64) { p.show(fmt.Sprintf("%d rows read", rows)) },
	}
	var sum correspondents.ImportSummary
	if kind == "whitelist" {
		sum, err = store.ImportWhitelistFrom(ctx, src, opts)
	} else {
		sum, err = store.ImportDirectoryFrom(ctx, src, opts)
	}
	p.end()
	if _, ok := errors.AsType[*correspondents.ShrinkError](err); ok {
		return fmt.Errorf("%w (--force imports it anyway)", err)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s imported from %s: %d rows (%d skipped), %d added, %d removed, %d changed\n",
		kind, src, sum.Rows, sum.Skipped, sum.Added, sum.Removed, sum.Changed)
	return err
}

// importArgs reads FILE|URL [--force], the flag before or after the source.
func importArgs(kind string, args []string) (src string, force bool, err error) {
	for _, a := range args {
		switch {
		case a == "--force":
			force = true
		case strings.HasPrefix(a, "-"):
			return "", false, configErrorf("%s import: unknown flag %q", kind, a)
		case src != "":
			return "", false, configErrorf("%s import: one FILE or URL, got %q and %q", kind, src, a)
		default:
			src = a
		}
	}
	if src == "" {
		return "", false, configErrorf("%s import: FILE or URL missing", kind)
	}
	return src, force, nil
}

// progressLine shows a progress message on one line, each message replacing
// the previous one. It is for the eyes only: when a write fails it shows
// nothing more, and the command goes on (an import is not failed, nor
// stopped half-way, for a progress message no one can see).
type progressLine struct {
	w      io.Writer
	last   int  // Length of the message shown, 0 when none.
	failed bool // A write failed: the line is no longer shown.
}

// show replaces the message on the line with msg.
func (p *progressLine) show(msg string) {
	if p.failed {
		return
	}
	_, err := fmt.Fprintf(p.w, "\r%-*s", max(p.last, len(msg)), msg)
	p.failed = err != nil
	p.last = len(msg)
}

// end ends the line if a message was shown.
func (p *progressLine) end() {
	if p.last > 0 && !p.failed {
		_, err := fmt.Fprintln(p.w)
		p.failed = err != nil
	}
	p.last = 0
}
