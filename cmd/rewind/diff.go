package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/format/report"
)

// sliFlags are the aggregation flags analyze and diff share.
func sliFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "route", Usage: "group paths matching `PATTERN` (/users/{id}/orders, /static/*) under it, before automatic templates (repeatable)"},
		&cli.DurationFlag{Name: "apdex-t", Value: sli.DefaultApdexT, Usage: "Apdex threshold T on total latency, a `DURATION` such as 500ms"},
		&cli.StringFlag{Name: "bucket", Value: "auto", Usage: "time series bucket width: a `DURATION` (widened beyond 600 buckets), or auto: the first of 1, 2, 10, 20, 100 ms, … that gives at most 150"},
		&cli.IntFlag{Name: "max-endpoints", Value: sli.DefaultMaxEndpoints, Usage: "`N` endpoints kept per service; more fold into (other)"},
		&cli.StringFlag{Name: "group-by", Value: "service", Usage: "gather exchanges into services by `WHAT`: service (command name and server address, pids listed), pid (one per process) or name (command name only)"},
		&cli.IntFlag{Name: "max-children", Value: sli.DefaultMaxChildren, Usage: "`N` distinct values a path segment may take under one prefix before it becomes {var} (0: never)"},
	}
}

// sliOptions turns the flags of [sliFlags] into aggregation options.
func sliOptions(c *cli.Context) (sli.Options, error) {
	opts := sli.Options{
		ApdexT: int64(c.Duration("apdex-t")),

		MaxEndpoints: c.Int("max-endpoints"),
		MaxChildren:  c.Int("max-children"),
	}
	if opts.ApdexT <= 0 {
		return opts, usagef("--apdex-t must be positive, not %s", c.Duration("apdex-t"))
	}
	if b := c.String("bucket"); b != "auto" {
		d, err := time.ParseDuration(b)
		if err != nil || d < time.Millisecond {
			return opts, usagef("--bucket must be auto or a duration of at least 1ms, not %q", b)
		}
		opts.BucketNS = int64(d)
	}
	if opts.MaxEndpoints <= 0 {
		return opts, usagef("--max-endpoints must be positive")
	}
	switch {
	case opts.MaxChildren < 0:
		return opts, usagef("--max-children %d: must be 0 (never make templates) or more", opts.MaxChildren)
	case opts.MaxChildren == 0:
		opts.MaxChildren = -1 // the flag's 0 means never; the option's, the default
	}
	g, err := sli.ParseGroupBy(c.String("group-by"))
	if err != nil {
		return opts, usagef("--group-by: %v", err)
	}
	opts.GroupBy = g
	for _, p := range c.StringSlice("route") {
		r, err := sli.ParseRoute(p)
		if err != nil {
			return opts, usagef("--route: %v", err)
		}
		opts.Routes = append(opts.Routes, r)
	}
	return opts, nil
}

// sloExit lists the violated objectives on stderr and returns the exit
// code 3 when there are any. An objective without data (no exchange in its
// scope, an empty or damaged input) fails the gate too, unless noData is
// "pass": a gate must not pass on nothing.
func sloExit(r *sli.Report, noData string) error {
	v := r.Violated()
	for _, o := range v {
		fmt.Fprintf(os.Stderr, "rewind: objective violated: %s: %s\n", o.Text, report.ObjectiveDetail(o))
	}
	failed := len(v)
	for _, o := range r.Objectives {
		if !o.NoData {
			continue
		}
		why := "no exchange measured it"
		if o.Scope != nil && !scopeMatches(r, o.Scope) {
			why = "its scope matches no endpoint of the capture (see the report's endpoints)"
		}
		if noData == "pass" {
			fmt.Fprintf(os.Stderr, "rewind: warning: objective without data: %s: %s (passing: --slo-no-data=pass)\n", o.Text, why)
			continue
		}
		fmt.Fprintf(os.Stderr, "rewind: objective without data: %s: %s\n", o.Text, why)
		failed++
	}
	if failed == 0 {
		return nil
	}
	return exitCodeError{code: exitSLO, msg: fmt.Sprintf("%d of %s violated or without data", failed, plural(len(r.Objectives), "objective"))}
}

// scopeMatches reports whether any endpoint of the report is in scope.
func scopeMatches(r *sli.Report, sc *sli.Scope) bool {
	for i := range r.Services {
		for _, e := range r.Services[i].Endpoints {
			if !e.Other && sc.Matches(e.Key) {
				return true
			}
		}
	}
	return false
}

func newDiffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "compare the endpoints of two captures, or two sets of them (before and after a deploy)",
		ArgsUsage: "A B  (each a capture, - for standard input, a directory of captures or a quoted glob pattern)",
		Description: "Replays A and B (rewind captures or pcap/pcapng) and compares each endpoint's rate,\n" +
			"availability, error rate and total latency p50/p99. Changes beyond the thresholds are\n" +
			"flagged; with --fail-on, a flagged kind makes the exit code 3 (for CI).\n\n" +
			"A directory or pattern is a set of captures analyzed together (as analyze does with\n" +
			"several inputs): rewind diff before/ after/ compares the fleet rows of one set, each\n" +
			"service across its hosts, with the other's.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "report", Value: "text", Usage: "comparison `FORMAT`: text or json (as analyze --report)"},
			&cli.StringFlag{Name: "format", Hidden: true, Usage: "the old name of --report"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the comparison to `FILE` instead of standard output"},
			&cli.StringFlag{Name: "max-p50-increase", Value: "20%", Usage: "flag p50 increases beyond this `SHARE` (20% or 0.2; a bare number of 1 or more is a percentage)"},
			&cli.StringFlag{Name: "max-p99-increase", Value: "20%", Usage: "flag p99 increases beyond this `SHARE` (20% or 0.2; a bare number of 1 or more is a percentage)"},
			&cli.StringFlag{Name: "max-availability-drop", Value: "0.1pp", Usage: "flag availability drops beyond these percentage `POINTS` (0.1pp)"},
			&cli.StringFlag{Name: "max-error-rate-increase", Value: "0.1pp", Usage: "flag error rate increases beyond these percentage `POINTS` (0.1pp)"},
			&cli.StringFlag{Name: "max-rate-change", Value: "off", Usage: "flag request rate changes beyond this `SHARE` either way (50% or 0.5), or off"},
			&cli.IntFlag{Name: "min-count", Value: sli.DefaultDiffOptions.MinCount, Usage: "`N` exchanges each side needs before latency and ratio changes are flagged"},
			&cli.BoolFlag{Name: "match-host", Usage: "match endpoints by Host too, not only by service, method and route"},
			&cli.BoolFlag{Name: "ignore-host", Hidden: true, Usage: "the default now: match endpoints by service, method and route"},
			&cli.StringFlag{Name: "fail-on", Usage: "exit 3 when a change of these `KINDS` is flagged: " + strings.Join(sli.RegressionKinds, ",") + " or any"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no warnings on stderr"},
		}, sliFlags()...),
		Action: runDiff,
	}
}

func runDiff(c *cli.Context) error {
	if c.NArg() != 2 {
		return usagef("diff takes two captures: A (before) and B (after); for sets of captures, give two directories or two quoted glob patterns")
	}
	if c.Args().Get(0) == "-" && c.Args().Get(1) == "-" {
		return usagef("only one of A and B may be standard input (\"-\")")
	}
	format := c.String("report")
	if c.IsSet("format") {
		if c.IsSet("report") {
			return usagef("--format is the old name of --report: give one of them")
		}
		format = c.String("format")
	}
	if format != "text" && format != "json" {
		return usagef("--report must be text or json, not %q", format)
	}
	if c.Bool("match-host") && c.Bool("ignore-host") {
		return usagef("--match-host and --ignore-host contradict each other")
	}
	matchHost := c.Bool("match-host")
	opts := sli.DiffOptions{MinCount: c.Int("min-count"), IgnoreHost: !matchHost}
	if opts.MinCount < 0 {
		return usagef("--min-count %d: must be 0 or more", opts.MinCount)
	}
	for _, t := range []struct {
		flag string
		pp   bool
		dst  *float64
	}{
		{"max-p50-increase", false, &opts.MaxP50Increase},
		{"max-p99-increase", false, &opts.MaxP99Increase},
		{"max-availability-drop", true, &opts.MaxAvailabilityDrop},
		{"max-error-rate-increase", true, &opts.MaxErrorRateIncrease},
		{"max-rate-change", false, &opts.MaxRateChange},
	} {
		v, err := parseThreshold(c.String(t.flag), t.pp)
		if err != nil {
			return usagef("--%s: %v", t.flag, err)
		}
		*t.dst = v
	}
	failOn, err := parseFailOn(c.String("fail-on"))
	if err != nil {
		return err
	}
	sliOpts, err := sliOptions(c)
	if err != nil {
		return err
	}
	sliOpts.IgnoreHost = opts.IgnoreHost
	var reports [2]*sli.Report
	var sets [2][]string
	for i, arg := range c.Args().Slice() {
		paths, skipped, err := expandInputs([]string{arg})
		if err != nil {
			return err
		}
		if !c.Bool("quiet") {
			warnSkipped(paths, skipped)
		}
		sets[i] = paths
	}
	outs, err := openOutputs(append(slices.Clone(sets[0]), sets[1]...), []outputSpec{{"-o", c.String("output")}})
	if err != nil {
		return err
	}
	defer outs.abort()
	for i, paths := range sets {
		r, err := aggregate(c, paths, sliOpts)
		if err != nil {
			return err
		}
		reports[i] = r
	}
	if err := c.Context.Err(); err != nil {
		return err // interrupted while an input (a pipe) was read
	}
	d := sli.Compare(reports[0], reports[1], opts)
	out := outs.writer(0)
	if format == "json" {
		err = report.WriteDiffJSON(out, d)
	} else {
		err = report.WriteDiffText(out, d)
	}
	if err != nil {
		return err
	}
	if err := outs.commit(); err != nil {
		return err
	}
	if failOn != nil && d.Regressed(failOn) {
		return exitCodeError{code: exitSLO, msg: "regression flagged (--fail-on " + c.String("fail-on") + ")"}
	}
	return nil
}

