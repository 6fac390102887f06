package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html"
	"html/template"
	"io"
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
	"rate":    func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
	"num":     func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) },
}).Parse(htmlSource))

// htmlChartsPerService bounds the endpoints given charts, by count, so that
// a report of a thousand endpoints stays a reasonable page.
const htmlChartsPerService = 50

type htmlPage struct {
	R         *sli.Report
	Warnings  []string
	Accuracy  string
	Violated  int
	Services  []htmlService
	BucketStr string
}

type htmlService struct {
	S         *sli.Service
	ID        string
	Rows      []htmlRow
	Charts    []htmlRow
	Truncated int
}

type htmlRow struct {
	Name  string
	ID    string
	St    *sli.Stats
	Split template.HTML
	Hist  template.HTML
	Ser   template.HTML
}

// WriteHTML writes r as one self-contained HTML page: inline CSS, a small
// inline script that sorts the tables, and SVG charts drawn here, so it
// needs no network and renders the same every time.
func WriteHTML(w io.Writer, r *sli.Report) error {
	p := htmlPage{R: r, Warnings: warnings(r), Accuracy: accuracyNote(r), Violated: len(r.Violated()),
		BucketStr: Duration(r.BucketNS)}
	for i := range r.Services {
		s := &r.Services[i]
		hs := htmlService{S: s, ID: "s" + strconv.Itoa(i)}
		scale := splitTotal(&s.Stats)
		for j := range s.Endpoints {
			scale = max(scale, splitTotal(&s.Endpoints[j].Stats))
		}
		mk := func(name, id string, st *sli.Stats) htmlRow {
			return htmlRow{Name: name, ID: id, St: st, Split: splitSVG(st, scale),
				Hist: histogramSVG(st.Histogram), Ser: seriesSVG(st.Series, r.BucketNS)}
		}
		hs.Rows = append(hs.Rows, mk("(all)", hs.ID+"-all", &s.Stats))
		for j := range s.Endpoints {
			e := &s.Endpoints[j]
			hs.Rows = append(hs.Rows, mk(e.Key.String(), hs.ID+"-e"+strconv.Itoa(j), &e.Stats))
		}
		hs.Charts = hs.Rows
		if len(hs.Charts) > htmlChartsPerService+1 {
			hs.Truncated = len(hs.Charts) - htmlChartsPerService - 1
			hs.Charts = hs.Charts[:htmlChartsPerService+1]
		}
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
)

func splitTotal(s *sli.Stats) int64 {
	return s.Server.P50 + s.Transfer.P50 + s.Network.P50
}

// splitSVG draws the median server, transfer and network times as one
// stacked bar, scaled to the service's largest.
func splitSVG(s *sli.Stats, scale int64) template.HTML {
	const w, h = 160, 14
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

// histogramSVG draws the total latency histogram over its non-empty range.
func histogramSVG(h []int) template.HTML {
	lo, hi := -1, -1
	peak := 0
	for i, n := range h {
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
	lo, hi = max(lo-1, 0), min(hi+1, len(h)-1)
	const W, H, left, bottom = 380, 140, 36, 28
	n := hi - lo + 1
	bw := float64(W-left-4) / float64(n)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart hist" width="%d" height="%d" viewBox="0 0 %d %d" role="img"><title>total latency histogram</title>`, W, H, W, H)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, left, H-bottom, W-4, H-bottom)
	fmt.Fprintf(&b, `<text x="%d" y="12" class="ax" text-anchor="end">%d</text>`, left-4, peak)
	for i := lo; i <= hi; i++ {
		x := float64(left) + float64(i-lo)*bw
		bh := float64(h[i]) / float64(peak) * float64(H-bottom-8)
		if h[i] > 0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>≤ %s: %d</title></rect>`,
				x+1, float64(H-bottom)-bh, max(bw-2, 1), bh, colServer, Duration(sli.HistogramBounds[i]), h[i])
		}
		if (i-lo)%max(1, n/6) == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="ax" text-anchor="middle">≤%s</text>`, x+bw/2, H-bottom+14, Duration(sli.HistogramBounds[i]))
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="ax" text-anchor="end">total latency</text></svg>`, W-4, H-2)
	return template.HTML(b.String())
}

// seriesSVG draws exchanges per bucket as bars, errors in red on top of
// them, and the bucket's p99 as a line on its own scale.
func seriesSVG(pts []sli.Point, bucketNS int64) template.HTML {
	if len(pts) == 0 {
		return template.HTML(`<p class="na">no time series</p>`)
	}
	const W, H, left, bottom = 380, 140, 36, 28
	peak, p99 := 0, int64(0)
	for _, p := range pts {
		peak = max(peak, p.Count)
		p99 = max(p99, p.P99)
	}
	peak = max(peak, 1)
	bw := float64(W-left-40) / float64(len(pts))
	plotH := float64(H - bottom - 8)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart series" width="%d" height="%d" viewBox="0 0 %d %d" role="img"><title>exchanges, errors and p99 per %s</title>`, W, H, W, H, Duration(bucketNS))
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, left, H-bottom, W-40, H-bottom)
	fmt.Fprintf(&b, `<text x="%d" y="12" class="ax" text-anchor="end">%d</text>`, left-4, peak)
	if p99 > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="12" class="ax" fill="%s">%s</text>`, W-38, colP99, Duration(p99))
	}
	var line []string
	for i, p := range pts {
		x := float64(left) + float64(i)*bw
		ch := float64(p.Count) / float64(peak) * plotH
		eh := float64(p.Errors) / float64(peak) * plotH
		if p.Count > 0 {
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" fill="%s"><title>+%s: %d exchanges, %d errors, p99 %s</title></rect>`,
				x, float64(H-bottom)-ch, max(bw*0.9, 0.5), ch, colBars, Duration(p.OffsetNS), p.Count, p.Errors, Duration(p.P99))
		}
		if p.Errors > 0 {
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" fill="%s"/>`, x, float64(H-bottom)-eh, max(bw*0.9, 0.5), eh, colErrors)
		}
		if p.Count > 0 && p99 > 0 {
			y := float64(H-bottom) - float64(p.P99)/float64(p99)*plotH
			line = append(line, fmt.Sprintf("%.1f,%.1f", x+bw/2, y))
		}
	}
	if len(line) == 1 {
		line = append(line, line[0]) // a point still shows as a dot
	}
	if len(line) > 0 {
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-linecap="round"/>`, strings.Join(line, " "), colP99)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="ax">+%s</text>`, left, H-bottom+14, Duration(pts[0].OffsetNS))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="ax" text-anchor="end">+%s</text>`, W-40, H-bottom+14, Duration(pts[len(pts)-1].OffsetNS+bucketNS))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="ax" text-anchor="end">%s buckets</text></svg>`, W-4, H-2, html.EscapeString(Duration(bucketNS)))
	return template.HTML(b.String())
}
