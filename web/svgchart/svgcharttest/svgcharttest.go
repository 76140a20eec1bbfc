// Package svgcharttest reads the charts of package svgchart back, for the
// tests of the charts and of the pages that draw them: Parse checks that a
// chart is well-formed XML and returns its elements, Elems, Ticks and
// Index find the bars, the axis and the tooltips among them.
package svgcharttest

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Element is an element of a parsed chart, with its attributes and text.
type Element struct {
	Name  string
	Attrs map[string]string
	Text  string
}

// Parse parses a chart as XML (it must be well-formed) and returns its
// elements in document order.
func Parse(t *testing.T, svg string) []Element {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	dec.Strict = true
	var out []Element
	var open []int // indexes in out of the open elements
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, svg)
		switch tok := tok.(type) {
		case xml.StartElement:
			e := Element{Name: tok.Name.Local, Attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.Attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
			open = append(open, len(out)-1)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 {
				out[open[len(open)-1]].Text += string(tok)
			}
		}
	}
	require.Empty(t, open, "every element closed")
	return out
}

// Elems returns the elements named name whose class attribute starts with class.
func Elems(elems []Element, name, class string) []Element {
	var out []Element
	for _, e := range elems {
		if e.Name == name && strings.HasPrefix(e.Attrs["class"], class) {
			out = append(out, e)
		}
	}
	return out
}

// Ticks returns the labels of the y axis of a parsed chart, bottom up.
func Ticks(elems []Element) []string {
	var labels []string
	for _, e := range Elems(elems, "text", "tick") {
		labels = append(labels, e.Text)
	}
	return labels
}

// Index returns the index in elems of e (an element of Elems), -1 when absent:
// the element after a bar is its tooltip.
func Index(elems []Element, e Element) int {
	for i := range elems {
		if elems[i].Name == e.Name && elems[i].Attrs["x"] == e.Attrs["x"] && elems[i].Attrs["y"] == e.Attrs["y"] &&
			elems[i].Attrs["class"] == e.Attrs["class"] {
			return i
		}
	}
	return -1
}
