package svgchart

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// BarChart is a bar chart: groups of bars, one group per category, one bar
// per series, with an optional horizontal target line.
type BarChart struct {
	// ID prefixes the ids of the chart's title and description; unique in the page.
	ID string
	// Title is the accessible name (<title>); Desc the description (<desc>),
	// which should say where the figures are as a table.
	Title, Desc string
	// Categories label the groups on the x axis.
	Categories []string
	// Series are the bars of each category, side by side.
	Series []Series
	// Max is the least top of the y axis (100 for a rate); the axis goes up
	// to the next step above the largest value (and the target) when larger.
	Max float64
	// TargetLabel, when set, draws a dashed line at Target labelled with it.
	Target      float64
	TargetLabel string
	// Unit follows every number the chart writes ("%", "min"), after a
	// no-break space; none when empty.
	Unit string
	// Decimals is the number of decimals of the bars' values; the axis
	// writes as many as its step needs.
	Decimals int
}

// Series is one bar per category.
type Series struct {
	// Name is shown in the legend when there are several series.
	Name string
	// Values has one value per category; NaN draws no bar (no data).
	Values []float64
	// Titles, when set, are the bars' tooltips (one per category); the
	// default is "category, name: value".
	Titles []string
}

// The chart's geometry, in SVG user units.
const (
	chartWidth   = 720
	chartHeight  = 280
	chartLeft    = 56
	chartRight   = 12
	chartTop     = 24
	chartBottom  = 44
	chartLegendH = 18
)

// seriesColours are the bars' fills, by series (contrast ≥ 3:1 on white).
var seriesColours = []string{"#1f5f99", "#b85c00", "#2e7d4f", "#7a3e9d"}

// SVG returns the chart as an <svg> element.
func (c BarChart) SVG() template.HTML {
	format := func(v float64) string { return Number(v, c.Decimals, c.Unit) }
	top, step := niceAxis(math.Max(c.Max, c.largest()))
	height := float64(chartHeight)
	legend := len(c.Series) > 1
	if legend {
		height += chartLegendH
	}
	plotW := float64(chartWidth - chartLeft - chartRight)
	plotH := float64(chartHeight - chartTop - chartBottom)
	y := func(v float64) float64 { return chartTop + plotH - plotH*v/top }

	var b strings.Builder
	id := c.ID
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %s" width="%d" height="%s" role="img" aria-labelledby="%s-title %s-desc">`,
		chartWidth, svgNum(height), chartWidth, svgNum(height), svgEsc(id), svgEsc(id))
	fmt.Fprintf(&b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, svgEsc(id), svgEsc(c.Title), svgEsc(id), svgEsc(c.Desc))

	// The y axis: a line at each step from 0 to top.
	b.WriteString(`<g class="grid" font-size="11" fill="#555">`)
	decimals := decimalsOf(step)
	for i := 0; float64(i)*step <= top*(1+1e-9); i++ {
		v := float64(i) * step
		yy := y(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#d0d4d9" stroke-width="1"/>`,
			chartLeft, svgNum(yy), chartWidth-chartRight, svgNum(yy))
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%s" text-anchor="end">%s</text>`, chartLeft-6, svgNum(yy+4),
			svgEsc(Number(v, decimals, c.Unit)))
	}
	b.WriteString(`</g>`)

	// The bars, a group per category.
	n := len(c.Categories)
	if n > 0 && len(c.Series) > 0 {
		group := plotW / float64(n)
		gap := math.Max(2, group*0.2)
		barW := (group - gap) / float64(len(c.Series))
		labelEvery := int(math.Ceil(float64(n) / 12))
		b.WriteString(`<g class="bars" font-size="11">`)
		for i, cat := range c.Categories {
			x0 := chartLeft + group*float64(i) + gap/2
			for s, series := range c.Series {
				if i >= len(series.Values) || math.IsNaN(series.Values[i]) {
					continue
				}
				v := math.Max(series.Values[i], 0)
				x, yy := x0+barW*float64(s), y(v)
				tip := cat + ", " + series.Name + " : " + format(v)
				if series.Name == "" {
					tip = cat + " : " + format(v)
				}
				if i < len(series.Titles) && series.Titles[i] != "" {
					tip = series.Titles[i]
				}
				fmt.Fprintf(&b, `<rect class="bar s%d" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`,
					s, svgNum(x), svgNum(yy), svgNum(math.Max(barW-1, 1)), svgNum(chartTop+plotH-yy), seriesColours[s%len(seriesColours)], svgEsc(tip))
				if barW >= 22 {
					fmt.Fprintf(&b, `<text class="value" x="%s" y="%s" text-anchor="middle" fill="#222">%s</text>`,
						svgNum(x+barW/2), svgNum(yy-3), svgEsc(format(v)))
				}
			}
			if i%labelEvery == 0 {
				fmt.Fprintf(&b, `<text class="category" x="%s" y="%d" text-anchor="middle" fill="#222">%s</text>`,
					svgNum(x0+(group-gap)/2), chartHeight-chartBottom+16, svgEsc(cat))
			}
		}
		b.WriteString(`</g>`)
	}
	// The x axis.
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#222" stroke-width="1"/>`,
		chartLeft, svgNum(chartTop+plotH), chartWidth-chartRight, svgNum(chartTop+plotH))

	if c.TargetLabel != "" && c.Target > 0 && c.Target <= top {
		yy := y(c.Target)
		fmt.Fprintf(&b, `<line class="target" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#b00020" stroke-width="2" stroke-dasharray="6 4"/>`,
			chartLeft, svgNum(yy), chartWidth-chartRight, svgNum(yy))
		fmt.Fprintf(&b, `<text class="target-label" x="%d" y="%s" text-anchor="end" font-size="12" fill="#b00020">%s</text>`,
			chartWidth-chartRight, svgNum(yy-5), svgEsc(c.TargetLabel))
	}
	if legend {
		b.WriteString(`<g class="legend" font-size="12" fill="#222">`)
		x := float64(chartLeft)
		for s, series := range c.Series {
			fmt.Fprintf(&b, `<rect x="%s" y="%d" width="12" height="12" fill="%s"/><text x="%s" y="%d">%s</text>`,
				svgNum(x), chartHeight-6, seriesColours[s%len(seriesColours)], svgNum(x+16), chartHeight+4, svgEsc(series.Name))
			x += 24 + 7*float64(len([]rune(series.Name)))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // safe: every text and attribute above went through svgEsc
}

// largest is the largest value of the chart, or the target when larger.
func (c BarChart) largest() float64 {
	m := 0.0
	if c.TargetLabel != "" {
		m = c.Target
	}
	for _, s := range c.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) && v > m {
				m = v
			}
		}
	}
	return m
}

