package dashboard

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/readmodel"
	"github.com/mssdispatch/mssdispatch/web/svgchart/svgcharttest"
)

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
		elems := svgcharttest.Parse(t, string(delays[0].Chart))
		require.Contains(t, elems[1].Text, "par mois ("+tc.unit+")", "the title names the unit")
		require.Equal(t, tc.ticks, svgcharttest.Ticks(elems), "%v", tc.p90)
		bars := svgcharttest.Elems(elems, "rect", "bar")
		require.Len(t, bars, 2)
		require.Contains(t, elems[svgcharttest.Index(elems, bars[1])+1].Text, "\u00a0"+tc.unit, "the bars' tooltips in the same unit")
	}
}
