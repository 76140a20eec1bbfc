package svgchart

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/web/svgchart/svgcharttest"
)

func TestSVGBarChart(t *testing.T) {
	t.Parallel()
	c := BarChart{
		ID:          "rate",
		Title:       `Taux <mensuel> & "objectif"`,
		Desc:        "Les chiffres sont dans le tableau qui suit.",
		Categories:  []string{"janv. 25", "févr. 25", "<script>alert(1)</script>", "avr. 25"},
		Series:      []Series{{Name: "Taux", Values: []float64{30, 75.5, 0, math.NaN()}, Titles: []string{"janvier 2025 : 30 %"}}},
		Max:         100,
		Target:      60,
		TargetLabel: "Objectif 60 %",
		Unit:        "%",
		Decimals:    1,
	}
	svg := string(c.SVG())
	elems := svgcharttest.Parse(t, svg)

	root := elems[0]
	require.Equal(t, "svg", root.Name)
	require.Equal(t, "img", root.Attrs["role"])
	require.Equal(t, "rate-title rate-desc", root.Attrs["aria-labelledby"])
	require.NotContains(t, svg, "style=", "no inline style: the CSP forbids them")
	require.NotContains(t, svg, "<script>", "labels are escaped")

	require.Equal(t, "title", elems[1].Name)
	require.Equal(t, `Taux <mensuel> & "objectif"`, elems[1].Text, "the title, escaped then parsed back")
	require.Equal(t, "desc", elems[2].Name)

	bars := svgcharttest.Elems(elems, "rect", "bar")
	require.Len(t, bars, 3, "no bar for NaN (a month without data)")
	require.Equal(t, "janvier 2025 : 30 %", elems[svgcharttest.Index(elems, bars[0])+1].Text, "the bar's own title")
	require.Equal(t, "févr. 25, Taux : 75,5\u00a0%", elems[svgcharttest.Index(elems, bars[1])+1].Text, "the default title")
	require.Equal(t, []string{"0\u00a0%", "25\u00a0%", "50\u00a0%", "75\u00a0%", "100\u00a0%"}, svgcharttest.Ticks(elems),
		"the axis writes the decimals its step needs, not those of the values")
	// Heights are proportional: 30 % and 75.5 % of the plot, 0 for 0.
	plotH := float64(chartHeight - chartTop - chartBottom)
	require.Equal(t, svgNum(plotH*0.30), bars[0].Attrs["height"])
	require.Equal(t, svgNum(plotH*0.755), bars[1].Attrs["height"])
	require.Equal(t, "0", bars[2].Attrs["height"])

	cats := svgcharttest.Elems(elems, "text", "category")
	require.Len(t, cats, 4)
	require.Equal(t, "<script>alert(1)</script>", cats[2].Text)

	target := svgcharttest.Elems(elems, "line", "target")
	require.Len(t, target, 1)
	require.Equal(t, svgNum(chartTop+plotH*0.4), target[0].Attrs["y1"], "60 % of the way up")
	require.Equal(t, "Objectif 60 %", svgcharttest.Elems(elems, "text", "target-label")[0].Text)
	require.Empty(t, svgcharttest.Elems(elems, "g", "legend"), "no legend for one series")
}

func TestSVGGroupedBars(t *testing.T) {
	t.Parallel()
	c := BarChart{
		ID:         "delays-mssante",
		Title:      "Délais",
		Categories: []string{"janv. 25", "févr. 25", "mars 25"},
		Series: []Series{
			{Name: "Médiane", Values: []float64{2, math.NaN(), 1}},
			{Name: "90e centile", Values: []float64{9.2, math.NaN(), 1}},
		},
	}
	elems := svgcharttest.Parse(t, string(c.SVG()))
	require.Len(t, svgcharttest.Elems(elems, "rect", "bar s0"), 2)
	require.Len(t, svgcharttest.Elems(elems, "rect", "bar s1"), 2)
	require.Len(t, svgcharttest.Elems(elems, "g", "legend"), 1)
	require.Empty(t, svgcharttest.Elems(elems, "line", "target"))
	// The axis rounds 9.2 up to 10: its top label.
	require.Equal(t, []string{"0,0", "2,5", "5,0", "7,5", "10,0"}, svgcharttest.Ticks(elems))
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
		c := BarChart{ID: "axis", Categories: []string{"a"}, Series: []Series{{Values: []float64{tc.largest}}}, Unit: tc.unit}
		require.Equal(t, tc.ticks, svgcharttest.Ticks(svgcharttest.Parse(t, string(c.SVG()))), "%v %s", tc.largest, tc.unit)
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
		unit, size := DurationUnit(tc.top)
		require.Equal(t, tc.unit, unit, "%v", tc.top)
		require.Equal(t, tc.size, size, "%v", tc.top)
	}
}

func TestSVGEmptyChart(t *testing.T) {
	t.Parallel()
	for _, c := range []BarChart{
		{ID: "empty", Title: "Rien"},
		{ID: "nan", Title: "Rien", Categories: []string{"a"}, Series: []Series{{Values: []float64{math.NaN()}}}},
		{ID: "ctrl", Title: "bad\x00\x01 chars", Categories: []string{"\x1b"}, Series: []Series{{Values: []float64{1}}}},
	} {
		elems := svgcharttest.Parse(t, string(c.SVG()))
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