// niceAxis returns the top of a y axis showing values up to v, and its step:
// 1, 2, 2.5 or 5 times a power of ten, for three or four intervals (0 to 1 by
// 0.25 when v is not positive).
func niceAxis(v float64) (top, step float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		v = 1
	}
	step = niceCeil(v / 4)
	return math.Ceil(v/step-1e-9) * step, step
}

// decimalsOf is the number of decimals that write step exactly (at most 6).
func decimalsOf(step float64) int {
	for d := range 6 {
		x := step * math.Pow10(d)
		if math.Abs(x-math.Round(x)) <= 1e-6*x {
			return d
		}
	}
	return 6
}

// Number writes v in French with that many decimals ("2,5"), then a
// no-break space and unit unless unit is empty.
func Number(v float64, decimals int, unit string) string {
	s := strings.Replace(strconv.FormatFloat(v, 'f', decimals, 64), ".", ",", 1)
	if unit == "" {
		return s
	}
	return s + "\u00a0" + unit
}

// DurationUnit picks the unit a chart of durations up to top reads best in,
// and its size: seconds under 2 minutes, minutes under 2 hours, hours under
// 3 days, days beyond.
func DurationUnit(top time.Duration) (string, time.Duration) {
	switch {
	case top < 2*time.Minute:
		return "s", time.Second
	case top < 2*time.Hour:
		return "min", time.Minute
	case top < 72*time.Hour:
		return "h", time.Hour
	}
	return "j", 24 * time.Hour
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// svgNum writes a coordinate with at most one decimal.
func svgNum(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// svgEsc escapes s for SVG text and attribute values, dropping the control
// characters XML does not allow.
func svgEsc(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
			return -1
		}
		return r
	}, s)
	return template.HTMLEscapeString(s)
}
