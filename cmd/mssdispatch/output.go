package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// printer writes what a command prints and keeps the first write error: the
// command prints its lines one after the other and checks once, with done,
// at the end, so that a closed pipe or a full disk on stdout fails the
// command (exit status 1) instead of passing unseen. After an error the
// following lines are not written.
type printer struct {
	w     io.Writer
	flush func() error // a table's: its tabwriter's Flush; else nil
	err   error
}

func newPrinter(w io.Writer) *printer { return &printer{w: w} }

// newTable returns a printer of lines of cells, each cell but the last
// ended by a tab, that done aligns in columns two spaces apart.
func newTable(w io.Writer) *printer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	return &printer{w: tw, flush: tw.Flush}
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) println(args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintln(p.w, args...)
	}
}

// done writes what a table still holds and returns the first error.
func (p *printer) done() error {
	if p.err == nil && p.flush != nil {
		p.err = p.flush()
	}
	return p.err
}
