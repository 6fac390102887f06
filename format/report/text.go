package report

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rewind-tools/rewind/analyze/sli"
)

// TextWidth is the width the default text table aims to fit in.
const TextWidth = 120

// maxEndpointWidth truncates long endpoint names in the wide text table.
const maxEndpointWidth = 60

// RenderOptions tune the renderings.
type RenderOptions struct {
	// Wide shows every column in the text table instead of the ones that
	// fit in [TextWidth] columns.
	Wide bool
}

// WriteText writes r as a terminal report: a capture summary, the
// objectives, then one table per service whose first row sums the service.
func WriteText(w io.Writer, r *sli.Report) error {
	return writeText(w, r, RenderOptions{})
}

func writeText(w io.Writer, r *sli.Report, opts RenderOptions) error {
	bw := bufio.NewWriter(w)
	c := &r.Capture

	fmt.Fprintf(bw, "rewind SLI report: %s", orDash(c.Path))
	if c.Format != "" {
		fmt.Fprintf(bw, " (%s", c.Format)
		if c.Host != "" {
			fmt.Fprintf(bw, ", host %s", c.Host)
		}
		bw.WriteString(")")
	}
	bw.WriteString("\n")
	if !c.Start.IsZero() {
		fmt.Fprintf(bw, "span       %s  (%s → %s)\n", Duration(c.SpanNS),
			c.Start.Format("2006-01-02 15:04:05.000 -07:00"), c.End.Format("15:04:05.000"))
	}
	for _, in := range InputLines(r) {
		fmt.Fprintf(bw, "input      %s\n", in)
	}
	fmt.Fprintf(bw, "exchanges  %d   connections %s\n", c.Exchanges, connCounts(c))
	salvaged := "no"
	if c.Salvaged {
		salvaged = "yes"
	}
	fmt.Fprintf(bw, "lost       %d events   salvaged %s\n", c.Lost, salvaged)
	if len(c.Flags) > 0 {
		parts := make([]string, len(c.Flags))
		for i, f := range c.Flags {
			parts[i] = f.Name + " " + strconv.Itoa(f.Count)
		}
		fmt.Fprintf(bw, "flags      %s\n", strings.Join(parts, ", "))
	}
	for _, wn := range warnings(r) {
		fmt.Fprintf(bw, "warning    %s\n", wn)
	}
	fmt.Fprintf(bw, "latency    %s; \"-\" = not measured\n", accuracyNote(r))
	fmt.Fprintf(bw, "apdex      T = %s on total latency (satisfied ≤ T, tolerating ≤ 4T)\n", Duration(r.ApdexT))
	if len(r.Objectives) > 0 {
		fmt.Fprintf(bw, "\nobjectives: %d of %d violated\n", len(r.Violated()), len(r.Objectives))
		rows := [][]string{}
		for _, o := range r.Objectives {
			rows = append(rows, []string{strings.ToUpper(objectiveStatus(o)), o.Text, ObjectiveDetail(o)})
		}
		writeTable(bw, rows, true)
	}

	for i := range r.Services {
		writeService(bw, r, &r.Services[i], opts)
	}
	if len(r.Services) == 0 {
		bw.WriteString("\nno HTTP exchanges\n")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// warnings are the capture's warnings followed by the report's own.
func warnings(r *sli.Report) []string {
	out := slices.Clone(r.Capture.Warnings)
	if r.BucketWidened {
		out = append(out, fmt.Sprintf("time series buckets widened from %s to %s to keep at most %d per series",
			Duration(r.RequestedBucketNS), Duration(r.BucketNS), sli.MaxBuckets))
	}
	return out
}

func accuracyNote(r *sli.Report) string {
	return fmt.Sprintf("percentiles exact up to %d samples, else within ±%s (DDSketch)",
		r.ExactLimit, strconv.FormatFloat(r.RelativeAccuracy*100, 'f', -1, 64)+"%")
}

// ObjectiveDetail describes an objective's measurement in words.
func ObjectiveDetail(o sli.ObjectiveResult) string {
	if o.NoData {
		return "no matching exchanges"
	}
	good := fmt.Sprintf("%d/%d good", o.Good, o.Valid)
	switch o.Metric {
	case sli.MetricLatency:
		return fmt.Sprintf("%s %s; %s of %d %s %s", quantileName(o),
			Duration(int64(o.Value)), Percent(o.GoodRatio), o.Valid, aboveBelow(o.Op), Duration(int64(o.Target)))
	case sli.MetricApdex:
		return fmt.Sprintf("apdex %.3f (%d samples)", o.Value, o.Valid)
	case sli.MetricErrorRate:
		return fmt.Sprintf("error rate %s (%s)", Percent(o.Value), good)
	}
	return fmt.Sprintf("availability %s (%s)", Percent(o.Value), good)
}

func quantileName(o sli.ObjectiveResult) string {
	p := "p" + strconv.FormatFloat(o.Quantile*100, 'f', -1, 64)
	if o.Timing != "" && o.Timing != "total" {
		p = o.Timing + " " + p
	}
	return p
}

func aboveBelow(op string) string {
	switch op {
	case "<":
		return "under"
	case "<=":
		return "at or under"
	case ">":
		return "over"
	}
	return "at or over"
}

// Percent formats a ratio as a percentage with two decimals.
func Percent(v float64) string {
	return strconv.FormatFloat(v*100, 'f', 2, 64) + "%"
}

var narrowHeader = []string{
	"ENDPOINT", "COUNT", "RATE/s", "AVAIL", "ERR", "4xx", "5xx", "INC",
	"SRV p50", "SRV p99", "TOT p50", "TOT p99", "APDEX",
}

var wideHeader = []string{
	"ENDPOINT", "COUNT", "RATE/s", "AVAIL", "ERR", "2xx", "3xx", "4xx", "5xx", "INCOMPL", "RESET", "GRPC", "APDEX",
	"SRV p50", "p90", "p95", "p99", "p999", "max", "TOTAL p50", "p90", "p95", "p99", "p999", "max",
	"XFER p50", "p99", "NET p50", "p99", "REQ", "RESP",
}

// sharedHost returns the host every endpoint of s has, or "".
func sharedHost(s *sli.Service) string {
	host := ""
	for i, e := range s.Endpoints {
		if e.Other {
			continue
		}
		if i == 0 {
			host = e.Key.Host
		} else if e.Key.Host != host {
			return ""
		}
	}
	return host
}

// endpointName is the endpoint's label in a table; the host is left out
// when the service's header names it.
func endpointName(e *sli.Endpoint, host string) string {
	if e.Other || host == "" {
		return e.Key.String()
	}
	m := e.Key.Method
	if m == "" {
		m = "-"
	}
	return m + " " + e.Key.Path
}

// writeServiceLine writes a service's transfer and network percentiles and
// body bytes: at most TextWidth columns whatever the values (the JSON
// report has the maxima).
func writeServiceLine(w io.Writer, st *sli.Stats) {
	fmt.Fprintf(w, "  transfer p50 %s p99 %s   network p50 %s p99 %s   bytes req %s resp %s\n",
		latency(st.Transfer, st.Transfer.P50), latency(st.Transfer, st.Transfer.P99),
		latency(st.Network, st.Network.P50), latency(st.Network, st.Network.P99),
		Bytes(st.ReqBodyBytes), Bytes(st.RespBodyBytes))
}

func writeService(w *bufio.Writer, r *sli.Report, s *sli.Service, opts RenderOptions) {
	fmt.Fprintf(w, "\n%s %s", s.Role, s.Name())
	host := sharedHost(s)
	if s.Comm != "" && s.Addr != "" && !strings.EqualFold(s.Addr, host) {
		// The server the service's processes served or called.
		to := "to"
		if s.Role == "server" {
			to = "on"
		}
		fmt.Fprintf(w, " %s %s", to, s.Addr)
	}
	if ct := s.Container; ct.Known() {
		fmt.Fprintf(w, " in %s %s", ct.Runtime, ct.Short())
		if ct.PodUID != "" {
			fmt.Fprintf(w, " (pod %s)", ct.PodUID)
		}
	}
	if s.NetNS != 0 {
		fmt.Fprintf(w, " netns %d", s.NetNS)
	}
	if host != "" {
		fmt.Fprintf(w, ", host %s", host)
	}
	fmt.Fprintf(w, ": %s, %s", plural(s.Count, "exchange"), plural(len(s.Endpoints), "endpoint"))
	if n := len(s.Endpoints); n > 0 && s.Endpoints[n-1].Other {
		fmt.Fprintf(w, " (beyond %d folded into %s)", r.MaxEndpoints, sli.OtherKey.Path)
	}
	w.WriteString("\n")
	if !opts.Wide && (s.Transfer.Count > 0 || s.Network.Count > 0) {
		writeServiceLine(w, &s.Stats)
	}

	row := narrowRow
	header := narrowHeader
	if opts.Wide {
		row, header = wideRow, wideHeader
	}
	rows := [][]string{header, row("(all)", &s.Stats)}
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		rows = append(rows, row(endpointName(e, host), &e.Stats))
	}
	// Fit the table: the endpoint column gets what the others leave.
	limit := maxEndpointWidth
	if !opts.Wide {
		others := 2
		for col := 1; col < len(header); col++ {
			wd := 0
			for _, r := range rows {
				wd = max(wd, utf8.RuneCountInString(r[col]))
			}
			others += wd + 2
		}
		limit = max(TextWidth-others, 24)
	}
	for _, r := range rows[1:] {
		r[0] = truncate(r[0], limit)
	}
	writeTable(w, rows, false)
}

func availability(s *sli.Stats) string {
	if s.Availability < 0 {
		return "-"
	}
	return Percent(s.Availability)
}

func errRate(s *sli.Stats) string {
	if s.Count == 0 {
		return "-"
	}
	return strconv.FormatFloat(s.ErrorRate*100, 'f', 1, 64) + "%"
}

func apdex(s *sli.Stats) string {
	if s.Apdex < 0 {
		return "-"
	}
	return strconv.FormatFloat(s.Apdex, 'f', 2, 64)
}

func narrowRow(name string, s *sli.Stats) []string {
	return []string{
		name,
		strconv.Itoa(s.Count),
		strconv.FormatFloat(s.Rate, 'f', 2, 64),
		availability(s),
		errRate(s),
		strconv.Itoa(s.Status4xx),
		strconv.Itoa(s.Status5xx),
		strconv.Itoa(s.ResetOrIncomplete),
		latency(s.Server, s.Server.P50), latency(s.Server, s.Server.P99),
		latency(s.Total, s.Total.P50), latency(s.Total, s.Total.P99),
		apdex(s),
	}
}

func wideRow(name string, s *sli.Stats) []string {
	return []string{
		name,
		strconv.Itoa(s.Count),
		strconv.FormatFloat(s.Rate, 'f', 2, 64),
		availability(s),
		errRate(s),
		strconv.Itoa(s.Status2xx),
		strconv.Itoa(s.Status3xx),
		strconv.Itoa(s.Status4xx),
		strconv.Itoa(s.Status5xx),
		strconv.Itoa(s.Incomplete),
		strconv.Itoa(s.Reset),
		strconv.Itoa(s.GRPCErrors),
		apdex(s),
		latency(s.Server, s.Server.P50), latency(s.Server, s.Server.P90), latency(s.Server, s.Server.P95),
		latency(s.Server, s.Server.P99), latency(s.Server, s.Server.P999), latency(s.Server, s.Server.Max),
		latency(s.Total, s.Total.P50), latency(s.Total, s.Total.P90), latency(s.Total, s.Total.P95),
		latency(s.Total, s.Total.P99), latency(s.Total, s.Total.P999), latency(s.Total, s.Total.Max),
		latency(s.Transfer, s.Transfer.P50), latency(s.Transfer, s.Transfer.P99),
		latency(s.Network, s.Network.P50), latency(s.Network, s.Network.P99),
		Bytes(s.ReqBodyBytes),
		Bytes(s.RespBodyBytes),
	}
}

// writeTable writes rows with the first column left-aligned and the others
// right-aligned, two spaces apart.
// With leftText, every column is left-aligned (a list, not numbers).
func writeTable(w *bufio.Writer, rows [][]string, leftText bool) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		w.WriteString("  ")
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				w.WriteString(cell)
				if len(row) > 1 {
					w.WriteString(pad)
				}
				continue
			}
			w.WriteString("  ")
			if leftText {
				w.WriteString(cell)
				if i < len(row)-1 {
					w.WriteString(pad)
				}
				continue
			}
			w.WriteString(pad)
			w.WriteString(cell)
		}
		w.WriteString("\n")
	}
}

