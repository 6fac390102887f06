package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rewind-tools/rewind/analyze/sli"
)

// DiffSchemaVersion is the version of the JSON schema of rewind diff
// (documented in SCHEMA.md).
const DiffSchemaVersion = 1

type jsonDiff struct {
	SchemaVersion int                 `json:"schema_version"`
	A             jsonDiffCapture     `json:"a"`
	B             jsonDiffCapture     `json:"b"`
	Thresholds    jsonThresholds      `json:"thresholds"`
	Regressions   int                 `json:"regressions"` // on endpoints both sides have
	New           int                 `json:"new_endpoints"`
	Vanished      int                 `json:"vanished_endpoints"`
	MatchedBy     string              `json:"matched_by"`
	Endpoints     []jsonEndpointDelta `json:"endpoints"`
}

type jsonDiffCapture struct {
	Path      string `json:"path"`
	SpanNS    int64  `json:"span_ns"`
	Exchanges int    `json:"exchanges"`
}

type jsonThresholds struct {
	MaxP50Increase       float64 `json:"max_p50_increase"`
	MaxP99Increase       float64 `json:"max_p99_increase"`
	MaxAvailabilityDrop  float64 `json:"max_availability_drop"`
	MaxErrorRateIncrease float64 `json:"max_error_rate_increase"`
	MaxRateChange        float64 `json:"max_rate_change"`
	MinCount             int     `json:"min_count"`
}

type jsonEndpointDelta struct {
	Service     string         `json:"service"`
	Role        string         `json:"role"`
	Method      string         `json:"method"`
	Host        string         `json:"host"`
	Path        string         `json:"path"`
	Status      string         `json:"status"`
	A           *jsonDiffStats `json:"a"`
	B           *jsonDiffStats `json:"b"`
	Regressions []string       `json:"regressions"`
}

type jsonDiffStats struct {
	Count        int      `json:"count"`
	Rate         float64  `json:"rate_per_s"`
	Availability *float64 `json:"availability"`
	ErrorRate    float64  `json:"error_rate"`
	P50          *int64   `json:"p50_ns"`
	P99          *int64   `json:"p99_ns"`
}

func diffStats(s *sli.Stats) *jsonDiffStats {
	if s == nil {
		return nil
	}
	j := &jsonDiffStats{Count: s.Count, Rate: s.Rate, ErrorRate: s.ErrorRate}
	if s.Availability >= 0 {
		a := s.Availability
		j.Availability = &a
	}
	if l := diffLatency(s); l.Count > 0 {
		p50, p99 := l.P50, l.P99
		j.P50, j.P99 = &p50, &p99
	}
	return j
}

// diffLatency is the latency a diff compares: total, or server when total
// was not measured.
func diffLatency(s *sli.Stats) sli.Latency {
	if s.Total.Count == 0 {
		return s.Server
	}
	return s.Total
}

func deltaStatus(e *sli.EndpointDiff) string {
	switch {
	case e.A == nil:
		return "new"
	case e.B == nil:
		return "vanished"
	case len(e.Regressions) > 0:
		return "regressed"
	}
	return "ok"
}

// countRegressions counts the changes flagged on endpoints both sides
// have; endpoints on one side only are counted apart (see countNew).
func countRegressions(d *sli.Diff) int {
	n := 0
	for _, e := range d.Endpoints {
		if e.A != nil && e.B != nil {
			n += len(e.Regressions)
		}
	}
	return n
}

// countNew returns how many endpoints only B has and only A has.
func countNew(d *sli.Diff) (added, vanished int) {
	for _, e := range d.Endpoints {
		switch {
		case e.A == nil:
			added++
		case e.B == nil:
			vanished++
		}
	}
	return added, vanished
}

