package web

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// svgElement is an element of a parsed chart, with its attributes and text.
type svgElement struct {
	Name  string
	Attrs map[string]string
	Text  string
}

// parseSVG parses a chart as XML (it must be well-formed) and returns its
// elements in document order.
func parseSVG(t *testing.T, svg string) []svgElement {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	dec.Strict = true
	var out []svgElement
	var open []int // indexes in out of the open elements
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, svg)
		switch tok := tok.(type) {
		case xml.StartElement:
			e := svgElement{Name: tok.Name.Local, Attrs: map[string]string{}}
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

// chartElems returns the elements named name whose class attribute starts with class.
func chartElems(elems []svgElement, name, class string) []svgElement {
	var out []svgElement
	for _, e := range elems {
		if e.Name == name && strings.HasPrefix(e.Attrs["class"], class) {
			out = append(out, e)
		}
	}
	return out
}

func TestSVGBarChart(t *testing.T) {
	t.Parallel()
	c := barChart{
		ID:          "rate",
		Title:       `Taux <mensuel> & "objectif"`,
		Desc:        "Les chiffres sont dans le tableau qui suit.",
		Categories:  []string{"janv. 25", "févr. 25", "<script>alert(1)</script>", "avr. 25"},
		Series:      []barSeries{{Name: "Taux", Values: []float64{30, 75.5, 0, math.NaN()}, Titles: []string{"janvier 2025 : 30 %"}}},
		Max:         100,
		Target:      60,
		TargetLabel: "Objectif 60 %",
		Format:      func(v float64) string { return strings.TrimSuffix(strings.TrimSuffix(svgNum(v), ".0"), ".") + " %" },
	}
	svg := string(c.SVG())
	elems := parseSVG(t, svg)

	root := elems[0]
	require.Equal(t, "svg", root.Name)
	require.Equal(t, "img", root.Attrs["role"])
	require.Equal(t, "rate-title rate-desc", root.Attrs["aria-labelledby"])
	require.NotContains(t, svg, "style=", "no inline style: the CSP forbids them")
	require.NotContains(t, svg, "<script>", "labels are escaped")

	require.Equal(t, "title", elems[1].Name)
	require.Equal(t, `Taux <mensuel> & "objectif"`, elems[1].Text, "the title, escaped then parsed back")
	require.Equal(t, "desc", elems[2].Name)

	bars := chartElems(elems, "rect", "bar")
	require.Len(t, bars, 3, "no bar for NaN (a month without data)")
	require.Equal(t, "janvier 2025 : 30 %", elems[chartIndex(elems, bars[0])+1].Text, "the bar's own title")
	require.Equal(t, "févr. 25, Taux : 75.5 %", elems[chartIndex(elems, bars[1])+1].Text, "the default title")
	// Heights are proportional: 30 % and 75.5 % of the plot, 0 for 0.
	plotH := float64(chartHeight - chartTop - chartBottom)
	require.Equal(t, svgNum(plotH*0.30), bars[0].Attrs["height"])
	require.Equal(t, svgNum(plotH*0.755), bars[1].Attrs["height"])
	require.Equal(t, "0", bars[2].Attrs["height"])

	cats := chartElems(elems, "text", "category")
	require.Len(t, cats, 4)
	require.Equal(t, "<script>alert(1)</script>", cats[2].Text)

	target := chartElems(elems, "line", "target")
	require.Len(t, target, 1)
	require.Equal(t, svgNum(chartTop+plotH*0.4), target[0].Attrs["y1"], "60 % of the way up")
	require.Equal(t, "Objectif 60 %", chartElems(elems, "text", "target-label")[0].Text)
	require.Empty(t, chartElems(elems, "g", "legend"), "no legend for one series")
}

func TestSVGGroupedBars(t *testing.T) {
	t.Parallel()
	c := barChart{
		ID:         "delays-mssante",
		Title:      "Délais",
		Categories: []string{"janv. 25", "févr. 25", "mars 25"},
		Series: []barSeries{
			{Name: "Médiane", Values: []float64{2, math.NaN(), 1}},
			{Name: "90e centile", Values: []float64{9.2, math.NaN(), 1}},
		},
	}
	elems := parseSVG(t, string(c.SVG()))
	require.Len(t, chartElems(elems, "rect", "bar s0"), 2)
	require.Len(t, chartElems(elems, "rect", "bar s1"), 2)
	require.Len(t, chartElems(elems, "g", "legend"), 1)
	require.Empty(t, chartElems(elems, "line", "target"))
	// The axis rounds 9.2 up to 10: its top label.
	var labels []string
	for _, e := range elems {
		if e.Name == "text" && e.Attrs["text-anchor"] == "end" && e.Attrs["class"] == "" {
			labels = append(labels, e.Text)
		}
	}
	require.Equal(t, []string{"0.0", "2.5", "5.0", "7.5", "10.0"}, labels)
}

func TestSVGEmptyChart(t *testing.T) {
	t.Parallel()
	for _, c := range []barChart{
		{ID: "empty", Title: "Rien"},
		{ID: "nan", Title: "Rien", Categories: []string{"a"}, Series: []barSeries{{Values: []float64{math.NaN()}}}},
		{ID: "ctrl", Title: "bad\x00\x01 chars", Categories: []string{"\x1b"}, Series: []barSeries{{Values: []float64{1}}}},
	} {
		elems := parseSVG(t, string(c.SVG()))
		require.Equal(t, "svg", elems[0].Name, c.ID)
	}
}

func TestChartNiceCeil(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want float64 }{
		{0, 1}, {-3, 1}, {0.7, 1}, {1, 1}, {1.2, 2}, {2.2, 2.5}, {3, 5}, {9.2, 10}, {38, 50}, {120, 200}, {250, 250},
	} {
		require.InDelta(t, tc.want, niceCeil(tc.in), 1e-9, "%v", tc.in)
	}
}

func chartIndex(elems []svgElement, e svgElement) int {
	for i := range elems {
		if elems[i].Name == e.Name && elems[i].Attrs["x"] == e.Attrs["x"] && elems[i].Attrs["y"] == e.Attrs["y"] &&
			elems[i].Attrs["class"] == e.Attrs["class"] {
			return i
		}
	}
	return -1
}