func latency(l sli.Latency, ns int64) string {
	if l.Count == 0 {
		return "-"
	}
	return Duration(ns)
}

// Duration formats a nanosecond duration for a table: milliseconds with
// three significant digits ("0.042ms", "12.3ms", "250ms"), seconds from 10 s.
func Duration(ns int64) string {
	ms := float64(ns) / float64(time.Millisecond)
	switch {
	case ms >= 10_000:
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case ms >= 1:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 3, 64) + "ms"
}

// Bytes formats a byte count with binary units: "512 B", "1.5 KiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= unit
		if v < unit || u == "TiB" {
			prec := 1
			if v >= 100 {
				prec = 0
			}
			return strconv.FormatFloat(v, 'f', prec, 64) + " " + u
		}
	}
	panic("unreachable")
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// plural counts n things: "1 endpoint", "3 endpoints".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// connCounts is the connections line: the total, then its parts, which
// add up to it (connections that carried no data are named when any).
// InputLines describe each input of a report over several, one line each:
// its path, format and host, span and exchanges; nil for one input.
func InputLines(r *sli.Report) []string {
	var out []string
	for i := range r.Inputs {
		in := &r.Inputs[i]
		s := in.Path + " (" + in.Format
		if in.Host != "" {
			s += ", host " + in.Host
		}
		s += "): " + strconv.Itoa(in.Exchanges) + " exchanges"
		if !in.Start.IsZero() {
			s += " over " + Duration(in.SpanNS) + " from " + in.Start.Format("2006-01-02 15:04:05.000 -07:00")
		}
		if in.Lost > 0 {
			s += ", " + strconv.FormatUint(in.Lost, 10) + " events lost"
		}
		out = append(out, s)
	}
	return out
}

func connCounts(c *sli.CaptureSummary) string {
	s := fmt.Sprintf("%d (HTTP %d, other %d", c.Conns, c.HTTPConns, c.OtherConns)
	if n := c.Conns - c.HTTPConns - c.OtherConns; n > 0 {
		s += fmt.Sprintf(", no data %d", n)
	}
	return s + ")"
}