// WriteDiffJSON writes d as one indented JSON document.
func WriteDiffJSON(w io.Writer, d *sli.Diff) error {
	o := d.Options
	out := jsonDiff{
		SchemaVersion: DiffSchemaVersion,
		A:             jsonDiffCapture{d.A.Path, d.A.SpanNS, d.A.Exchanges},
		B:             jsonDiffCapture{d.B.Path, d.B.SpanNS, d.B.Exchanges},
		Thresholds: jsonThresholds{o.MaxP50Increase, o.MaxP99Increase, o.MaxAvailabilityDrop,
			o.MaxErrorRateIncrease, o.MaxRateChange, o.MinCount},
		Regressions: countRegressions(d),
		MatchedBy:   d.Options.MatchedBy(),
		Endpoints:   make([]jsonEndpointDelta, 0, len(d.Endpoints)),
	}
	out.New, out.Vanished = countNew(d)
	for i := range d.Endpoints {
		e := &d.Endpoints[i]
		j := jsonEndpointDelta{
			Service: e.Service, Role: e.Role, Method: e.Key.Method, Host: e.Key.Host, Path: e.Key.Path,
			Status: deltaStatus(e), A: diffStats(e.A), B: diffStats(e.B), Regressions: e.Regressions,
		}
		if j.Regressions == nil {
			j.Regressions = []string{}
		}
		out.Endpoints = append(out.Endpoints, j)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding diff: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing diff: %w", err)
	}
	return nil
}

// WriteDiffText writes d as a table: one row per endpoint with its before
// → after values and the regressions flagged.
func WriteDiffText(w io.Writer, d *sli.Diff) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "rewind diff: %s (A, %d exchanges over %s) → %s (B, %d exchanges over %s)\n",
		orDash(d.A.Path), d.A.Exchanges, Duration(d.A.SpanNS), orDash(d.B.Path), d.B.Exchanges, Duration(d.B.SpanNS))
	o := d.Options
	fmt.Fprintf(bw, "thresholds: p50 +%s, p99 +%s, availability -%spp, error rate +%spp, rate ±%s; min %d exchanges a side\n",
		limitPct(o.MaxP50Increase), limitPct(o.MaxP99Increase), limitPP(o.MaxAvailabilityDrop),
		limitPP(o.MaxErrorRateIncrease), limitPct(o.MaxRateChange), o.MinCount)
	added, vanished := countNew(d)
	fmt.Fprintf(bw, "%d regressions; endpoints: %d new, %d vanished, matched by %s\n",
		countRegressions(d), added, vanished, o.MatchedBy())
	rows := [][]string{{"SERVICE", "ENDPOINT", "COUNT", "RATE/s", "AVAIL", "P50", "P99", "FLAGS"}}
	for i := range d.Endpoints {
		e := &d.Endpoints[i]
		name := e.Key.String()
		if e.Key == sli.AllKey {
			name = "(all)"
		}
		var flags string
		switch {
		case e.A == nil:
			flags = "NEW"
		case e.B == nil:
			flags = "VANISHED"
		default:
			flags = strings.ToUpper(strings.Join(e.Regressions, ","))
		}
		rows = append(rows, []string{
			e.Role + " " + e.Service, truncate(name, 48),
			change(e.A, e.B, func(s *sli.Stats) string { return strconv.Itoa(s.Count) }),
			change(e.A, e.B, func(s *sli.Stats) string { return strconv.FormatFloat(s.Rate, 'f', 2, 64) }),
			change(e.A, e.B, availability),
			change(e.A, e.B, func(s *sli.Stats) string { l := diffLatency(s); return latency(l, l.P50) }),
			change(e.A, e.B, func(s *sli.Stats) string { l := diffLatency(s); return latency(l, l.P99) }),
			flags,
		})
	}
	writeTable(bw, rows, true)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing diff: %w", err)
	}
	return nil
}

func change(a, b *sli.Stats, f func(*sli.Stats) string) string {
	x, y := "-", "-"
	if a != nil {
		x = f(a)
	}
	if b != nil {
		y = f(b)
	}
	if x == y {
		return x
	}
	return x + "→" + y
}

func limitPct(v float64) string {
	if v <= 0 {
		return "off"
	}
	return strconv.FormatFloat(v*100, 'f', -1, 64) + "%"
}

func limitPP(v float64) string {
	if v <= 0 {
		return "off"
	}
	return strconv.FormatFloat(v*100, 'f', -1, 64)
}