// aggregate replays one capture, or a set of several (a fleet report),
// into an SLI report.
func aggregate(c *cli.Context, paths []string, opts sli.Options) (*sli.Report, error) {
	// Services are grouped as analyze groups them, except that without
	// --match-host a service's server addresses merge as its hosts do
	// (a server back on another port is the same service).
	if opts.IgnoreHost && opts.GroupBy == sli.GroupByService {
		opts.GroupBy = sli.GroupByName
	}
	if len(paths) > 1 {
		r, _, err := analyzeMany(c.Context, paths, opts, analyze.Options{MaxBodyCapture: -1, DiscardBodies: true}, manyOutputs{})
		if err != nil {
			return nil, err
		}
		if !c.Bool("quiet") {
			for _, w := range r.Capture.Warnings {
				fmt.Fprintf(os.Stderr, "rewind: warning: %s\n", w)
			}
		}
		return r, nil
	}
	path := paths[0]
	var in *analyze.Input
	var err error
	if path == "-" {
		path = "standard input"
		in, err = analyze.OpenReader(os.Stdin, path)
	} else {
		in, err = analyze.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer in.Close()
	agg := sli.New(opts)
	sum, err := analyze.Replay(c.Context, in.Source, in.Info, analyze.Options{MaxBodyCapture: -1}, agg)
	if err != nil {
		return nil, fmt.Errorf("analyzing %s: %w", path, err)
	}
	if !c.Bool("quiet") {
		for _, w := range sum.Warnings {
			fmt.Fprintf(os.Stderr, "rewind: warning: %s: %s\n", path, w)
		}
	}
	return agg.Report(), nil
}

// parseThreshold reads "20%", "0.2", "0.1pp" or "off"; pp thresholds are
// in percentage points and returned as ratios.
func parseThreshold(s string, pp bool) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "" {
		return 0, nil
	}
	num := strings.TrimSuffix(strings.TrimSuffix(s, "pp"), "%")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a threshold (such as 20%%, 0.1pp or off)", s)
	}
	// "20%" and "0.2" are 20 %; so is a bare "20": nobody means +2000 %
	// (that gate would never fire). Points ("0.1pp" or a bare 0.1) are
	// percentage points.
	if pp || strings.HasSuffix(s, "%") || (!strings.HasSuffix(s, "pp") && v >= 1) {
		v /= 100
	}
	return v, nil
}

func parseFailOn(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if s == "any" {
		return slices.Clone(sli.RegressionKinds), nil
	}
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(sli.RegressionKinds, k) {
			return nil, usagef("--fail-on: unknown kind %q (use %s or any)", k, strings.Join(sli.RegressionKinds, ","))
		}
		out = append(out, k)
	}
	return out, nil
}
