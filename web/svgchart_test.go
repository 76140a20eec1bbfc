package web

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/readmodel"
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
		Unit:        "%",
		Decimals:    1,
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
	require.Equal(t, "févr. 25, Taux : 75,5\u00a0%", elems[chartIndex(elems, bars[1])+1].Text, "the default title")
	require.Equal(t, []string{"0\u00a0%", "25\u00a0%", "50\u00a0%", "75\u00a0%", "100\u00a0%"}, chartTicks(elems),
		"the axis writes the decimals its step needs, not those of the values")
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
	require.Equal(t, []string{"0,0", "2,5", "5,0", "7,5", "10,0"}, chartTicks(elems))
}

// chartTicks returns the labels of the y axis of a parsed chart, bottom up.
func chartTicks(elems []svgElement) []string {
	var labels []string
	for _, e := range chartElems(elems, "text", "tick") {
		labels = append(labels, e.Text)
	}
	return labels
}

func TestChartAxis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		largest float64
		unit    string
		ticks   []string
	}{
		{0, "", []string{"0,00", "0,25", "0,50", "0,75", "1,00"}},
		{0.004, "s", []string{"0,000\u00a0s", "0,001\u00a0s", "0,002\u00a0s", "0,003\u00a0s", "0,004\u00a0s"}},
		{1, "s", []string{"0,00\u00a0s", "0,25\u00a0s", "0,50\u00a0s", "0,75\u00a0s", "1,00\u00a0s"}},
		{3, "h", []string{"0\u00a0h", "1\u00a0h", "2\u00a0h", "3\u00a0h"}},
		{45, "s", []string{"0\u00a0s", "20\u00a0s", "40\u00a0s", "60\u00a0s"}},
		{100, "%", []string{"0\u00a0%", "25\u00a0%", "50\u00a0%", "75\u00a0%", "100\u00a0%"}},
		{1234, "j", []string{"0\u00a0j", "500\u00a0j", "1000\u00a0j", "1500\u00a0j"}},
	} {
		c := barChart{ID: "axis", Categories: []string{"a"}, Series: []barSeries{{Values: []float64{tc.largest}}}, Unit: tc.unit}
		require.Equal(t, tc.ticks, chartTicks(parseSVG(t, string(c.SVG()))), "%v %s", tc.largest, tc.unit)
	}
}

// TestDelayChartUnits: the delay charts of the statistics climb in the unit
// their delays call for, each tick labelled differently (not "0,0 min" five
// times for delays of seconds).
func TestDelayChartUnits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p50, p90 time.Duration
		unit     string
		ticks    []string
	}{
		{300 * time.Millisecond, 800 * time.Millisecond, "s", []string{"0,00\u00a0s", "0,25\u00a0s", "0,50\u00a0s", "0,75\u00a0s", "1,00\u00a0s"}},
		{4 * time.Second, 45 * time.Second, "s", []string{"0\u00a0s", "20\u00a0s", "40\u00a0s", "60\u00a0s"}},
		{3 * time.Minute, 50 * time.Minute, "min", []string{"0\u00a0min", "20\u00a0min", "40\u00a0min", "60\u00a0min"}},
		{time.Hour, 150 * time.Minute, "h", []string{"0\u00a0h", "1\u00a0h", "2\u00a0h", "3\u00a0h"}},
		{20 * time.Hour, 30 * time.Hour, "h", []string{"0\u00a0h", "10\u00a0h", "20\u00a0h", "30\u00a0h"}},
		{2 * 24 * time.Hour, 9 * 24 * time.Hour, "j", []string{"0,0\u00a0j", "2,5\u00a0j", "5,0\u00a0j", "7,5\u00a0j", "10,0\u00a0j"}},
	} {
		st := readmodel.Stats{Months: []readmodel.MonthRate{{Month: "2025-03"}}, Delays: []readmodel.Delay{
			{Channel: "mssante", Count: 10, P50: tc.p50, P90: tc.p90},
			{Month: "2025-03", Channel: "mssante", Count: 10, P50: tc.p50, P90: tc.p90},
		}}
		delays := delaysByChannel(st, []string{"mars 25"})
		require.Len(t, delays, 1)
		elems := parseSVG(t, string(delays[0].Chart))
		require.Contains(t, elems[1].Text, "par mois ("+tc.unit+")", "the title names the unit")
		require.Equal(t, tc.ticks, chartTicks(elems), "%v", tc.p90)
		bars := chartElems(elems, "rect", "bar")
		require.Len(t, bars, 2)
		require.Contains(t, elems[chartIndex(elems, bars[1])+1].Text, "\u00a0"+tc.unit, "the bars' tooltips in the same unit")
	}
}

func TestDurationUnit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		top  time.Duration
		unit string
		size time.Duration
	}{
		{0, "s", time.Second},
		{119 * time.Second, "s", time.Second},
		{2 * time.Minute, "min", time.Minute},
		{119 * time.Minute, "min", time.Minute},
		{2 * time.Hour, "h", time.Hour},
		{71 * time.Hour, "h", time.Hour},
		{72 * time.Hour, "j", 24 * time.Hour},
	} {
		unit, size := durationUnit(tc.top)
		require.Equal(t, tc.unit, unit, "%v", tc.top)
		require.Equal(t, tc.size, size, "%v", tc.top)
	}
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
