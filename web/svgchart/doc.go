// Package svgchart draws the statistics' bar charts as inline SVG on the
// server (BarChart.SVG): no script, no style attribute (the dashboard's
// Content-Security-Policy forbids inline styles; colours are presentation
// attributes, which its style sheet may restyle by class), and every text
// escaped. It holds no HTTP state: a chart is a value, its SVG a
// template.HTML the dashboard's pages embed; Number and DurationUnit write
// the figures the way the charts do.
package svgchart
