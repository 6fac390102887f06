package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rewind-tools/rewind/analyze/sli"
)

// maxEndpointWidth truncates long endpoint names in the text table.
const maxEndpointWidth = 60

// WriteText writes r as a terminal report: a capture summary, then one
// table per service whose first row sums the service.
func WriteText(w io.Writer, r *sli.Report) error {
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
	fmt.Fprintf(bw, "exchanges  %d   connections %d (HTTP %d, other %d)\n", c.Exchanges, c.Conns, c.HTTPConns, c.OtherConns)
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
	for _, wn := range c.Warnings {
		fmt.Fprintf(bw, "warning    %s\n", wn)
	}
	fmt.Fprintf(bw, "latency    percentiles exact up to %d samples, else within ±%s (DDSketch); \"-\" = not measured\n",
		r.ExactLimit, strconv.FormatFloat(r.RelativeAccuracy*100, 'f', -1, 64)+"%")

	for i := range r.Services {
		writeService(bw, r, &r.Services[i])
	}
	if len(r.Services) == 0 {
		bw.WriteString("\nno HTTP exchanges\n")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

var header = []string{
	"ENDPOINT", "COUNT", "RATE/s", "AVAIL", "2xx", "3xx", "4xx", "5xx", "INCOMPL",
	"SRV p50", "p90", "p99", "max", "TOTAL p50", "p90", "p99", "max", "REQ", "RESP",
}

func writeService(w *bufio.Writer, r *sli.Report, s *sli.Service) {
	fmt.Fprintf(w, "\n%s %s", s.Role, s.Name())
	if s.Addr != "" && s.PID != 0 {
		fmt.Fprintf(w, " (%s)", s.Addr)
	}
	fmt.Fprintf(w, ": %d exchanges, %d endpoints", s.Count, len(s.Endpoints))
	if n := len(s.Endpoints); n > 0 && s.Endpoints[n-1].Other {
		fmt.Fprintf(w, " (beyond %d folded into %s)", r.MaxEndpoints, sli.OtherKey.Path)
	}
	w.WriteString("\n")
	if s.Transfer.Count > 0 || s.Network.Count > 0 {
		fmt.Fprintf(w, "  transfer p50 %s p99 %s max %s   network p50 %s p99 %s max %s\n",
			latency(s.Transfer, s.Transfer.P50), latency(s.Transfer, s.Transfer.P99), latency(s.Transfer, s.Transfer.Max),
			latency(s.Network, s.Network.P50), latency(s.Network, s.Network.P99), latency(s.Network, s.Network.Max))
	}

	rows := [][]string{header, statsRow("(all)", &s.Stats)}
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		rows = append(rows, statsRow(truncate(e.Key.String(), maxEndpointWidth), &e.Stats))
	}
	writeTable(w, rows)
}

func statsRow(name string, s *sli.Stats) []string {
	avail := "-"
	if s.Availability >= 0 {
		avail = strconv.FormatFloat(s.Availability*100, 'f', 2, 64) + "%"
	}
	return []string{
		name,
		strconv.Itoa(s.Count),
		strconv.FormatFloat(s.Rate, 'f', 2, 64),
		avail,
		strconv.Itoa(s.Status2xx),
		strconv.Itoa(s.Status3xx),
		strconv.Itoa(s.Status4xx),
		strconv.Itoa(s.Status5xx),
		strconv.Itoa(s.Incomplete),
		latency(s.Server, s.Server.P50), latency(s.Server, s.Server.P90),
		latency(s.Server, s.Server.P99), latency(s.Server, s.Server.Max),
		latency(s.Total, s.Total.P50), latency(s.Total, s.Total.P90),
		latency(s.Total, s.Total.P99), latency(s.Total, s.Total.Max),
		Bytes(s.ReqBodyBytes),
		Bytes(s.RespBodyBytes),
	}
}

// writeTable writes rows with the first column left-aligned and the others
// right-aligned, two spaces apart.
func writeTable(w *bufio.Writer, rows [][]string) {
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
