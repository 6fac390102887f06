package sli

import (
	"math"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// RelativeAccuracy is the relative error bound of the percentiles reported
// for distributions of more than [ExactLimit] samples: a reported p99 of
// 100 ms means the true p99 lies within 99–101 ms.
const RelativeAccuracy = 0.01

// ExactLimit is the number of samples up to which a distribution keeps every
// value and reports exact percentiles.
const ExactLimit = 100

// maxBins bounds a sketch's memory (8 bytes a bin): at 1% accuracy, 2048
// bins span over 17 orders of magnitude before the lowest bins collapse.
const maxBins = 2048

// quantiles reported, in [Latency] field order.
var quantiles = [5]float64{0.50, 0.90, 0.95, 0.99, 0.999}

// dist is a latency distribution: exact values while few, then a DDSketch.
// Both are deterministic and mergeable, so services can be summed from their
// endpoints.
type dist struct {
	n      int
	max    int64
	exact  []int64 // the values while n <= ExactLimit; nil once sketched
	sketch *ddsketch.DDSketch
}

// newSketch returns an empty sketch. Its index mapping approximates the
// logarithm with a cubic polynomial on the float's mantissa: the same
// accuracy guarantee as the exact logarithm for about 1 % more bins, without
// a math.Log call per sample (which cost as much as the rest of the sketch).
func newSketch() *ddsketch.DDSketch {
	m, err := mapping.NewCubicallyInterpolatedMapping(RelativeAccuracy)
	if err != nil {
		panic("sli: creating sketch: " + err.Error()) // constant arguments: cannot fail
	}
	return ddsketch.NewDDSketch(m, store.NewCollapsingLowestDenseStore(maxBins), store.NewCollapsingLowestDenseStore(maxBins))
}

// add records v, a duration in ns; negative values ([analyze.Unknown]) are
// not samples and are ignored.
func (d *dist) add(v int64) {
	if v < 0 {
		return
	}
	d.n++
	if v > d.max {
		d.max = v
	}
	if d.sketch == nil {
		if len(d.exact) < ExactLimit {
			// append grows the slice geometrically: few allocations per
			// distribution, and small ones for the many small
			// distributions of time buckets.
			d.exact = append(d.exact, v)
			return
		}
		d.toSketch()
	}
	_ = d.sketch.Add(float64(v)) // v >= 0 and finite: cannot fail
}

// toSketch moves the exact values into a new sketch.
func (d *dist) toSketch() {
	d.sketch = newSketch()
	for _, x := range d.exact {
		_ = d.sketch.Add(float64(x))
	}
	d.exact = nil
}

// merge adds o's samples to d.
func (d *dist) merge(o *dist) {
	if o.n == 0 {
		return
	}
	if o.max > d.max {
		d.max = o.max
	}
	if d.sketch == nil && o.sketch == nil && d.n+o.n <= ExactLimit {
		d.exact = append(d.exact, o.exact...)
		d.n += o.n
		return
	}
	if d.sketch == nil {
		d.toSketch()
	}
	if o.sketch != nil {
		_ = d.sketch.MergeWith(o.sketch) // same mapping: cannot fail
	} else {
		for _, x := range o.exact {
			_ = d.sketch.Add(float64(x))
		}
	}
	d.n += o.n
}

// latency summarises d.
func (d *dist) latency() Latency {
	l := Latency{Count: d.n, Exact: d.sketch == nil}
	if d.n == 0 {
		return l
	}
	l.Max = d.max
	var p [len(quantiles)]int64
	if d.sketch == nil {
		s := slices.Clone(d.exact)
		slices.Sort(s)
		for i, q := range quantiles {
			p[i] = s[rank(q, len(s))]
		}
	} else {
		for i, q := range quantiles {
			v, err := d.sketch.GetValueAtQuantile(q)
			if err != nil {
				continue
			}
			// The sketch answers with its bucket's representative value,
			// which may lie up to 1% above the largest sample.
			p[i] = min(int64(math.Round(v)), d.max)
		}
	}
	l.P50, l.P90, l.P95, l.P99, l.P999 = p[0], p[1], p[2], p[3], p[4]
	return l
}

// quantile returns the q-quantile of d (nearest rank when exact, within
// [RelativeAccuracy] otherwise), 0 when d is empty.
func (d *dist) quantile(q float64) int64 {
	if d.n == 0 {
		return 0
	}
	if d.sketch == nil {
		s := slices.Clone(d.exact)
		slices.Sort(s)
		return s[rank(q, len(s))]
	}
	v, err := d.sketch.GetValueAtQuantile(q)
	if err != nil {
		return 0
	}
	return min(int64(math.Round(v)), d.max)
}

// countBelow returns how many samples are < t, or <= t when inclusive.
// Sketched samples are compared by their bin's representative value, so
// samples within [RelativeAccuracy] of t may be misplaced.
func (d *dist) countBelow(t int64, inclusive bool) int {
	below := func(v float64) bool {
		if inclusive {
			return v <= float64(t)
		}
		return v < float64(t)
	}
	n := 0
	if d.sketch == nil {
		for _, x := range d.exact {
			if below(float64(x)) {
				n++
			}
		}
		return n
	}
	var f float64
	d.sketch.ForEach(func(v, c float64) bool {
		if below(v) {
			f += c
		}
		return false
	})
	return int(math.Round(f))
}

// HistogramBounds are the upper bounds (inclusive, ns) of the latency
// histogram bins of [Stats.Histogram]: 1-2-5 steps from 10 µs to 1000 s.
var HistogramBounds = func() []int64 {
	var b []int64
	for d := int64(10_000); d <= 1000e9; d *= 10 {
		b = append(b, d, 2*d, 5*d)
	}
	return b[:len(b)-2]
}()

// histogram counts d's samples per [HistogramBounds] bin; values beyond the
// last bound count in the last bin. It returns nil when d is empty.
func (d *dist) histogram() []int {
	if d.n == 0 {
		return nil
	}
	h := make([]int, len(HistogramBounds))
	put := func(v float64, c int) {
		i, _ := slices.BinarySearch(HistogramBounds, int64(math.Ceil(v)))
		h[min(i, len(h)-1)] += c
	}
	if d.sketch == nil {
		for _, x := range d.exact {
			put(float64(x), 1)
		}
		return h
	}
	var rem float64
	d.sketch.ForEach(func(v, c float64) bool {
		// Counts are whole numbers here; carry rounding across bins.
		rem += c
		n := int(math.Round(rem))
		rem -= float64(n)
		put(min(v, float64(d.max)), n)
		return false
	})
	return h
}

// rank is the index of quantile q among n sorted values by the nearest-rank
// method: the smallest value with at least q·n values at or below it, so
// that the p99 of two samples is the larger one.
func rank(q float64, n int) int {
	return max(int(math.Ceil(q*float64(n)))-1, 0)
}
