package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rewind-tools/rewind/analyze/sli"
)

// WriteMarkdown writes r as GitHub-flavoured Markdown for pasting into a
// ticket: the summary, warnings, objectives and one table per service.
func WriteMarkdown(w io.Writer, r *sli.Report) error {
	bw := bufio.NewWriter(w)
	c := &r.Capture
	fmt.Fprintf(bw, "### rewind SLI report: `%s`\n\n", mdEscape(orDash(c.Path)))
	fmt.Fprintf(bw, "- format: %s", orDash(c.Format))
	if c.Host != "" {
		fmt.Fprintf(bw, ", host `%s`", mdEscape(c.Host))
	}
	bw.WriteString("\n")
	if !c.Start.IsZero() {
		fmt.Fprintf(bw, "- span: %s (%s → %s)\n", Duration(c.SpanNS),
			c.Start.Format("2006-01-02 15:04:05.000 -07:00"), c.End.Format("15:04:05.000"))
	}
	for _, in := range InputLines(r) {
		fmt.Fprintf(bw, "- input: %s\n", mdEscape(in))
	}
	fmt.Fprintf(bw, "- exchanges: %d, connections: %s, lost events: %d\n",
		c.Exchanges, connCounts(c), c.Lost)
	fmt.Fprintf(bw, "- latency: %s; Apdex T = %s\n", accuracyNote(r), Duration(r.ApdexT))
	for _, wn := range warnings(r) {
		fmt.Fprintf(bw, "- ⚠️ warning: %s\n", mdEscape(wn))
	}
	if len(r.Objectives) > 0 {
		fmt.Fprintf(bw, "\n#### Objectives: %d of %d violated\n\n", len(r.Violated()), len(r.Objectives))
		bw.WriteString("| status | objective | measured |\n|---|---|---|\n")
		for _, o := range r.Objectives {
			st := objectiveStatus(o)
			if o.Violated {
				st = "**VIOLATED**"
			}
			fmt.Fprintf(bw, "| %s | `%s` | %s |\n", st, mdEscape(o.Text), mdEscape(ObjectiveDetail(o)))
		}
	}
	for i := range r.Services {
		s := &r.Services[i]
		fmt.Fprintf(bw, "\n#### %s `%s`: %d exchanges\n\n", s.Role, mdEscape(s.Name()), s.Count)
		bw.WriteString("| endpoint | count | rate/s | avail | err | 4xx | 5xx | apdex | srv p50 | srv p99 | total p50 | total p99 | total p999 |\n")
		bw.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		row := func(name string, st *sli.Stats) {
			fmt.Fprintf(bw, "| %s | %d | %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s |\n",
				name, st.Count, strconv.FormatFloat(st.Rate, 'f', 2, 64), availability(st), errRate(st),
				st.Status4xx, st.Status5xx, apdex(st),
				latency(st.Server, st.Server.P50), latency(st.Server, st.Server.P99),
				latency(st.Total, st.Total.P50), latency(st.Total, st.Total.P99), latency(st.Total, st.Total.P999))
		}
		row("**(all)**", &s.Stats)
		for j := range s.Endpoints {
			e := &s.Endpoints[j]
			row("`"+mdEscape(e.Key.String())+"`", &e.Stats)
		}
	}
	if len(r.Services) == 0 {
		bw.WriteString("\nno HTTP exchanges\n")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// mdEscape keeps table cells intact: pipes and backticks would end them.
func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "`", "'", "\n", " ").Replace(s)
}
