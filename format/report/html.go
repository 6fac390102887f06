package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/rewind-tools/rewind/analyze/sli"
)

//go:embed html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"dur":     Duration,
	"bytes":   Bytes,
	"pct":     Percent,
	"detail":  ObjectiveDetail,
	"status":  objectiveStatus,
	"avail":   availability,
	"errrate": errRate,
	"apdex":   apdex,
	"lat":     latency,
	"conns":   connCounts,
	"plural":  plural,
	"rate":    func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
	"num":     func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) },
}).Parse(htmlSource))

// htmlChartsPerService bounds the endpoints given charts, by count, so that
// a report of a thousand endpoints stays a reasonable page.
const htmlChartsPerService = 50

// Page geometry: the page reads without horizontal scrolling on a laptop
// screen of 1400 CSS pixels; the overview chart spans the content, and an
// endpoint's two charts share it.
const (
	htmlContentWidth = 1320
	htmlChartHeight  = 230
	htmlHalfWidth    = (htmlContentWidth - 24) / 2
)

type htmlPage struct {
	R         *sli.Report
	Warnings  []string
	Inputs    []string // one line per input of a report over several
	Accuracy  string
	Violated  int
	Overview  template.HTML
	Services  []htmlService
	BucketStr string
}

type htmlService struct {
	S         *sli.Service
	ID        string
	Where     string // "on 10.0.0.1:80" / "to …", or ""
	Rows      []htmlRow
	Truncated int
}

type htmlRow struct {
	Name   string
	ID     string
	St     *sli.Stats
	Split  template.HTML
	Spark  template.HTML
	Hist   template.HTML
	Ser    template.HTML
	Charts bool // Hist and Ser are drawn (the first htmlChartsPerService)
}

