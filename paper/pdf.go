package paper

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

var (
	// ErrInvalidPDF is returned for a PDF that cannot be read (a report
	// given to Render, a letter given to Merge). It is a permanent error.
	ErrInvalidPDF = errors.New("paper: invalid PDF")
	// ErrNoPDF is returned by Merge without PDF to merge.
	ErrNoPDF = errors.New("paper: no PDF to merge")
)

// disableConfigDir makes pdfcpu keep its configuration in memory: by
// default it writes a configuration directory (config.yml, fonts,
// certificates) under the user's configuration directory the first time
// it is configured. pdfcpu keeps this setting in a global variable, set
// once here before any use.
var disableConfigDir = sync.OnceFunc(api.DisableConfigDir)

// config returns a pdfcpu configuration that never touches the file
// system nor the network.
func config() *model.Configuration {
	disableConfigDir()
	conf := model.NewDefaultConfiguration()
	conf.Offline = true
	conf.ValidationMode = model.ValidationRelaxed
	return conf
}

// pageCount returns the number of pages of pdf.
func pageCount(pdf []byte) (int, error) {
	n, err := api.PageCount(bytes.NewReader(pdf), config())
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidPDF, err)
	}
	if n < 1 {
		return 0, fmt.Errorf("%w: no page", ErrInvalidPDF)
	}
	return n, nil
}

// Merge returns the concatenation of pdfs, in order: the PDF of a batch of
// letters, its summary sheet (see RenderSummary) first. It returns ErrNoPDF
// without pdfs and ErrInvalidPDF when one cannot be read.
func Merge(pdfs ...[]byte) ([]byte, error) {
	if len(pdfs) == 0 {
		return nil, ErrNoPDF
	}
	rs := make([]io.ReadSeeker, len(pdfs))
	for i, p := range pdfs {
		rs[i] = bytes.NewReader(p)
	}
	var out bytes.Buffer
	if err := api.MergeRaw(rs, &out, false, config()); err != nil {
		return nil, fmt.Errorf("%w: merge: %w", ErrInvalidPDF, err)
	}
	return out.Bytes(), nil
}

// appendReport returns cover followed by the pages of report, each page
// of report stamped at its bottom with footer, in which %p is the page
// number and %P the number of pages.
func appendReport(cover, report []byte, footer string) ([]byte, error) {
	merged, err := Merge(cover, report)
	if err != nil {
		return nil, err
	}
	// pdfcpu reads %p, %P, %t and %v in a stamp: keep no other %.
	footer = strings.NewReplacer("%p", "\x00p", "%P", "\x00P", "%", " ").Replace(footer)
	footer = strings.ReplaceAll(footer, "\x00", "%")
	wm, err := api.TextWatermark(footer,
		"font:Helvetica, points:8, position:bc, offset:0 23.6, scale:1 abs, rotation:0, fillcolor:#505050, opacity:1",
		true, false, types.POINTS)
	if err != nil {
		return nil, fmt.Errorf("paper: report footer: %w", err)
	}
	var out bytes.Buffer
	if err := api.AddWatermarks(bytes.NewReader(merged), &out, []string{"2-"}, wm, config()); err != nil {
		return nil, fmt.Errorf("paper: report footer: %w", err)
	}
	return out.Bytes(), nil
}
