package analytics

import (
	"maps"
	"math"
	"slices"
	"strings"
)

// WeakSpot is a cell of the desk (a queue's hour, an agent, a channel) whose
// first response time, satisfaction or SLA breach rate is significantly worse
// than its peers': docs/metrics.md gives the method.
type WeakSpot struct {
	// Cell names it: "queue billing 2026-12-01T14", "agent slack:U1", "channel sms".
	Cell string `json:"cell"`
	// Metric is first_response_p50, csat or sla_first_response_breach_rate.
	Metric string `json:"metric"`
	// Value is the cell's value; Baseline the peers' median.
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	// Score is the robust z-score: 0.6745 (value - median) / MAD, signed so
	// that higher is worse.
	Score float64 `json:"score"`
	// N is how many conversations (or answers) the cell's value comes from.
	N int64 `json:"n"`
	// Unit is the unit of Value and Baseline, as Report.Units says.
	Unit string `json:"unit"`
}

// Weak-spot thresholds (docs/metrics.md).
const (
	// weakScore is the robust z-score from which a cell is flagged
	// (Iglewicz and Hoaglin's 3.5).
	weakScore = 3.5
	// weakMinN is the fewest samples a cell needs to be judged.
	weakMinN = 5
	// weakMinPeers is the fewest cells a group needs to have a baseline.
	weakMinPeers = 4
)

// weakMetric reads one metric of a row for the weak-spot search.
type weakMetric struct {
	name string
	// unit is the metric's unit ("s", "%" or "").
	unit string
	// value returns the metric and its sample count.
	value func(m *Metrics) (float64, int64)
	// higherWorse says which way is bad.
	higherWorse bool
	// floor is the smallest spread assumed, so that a group of identical
	// cells does not flag a trivially different one.
	floor float64
}

var weakMetrics = []weakMetric{
	{"first_response_p50", "s", func(m *Metrics) (float64, int64) { return m.FirstResponse.P50, int64(m.FirstResponse.N) }, true, 60},
	{"csat", "", func(m *Metrics) (float64, int64) { return m.CSAT.Avg, m.CSAT.N }, false, 0.25},
	{"sla_first_response_breach_rate", "%", func(m *Metrics) (float64, int64) { return m.SLAFirstResponse.Value, m.SLAFirstResponse.Den }, true, 0.05},
}

// weakSpots finds the cells of each group that are worse than the group's
// median by a robust z-score of at least weakScore. groups maps a group name
// (a queue, or "agents") to its cells, each a row keyed by the cell's name.
func weakSpots(groups map[string][]Row) []WeakSpot {
	var out []WeakSpot
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		cells := groups[name]
		for _, wm := range weakMetrics {
			var vals []float64
			for i := range cells {
				if v, n := wm.value(&cells[i].Metrics); n >= weakMinN {
					vals = append(vals, v)
				}
			}
			if len(vals) < weakMinPeers {
				continue
			}
			med, mad := medianMAD(vals)
			mad = math.Max(mad, wm.floor)
			for i := range cells {
				v, n := wm.value(&cells[i].Metrics)
				if n < weakMinN {
					continue
				}
				z := 0.6745 * (v - med) / mad
				if !wm.higherWorse {
					z = -z
				}
				if z >= weakScore {
					out = append(out, WeakSpot{Cell: cells[i].Key, Metric: wm.name, Value: v, Baseline: med, Score: math.Round(z*100) / 100, N: n, Unit: wm.unit})
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b WeakSpot) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Cell, b.Cell)
	})
	return out
}

// medianMAD returns the median of vals and their median absolute deviation.
func medianMAD(vals []float64) (median, mad float64) {
	s := slices.Clone(vals)
	slices.Sort(s)
	median = mid(s)
	dev := make([]float64, len(s))
	for i, v := range s {
		dev[i] = math.Abs(v - median)
	}
	slices.Sort(dev)
	return median, mid(dev)
}

func mid(s []float64) float64 {
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