// WriteHTML writes r as one self-contained HTML page: inline CSS, a small
// inline script that sorts the tables, and SVG charts drawn here, so it
// needs no network and renders the same every time. It opens with an
// overview chart of the whole capture; each service's table has a
// sparkline per endpoint, and an endpoint's full numbers and charts open on
// demand.
func WriteHTML(w io.Writer, r *sli.Report) error {
	span := r.Capture.SpanNS
	p := htmlPage{R: r, Warnings: warnings(r), Inputs: InputLines(r), Accuracy: accuracyNote(r), Violated: len(r.Violated()),
		BucketStr: Duration(r.BucketNS),
		Overview:  seriesSVG(r.Overview, r.BucketNS, span, htmlContentWidth, htmlChartHeight+40, "whole capture")}
	for i := range r.Services {
		s := &r.Services[i]
		hs := htmlService{S: s, ID: "s" + strconv.Itoa(i)}
		if host := sharedHost(s); s.Comm != "" && s.Addr != "" && !strings.EqualFold(s.Addr, host) {
			hs.Where = "to " + s.Addr
			if s.Role == "server" {
				hs.Where = "on " + s.Addr
			}
		}
		if ct := s.Container; ct.Known() {
			hs.Where += " in " + ct.Runtime + " " + ct.Short()
			if ct.PodUID != "" {
				hs.Where += " (pod " + ct.PodUID + ")"
			}
		}
		if s.NetNS != 0 {
			hs.Where += " netns " + strconv.FormatUint(s.NetNS, 10)
		}
		scale := splitTotal(&s.Stats)
		for j := range s.Endpoints {
			scale = max(scale, splitTotal(&s.Endpoints[j].Stats))
		}
		mk := func(name, id string, st *sli.Stats, charts bool) htmlRow {
			row := htmlRow{Name: name, ID: id, St: st, Split: splitSVG(st, scale),
				Spark: sparkSVG(st.Series, r.BucketNS, span), Charts: charts}
			if charts {
				row.Hist = histogramSVG(st.Histogram, htmlHalfWidth, htmlChartHeight)
				row.Ser = seriesSVG(st.Series, r.BucketNS, span, htmlHalfWidth, htmlChartHeight, name)
			}
			return row
		}
		hs.Rows = append(hs.Rows, mk("(all)", hs.ID+"-all", &s.Stats, true))
		for j := range s.Endpoints {
			e := &s.Endpoints[j]
			hs.Rows = append(hs.Rows, mk(e.Key.String(), hs.ID+"-e"+strconv.Itoa(j), &e.Stats, j < htmlChartsPerService))
		}
		hs.Truncated = max(len(s.Endpoints)-htmlChartsPerService, 0)
		p.Services = append(p.Services, hs)
	}
	var buf bytes.Buffer
	if err := htmlTemplate.Execute(&buf, &p); err != nil {
		return fmt.Errorf("rendering html report: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// Chart colours.
const (
	colServer   = "#4e79a7"
	colTransfer = "#f28e2b"
	colNetwork  = "#59a14f"
	colErrors   = "#e15759"
	colP99      = "#b07aa1"
	colBars     = "#76b7b2"
	colAxis     = "#888"
	colGrid     = "#e6e6e6"
)

// charW estimates the width of a chart label of n characters (11 px
// sans-serif), to keep labels apart and inside their chart.
func charW(n int) float64 { return float64(n)*6.4 + 4 }

func splitTotal(s *sli.Stats) int64 {
	return s.Server.P50 + s.Transfer.P50 + s.Network.P50
}

// splitSVG draws the median server, transfer and network times as one
// stacked bar, scaled to the service's largest.
func splitSVG(s *sli.Stats, scale int64) template.HTML {
	const w, h = 110, 12
	if scale <= 0 {
		return template.HTML(`<span class="na">-</span>`)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="split" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`, w, h, w, h)
	x := 0.0
	for _, part := range []struct {
		name, col string
		l         sli.Latency
	}{{"server", colServer, s.Server}, {"transfer", colTransfer, s.Transfer}, {"network", colNetwork, s.Network}} {
		if part.l.Count == 0 || part.l.P50 == 0 {
			continue
		}
		pw := float64(part.l.P50) / float64(scale) * w
		fmt.Fprintf(&b, `<rect x="%.1f" y="0" width="%.1f" height="%d" fill="%s"><title>%s p50 %s</title></rect>`,
			x, max(pw, 0.5), h, part.col, part.name, Duration(part.l.P50))
		x += pw
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// coverage is how much of bucket i (starting offNS after the capture's
// start) the capture spans: bucketNS except for a partial last bucket.
func coverage(offNS, bucketNS, spanNS int64) int64 {
	if spanNS <= 0 {
		return bucketNS
	}
	end := min(offNS+bucketNS, spanNS)
	c := end - max(offNS, 0)
	return max(c, 1) // an exchange at the very end still covers a ns
}

// perSecond is a bucket's count as a rate over the time it covers, so that
// a partial bucket does not look like a drop in traffic.
func perSecond(n int, covNS int64) float64 { return float64(n) / (float64(covNS) / 1e9) }

// niceCeil returns a round axis maximum ≥ v (1, 2, 2.5, 5 × 10^k) and its
// tick step, for at most ticks steps.
func niceCeil(v float64, ticks int) (top, step float64) {
	if v <= 0 {
		return 1, 1
	}
	raw := v / float64(ticks)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	return math.Ceil(v/step) * step, step
}

// compact writes an axis value: 0.5, 12, 1.2k, 3M.
func compact(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// offsetLabel writes a time since the capture's start for an x axis.
func offsetLabel(ns int64) string {
	if ns == 0 {
		return "0"
	}
	return Duration(ns)
}

// seriesSVG draws a series: requests per second per bucket as bars with
// errors per second in red over them (left axis), the bucket's p99 total
// latency as a line (right axis), and time since the capture's start below.
// A partial last bucket is drawn lighter, its rate over the time it covers.
func seriesSVG(pts []sli.Point, bucketNS, spanNS int64, W, H int, what string) template.HTML {
	if len(pts) == 0 {
		return template.HTML(`<p class="na">no time series</p>`)
	}
	const left, right, top, bottom = 62, 70, 30, 44
	plotW, plotH := float64(W-left-right), float64(H-top-bottom)
	rates := make([]float64, len(pts))
	errs := make([]float64, len(pts))
	partial := make([]bool, len(pts))
	peak, p99 := 0.0, int64(0)
	anyPartial := false
	for i, p := range pts {
		cov := coverage(p.OffsetNS, bucketNS, spanNS)
		rates[i], errs[i] = perSecond(p.Count, cov), perSecond(p.Errors, cov)
		partial[i] = cov < bucketNS && p.Count > 0
		anyPartial = anyPartial || partial[i]
		peak = max(peak, rates[i])
		p99 = max(p99, p.P99)
	}
	yTop, yStep := niceCeil(peak, 4)
	pTop, pStep := niceCeil(float64(p99), 4)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart series" width="%d" height="%d" viewBox="0 0 %d %d" role="img"><title>%s: requests and errors per second, p99 latency, per %s</title>`,
		W, H, W, H, html.EscapeString(what), html.EscapeString(Duration(bucketNS)))
	// Grid and y axes.
	x0, x1, yBase := float64(left), float64(W-right), float64(H-bottom)
	for v := 0.0; v <= yTop+yStep/2; v += yStep {
		y := yBase - v/yTop*plotH
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, x0, y, x1, y, colGrid)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="ax" text-anchor="end">%s</text>`, x0-6, y+4, compact(v))
	}
	if p99 > 0 {
		for v := 0.0; v <= pTop+pStep/2; v += pStep {
			y := yBase - v/pTop*plotH
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="ax" fill="%s">%s</text>`, x1+6, y+4, colP99, offsetLabel(int64(v)))
		}
	}
	fmt.Fprintf(&b, `<text class="axt" transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">requests/s</text>`, float64(top)+plotH/2)
	if p99 > 0 {
		fmt.Fprintf(&b, `<text class="axt" fill="%s" transform="translate(%d %.1f) rotate(90)" text-anchor="middle">p99 total latency</text>`, colP99, W-12, float64(top)+plotH/2)
	}
	// Bars.
	bw := plotW / float64(len(pts))
	var line []string
	for i, p := range pts {
		x := x0 + float64(i)*bw
		op := ""
		if partial[i] {
			op = ` opacity="0.45"`
		}
		if p.Count > 0 {
			h := rates[i] / yTop * plotH
			note := ""
			if partial[i] {
				note = fmt.Sprintf(" (partial bucket: %s of %s)", Duration(coverage(p.OffsetNS, bucketNS, spanNS)), Duration(bucketNS))
			}
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" fill="%s"%s><title>+%s: %s (%s/s), %s, p99 %s%s</title></rect>`,
				x, yBase-h, max(bw*0.88, 0.6), h, colBars, op, offsetLabel(p.OffsetNS), plural(int(p.Count), "exchange"), compact(rates[i]), plural(int(p.Errors), "error"), Duration(p.P99), note)
		}
		if p.Errors > 0 {
			h := errs[i] / yTop * plotH
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" fill="%s"%s/>`, x, yBase-h, max(bw*0.88, 0.6), h, colErrors, op)
		}
		if p.Count > 0 && p99 > 0 {
			line = append(line, fmt.Sprintf("%.1f,%.1f", x+bw/2, yBase-float64(p.P99)/pTop*plotH))
		}
	}
	if len(line) == 1 {
		line = append(line, line[0]) // a point still shows as a dot
	}
	if len(line) > 0 {
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>`, strings.Join(line, " "), colP99)
	}
	// X axis: ticks at round times since the capture's start, as many as
	// fit. The first bucket need not start at 0 (the first exchange may come
	// later), so the ticks are placed from its start.
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, x0, yBase, x1, yBase, colAxis)
	first := pts[0].OffsetNS
	total := int64(len(pts)) * bucketNS
	maxTicks := max(int(plotW/charW(8))/2, 2)
	_, tStep := niceCeil(float64(total), maxTicks)
	step := max(int64(tStep), bucketNS)
	for t := (first + step - 1) / step * step; t <= first+total; t += step {
		x := x0 + float64(t-first)/float64(total)*plotW
		anchor := "middle"
		if t+step > first+total {
			anchor = "end" // the last label stays inside the chart
			x = min(x, x1)
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, x, yBase, x, yBase+4, colAxis)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="ax" text-anchor="%s">%s</text>`, x, yBase+18, anchor, offsetLabel(t))
	}
	fmt.Fprintf(&b, `<text class="axt" x="%.1f" y="%d" text-anchor="middle">time since the capture's start (%s buckets)</text>`,
		x0+plotW/2, H-6, html.EscapeString(Duration(bucketNS)))
	// Legend.
	lx := x0
	item := func(swatch, label string) {
		fmt.Fprintf(&b, `%s<text x="%.1f" y="14" class="ax">%s</text>`, strings.ReplaceAll(swatch, "X", strconv.FormatFloat(lx, 'f', 1, 64)), lx+16, label)
		lx += 16 + charW(len(label)) + 14
	}
	item(`<rect x="X" y="5" width="11" height="11" fill="`+colBars+`"/>`, "requests/s")
	item(`<rect x="X" y="5" width="11" height="11" fill="`+colErrors+`"/>`, "errors/s (5xx, reset, gRPC)")
	if p99 > 0 {
		item(`<rect x="X" y="9" width="12" height="3" fill="`+colP99+`"/>`, "p99 total latency")
	}
	if anyPartial {
		item(`<rect x="X" y="5" width="11" height="11" fill="`+colBars+`" opacity="0.45"/>`, "partial bucket")
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// sparkSVG draws a series' requests per second as a small line for a table
// cell.
func sparkSVG(pts []sli.Point, bucketNS, spanNS int64) template.HTML {
	const w, h = 100, 18
	if len(pts) < 2 {
		return template.HTML(`<span class="na">-</span>`)
	}
	peak := 0.0
	rates := make([]float64, len(pts))
	for i, p := range pts {
		rates[i] = perSecond(p.Count, coverage(p.OffsetNS, bucketNS, spanNS))
		peak = max(peak, rates[i])
	}
	if peak == 0 {
		return template.HTML(`<span class="na">-</span>`)
	}
	pts2 := make([]string, len(rates))
	for i, r := range rates {
		pts2[i] = fmt.Sprintf("%.1f,%.1f", float64(i)/float64(len(rates)-1)*(w-2)+1, h-1-r/peak*(h-2))
	}
	return template.HTML(fmt.Sprintf(`<svg class="spark" width="%d" height="%d" viewBox="0 0 %d %d" role="img"><title>requests/s over the capture, peak %s/s</title><polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/></svg>`,
		w, h, w, h, compact(peak), strings.Join(pts2, " "), colServer))
}

// histogramSVG draws the total latency histogram over its non-empty range,
// with as many bin labels as fit without touching.
func histogramSVG(hist []int, W, H int) template.HTML {
	lo, hi := -1, -1
	peak := 0
	for i, n := range hist {
		if n > 0 {
			if lo < 0 {
				lo = i
			}
			hi = i
			peak = max(peak, n)
		}
	}
	if lo < 0 {
		return template.HTML(`<p class="na">no latency samples</p>`)
	}
	lo, hi = max(lo-1, 0), min(hi+1, len(hist)-1)
	const left, right, top, bottom = 62, 16, 16, 44
	plotW, plotH := float64(W-left-right), float64(H-top-bottom)
	n := hi - lo + 1
	bw := plotW / float64(n)
	x0, yBase := float64(left), float64(H-bottom)
	yTop, yStep := niceCeil(float64(peak), 4)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart hist" width="%d" height="%d" viewBox="0 0 %d %d" role="img"><title>total latency histogram</title>`, W, H, W, H)
	for v := 0.0; v <= yTop+yStep/2; v += yStep {
		y := yBase - v/yTop*plotH
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, x0, y, x0+plotW, y, colGrid)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="ax" text-anchor="end">%s</text>`, x0-6, y+4, compact(v))
	}
	fmt.Fprintf(&b, `<text class="axt" transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">exchanges</text>`, float64(top)+plotH/2)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, x0, yBase, x0+plotW, yBase, colAxis)
	// One label every k bins, k so that the widest label fits between.
	widest := 0
	for i := lo; i <= hi; i++ {
		widest = max(widest, len(Duration(sli.HistogramBounds[i]))+1)
	}
	k := max(1, int(math.Ceil(charW(widest)*1.2/bw)))
	for i := lo; i <= hi; i++ {
		x := x0 + float64(i-lo)*bw
		if hist[i] > 0 {
			bh := float64(hist[i]) / yTop * plotH
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>≤ %s: %d</title></rect>`,
				x+1, yBase-bh, max(bw-2, 1), bh, colServer, Duration(sli.HistogramBounds[i]), hist[i])
		}
		if (i-lo)%k == 0 {
			label := "≤" + Duration(sli.HistogramBounds[i])
			cx, anchor := x+bw/2, "middle"
			switch half := charW(len(label)) / 2; {
			case cx+half > x0+plotW:
				cx, anchor = x0+plotW, "end"
			case cx-half < x0:
				cx, anchor = x0, "start" // clear of the y axis' labels
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="ax" text-anchor="%s">%s</text>`, cx, yBase+18, anchor, label)
		}
	}
	fmt.Fprintf(&b, `<text class="axt" x="%.1f" y="%d" text-anchor="middle">total latency (each bar: exchanges up to its bound)</text></svg>`, x0+plotW/2, H-6)
	return template.HTML(b.String())
}
