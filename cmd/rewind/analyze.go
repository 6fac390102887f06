package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/urfave/cli/v2"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/capture/container"
	"github.com/rewind-tools/rewind/capture/redact"
	"github.com/rewind-tools/rewind/format/har"
	"github.com/rewind-tools/rewind/format/jsonl"
	"github.com/rewind-tools/rewind/format/line"
	"github.com/rewind-tools/rewind/format/parquet"
	"github.com/rewind-tools/rewind/format/pcapng"
	"github.com/rewind-tools/rewind/format/report"
)

func newAnalyzeCommand() *cli.Command {
	return &cli.Command{
		Name:      "analyze",
		Usage:     "replay a capture (or pcap/pcapng) into an SLI report, exchanges, HAR and pcapng",
		ArgsUsage: "FILE|DIR|- [FILE|DIR…]",
		Description: "All outputs are written in one pass over FILE (- reads standard input as it is streamed in,\n" +
			"such as tcpdump -U -w -). The report goes to standard output\n" +
			"unless -o names a file. Salvage and loss warnings go to stderr and into every report.\n\n" +
			"Several inputs (files, directories of captures, quoted glob patterns; captures and pcaps\n" +
			"mixed) are analyzed together, concurrently: the report has each service per host (the\n" +
			"capture's host, a pcap's file name) and a fleet row per service across hosts, with\n" +
			"percentiles merged from the hosts' sketches. --exchanges and --pcapng hold every input's\n" +
			"exchanges, input after input in the order of their paths; --parquet rows name their\n" +
			"capture and host. The outputs are the same whatever the order of the arguments.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "report", Value: "text", Usage: "report `FORMAT`: text, json, markdown or html"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the report to `FILE` instead of standard output"},
			&cli.StringFlag{Name: "exchanges", Usage: "write every exchange as JSON lines to `FILE` (- for standard output, with -o for the report)"},
			&cli.StringFlag{Name: "har", Usage: "write a HAR 1.2 archive to `FILE` (- for standard output, with -o for the report)"},
			&cli.StringFlag{Name: "parquet", Usage: "write every exchange as a row of an Apache Parquet `PATH`: a file, or for a directory a Hive-partitioned tree host=…/date=…/part-CAPTURE.parquet (schema: format/parquet/SCHEMA.md)"},
			&cli.StringFlag{Name: "pcapng", Usage: "write a pcapng with decrypted payloads to `FILE` (- for standard output, with -o for the report)"},
			&cli.StringFlag{Name: "slo", Usage: "`OBJECTIVES` such as 'availability>=99.9%,p99<300ms' (grammar below); exit 3 when violated"},
			&cli.StringFlag{Name: "slo-no-data", Value: "fail", Usage: "what an objective with no data (nothing in its scope, an empty input) does: `POLICY` fail (exit 3) or pass"},
			&cli.IntSliceFlag{Name: "pid", Usage: "only exchanges of process `PID` (repeatable)"},
			&cli.StringSliceFlag{Name: "comm", Usage: "only exchanges of processes named `NAME` (repeatable)"},
			&cli.StringFlag{Name: "role", Usage: "only exchanges of `ROLE`: server or client side"},
			&cli.StringSliceFlag{Name: "host", Usage: "only requests for `HOST` (repeatable)"},
			&cli.StringSliceFlag{Name: "container", Usage: "only exchanges of processes in container `ID|NAME`: a prefix of its id of at least 4 characters (as docker ps shows it), or its name as recorded from the runtime on the node, or an nspawn machine name (repeatable)"},
			&cli.StringSliceFlag{Name: "pod", Usage: "only exchanges of processes in the Kubernetes pod `POD`: its UID, its name, or NAMESPACE/NAME (names as recorded from the node's /var/log/pods; repeatable)"},
			&cli.StringSliceFlag{Name: "namespace", Usage: "only exchanges of processes in pods of the Kubernetes namespace `NS` (as recorded from the node's /var/log/pods; repeatable)"},
			&cli.StringSliceFlag{Name: "method", Usage: "only requests with `METHOD` (repeatable)"},
			&cli.StringFlag{Name: "path-prefix", Usage: "only requests whose path starts with `PREFIX`"},
			&cli.IntFlag{Name: "max-body", Value: 1 << 20, Usage: "`BYTES` of each body kept for HAR; 0 keeps none (lengths stay exact)"},
			&cli.BoolFlag{Name: "no-redact", Usage: "keep credential header values (Authorization, Cookie, …) in the outputs"},
			&cli.StringSliceFlag{Name: "redact-header", Usage: "also redact the values of header `NAME` (repeatable)"},
			&cli.StringSliceFlag{Name: "redact-pattern", Usage: "also redact matches of regular expression `RE` in targets, header values and bodies (repeatable)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow a capture that rewind record is still writing: print each exchange as a line when it completes (JSON lines with --exchanges -), until the recording closes the file or Ctrl-C; the report goes only to -o"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or warnings on stderr"},
			&cli.BoolFlag{Name: "wide", Usage: "text report: every column (percentiles, transfer, network, bytes), not just what fits 120 columns"},
			// Profiling the replay, for developers (see scripts/bench-pcap.sh).
			&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a CPU profile of the analysis to `FILE`"},
			&cli.StringFlag{Name: "memprofile", Hidden: true, Usage: "write an allocation profile to `FILE` after the analysis"},
		}, sliFlags()...),
		Action: runAnalyze,
	}
}

func runAnalyze(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("analyze needs a capture file, several, or directories of them (try 'rewind demo' for a sample)")
	}
	format, err := report.ParseFormat(c.String("report"))
	if err != nil {
		return usagef("--report: %v", err)
	}
	sliOpts, err := sliOptions(c)
	if err != nil {
		return err
	}
	// --max-body 0 keeps nothing; the libraries' 0 means "default".
	maxBody := c.Int("max-body")
	if maxBody < 0 {
		return usagef("--max-body %d: must be 0 (no body bytes) or more", maxBody)
	}
	if maxBody == 0 {
		maxBody = -1
	}
	if nd := c.String("slo-no-data"); nd != "fail" && nd != "pass" {
		return usagef("--slo-no-data must be fail or pass, not %q", nd)
	}
	if c.IsSet("slo") {
		if sliOpts.Objectives, err = sli.ParseObjectives(c.String("slo")); err != nil {
			return usagef("--slo: %v", err)
		}
	}
	filter, err := analyzeFilter(c)
	if err != nil {
		return err
	}
	policy, err := redactPolicy(c)
	if err != nil {
		return err
	}
	paths, skipped, err := expandInputs(c.Args().Slice())
	if err != nil {
		return err
	}
	if !c.Bool("quiet") {
		warnSkipped(paths, skipped)
	}
	if len(paths) > 1 {
		return runAnalyzeMany(c, paths, format, sliOpts, filter, policy, maxBody)
	}
	path := paths[0]
	follow := c.Bool("follow")
	if follow && path == "-" {
		return usagef("--follow reads a capture file being recorded; standard input is already read as it comes")
	}
	if follow {
		for _, f := range []string{"output", "har", "pcapng"} {
			if c.String(f) == "-" {
				return usagef("--follow writes the exchanges to standard output: --%s needs a FILE", f)
			}
		}
	}
	// Outputs first: a bad output path fails before any reading, and
	// nothing is created. Following, standard output carries the
	// exchanges' lines, and the report is written only to -o.
	report0 := c.String("output")
	if follow && report0 == "" {
		report0 = os.DevNull
	}
	specs := []outputSpec{{"-o", report0}}
	for _, flag := range []string{"exchanges", "har", "pcapng"} {
		if p := c.String(flag); p != "" {
			specs = append(specs, outputSpec{"--" + flag, p})
		}
	}
	if follow && c.String("exchanges") != "-" {
		if err := stdoutNotInput(statInputs([]string{path}), "the exchanges' lines"); err != nil {
			return err
		}
	}
	outs, err := openOutputs([]string{path}, specs)
	if err != nil {
		return err
	}
	defer outs.abort()
	var pq *parquet.Writer
	if p := c.String("parquet"); p != "" {
		if err := checkParquetTarget(p, []string{path}, specs); err != nil {
			return err
		}
		if pq, err = parquet.New(p, parquet.Options{Routes: sliOpts.Routes, Version: version, TrackTemp: trackTemp}); err != nil {
			return usageError{err.Error()}
		}
		defer func() {
			if pq != nil {
				pq.Abort()
			}
		}()
	}
	in, progress, err := openAnalyzeInput(c, path, follow)
	if err != nil {
		return err
	}
	defer in.Close()

	rw := report.NewWriter(outs.writer(0), format, sliOpts)
	rw.Render.Wide = c.Bool("wide")
	sinks := []analyze.Sink{rw}
	if follow && c.String("exchanges") != "-" {
		sinks = append(sinks, line.New(os.Stdout))
	}
	if pq != nil {
		sinks = append(sinks, pq)
	}
	for i, s := range specs[1:] {
		w := outs.writer(i + 1)
		switch s.flag {
		case "--exchanges":
			sinks = append(sinks, jsonl.New(w, sliOpts.Routes...))
		case "--har":
			sinks = append(sinks, har.New(w, har.Options{MaxBodyBytes: maxBody, Version: version}))
		case "--pcapng":
			// The sink flushes in End; outs.commit flushes and closes the file after.
			sinks = append(sinks, pcapng.New(w, pcapng.Options{Version: version}))
		}
	}

	deferFirstGC()
	stopProfile, err := startProfiles(c.String("cpuprofile"), c.String("memprofile"))
	if err != nil {
		return err
	}
	stop := progress.start()
	ctx := c.Context
	if follow {
		// Ctrl-C ends the input (Follow watches c.Context), and the
		// replay then finishes its outputs as at the end of a file.
		ctx = context.WithoutCancel(ctx)
	}
	sum, err := analyze.Replay(ctx, in.Source, in.Info, analyze.Options{
		MaxBodyCapture: maxBody,
		// Only the HAR shows bodies; the other outputs need their lengths.
		DiscardBodies: c.String("har") == "",
		Filter:        filter,
		Redact:        policy,
	}, sinks...)
	stop()
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err == nil && !follow {
		// A Ctrl-C while the replay waited for its input (a pipe) is seen
		// only now: the run stops as any interrupted one, outputs untouched.
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("analyzing %s: %w", path, err)
	}
	pq = nil // finished by the replay's End: nothing to remove
	if err := outs.commit(); err != nil {
		return err
	}
	if !c.Bool("quiet") {
		stoppedFollowing := follow && !sum.Stats.CleanClose && c.Context.Err() != nil
		for _, w := range sum.Warnings {
			if stoppedFollowing && strings.HasPrefix(w, "the capture was not closed cleanly") {
				w = "stopped following before the recording ended: exchanges still in progress are not shown"
			}
			fmt.Fprintf(os.Stderr, "rewind: warning: %s\n", w)
		}
	}
	return sloExit(rw.Report(), c.String("slo-no-data"))
}

// checkParquetTarget refuses a --parquet PATH that is standard output, an
// input, or another output's file.
func checkParquetTarget(p string, inputs []string, specs []outputSpec) error {
	if p == "-" {
		return usagef("--parquet needs a FILE or a DIRECTORY/ (Parquet cannot be streamed to standard output)")
	}
	if out, err := os.Stat(p); err == nil {
		if err := inputClash(statInputs(inputs), "--parquet", p, out); err != nil {
			return err
		}
		if err := notStdout("--parquet", p, out, countStdout(specs) > 0); err != nil {
			return err
		}
	}
	pa, _ := filepath.Abs(p)
	for _, s := range specs {
		if sa, _ := filepath.Abs(s.path); s.path != "" && s.path != "-" && sa == pa {
			return usagef("%s and --parquet name the same file %s: give each output its own", s.flag, p)
		}
	}
	return nil
}

// warnSkipped tells which files of the directories given were not taken
// as inputs (by their names), so that none is left out unnoticed.
func warnSkipped(paths, skipped []string) {
	if len(skipped) == 0 {
		return
	}
	list := skipped
	if len(list) > 3 {
		list = list[:3]
	}
	more := ""
	if len(skipped) > 3 {
		more = fmt.Sprintf(" and %d more", len(skipped)-3)
	}
	fmt.Fprintf(os.Stderr, "rewind: warning: %s not analyzed: not named as a capture (*.rwd, *.pcap, *.pcapng, *.cap; name them as arguments to include them)\n",
		strings.Join(list, ", ")+more)
}

// runAnalyzeMany is analyze over several inputs: one report with each
// service per host and fleet rows across hosts, and the exchanges of every
// input in the per-exchange outputs, input after input in the order of
// their paths (JSON lines name their input; a pcapng gets one section per
// input; Parquet rows carry their capture and host).
func runAnalyzeMany(c *cli.Context, paths []string, format report.Format, sliOpts sli.Options, filter func(*analyze.Exchange) bool, policy *redact.Policy, maxBody int) error {
	switch {
	case c.Bool("follow"):
		return usagef("--follow follows one capture being recorded, not %d inputs", len(paths))
	case c.String("har") != "":
		return usagef("--har writes one input's exchanges (a HAR is one browsing session): give one capture, or use --exchanges or --parquet for %d inputs", len(paths))
	}
	specs := []outputSpec{{"-o", c.String("output")}}
	for _, flag := range []string{"exchanges", "pcapng"} {
		if p := c.String(flag); p != "" {
			specs = append(specs, outputSpec{"--" + flag, p})
		}
	}
	outs, err := openOutputs(paths, specs)
	if err != nil {
		return err
	}
	defer outs.abort()
	mo := manyOutputs{routes: sliOpts.Routes}
	for _, s := range specs[1:] {
		switch s.flag {
		case "--exchanges":
			mo.exchanges = tempDirFor(s.path)
		case "--pcapng":
			mo.pcapng = tempDirFor(s.path)
		}
	}
	pqPath := c.String("parquet")
	if pqPath != "" {
		if err := checkParquetTarget(pqPath, paths, specs); err != nil {
			return err
		}
		if parquet.IsTree(pqPath) {
			mo.parquetTree = pqPath
		} else {
			if fi, err := os.Stat(filepath.Dir(pqPath)); err != nil || !fi.IsDir() {
				return usagef("--parquet %s: directory %s does not exist", pqPath, filepath.Dir(pqPath))
			}
			mo.parquetFile = filepath.Dir(pqPath)
		}
	}
	// One bar for every input's bytes, on a terminal.
	progress := &progress{}
	if !c.Bool("quiet") {
		progress.line = newStatusLine(os.Stderr)
		for _, p := range paths {
			if st, err := os.Stat(p); err == nil {
				progress.total += st.Size()
			}
		}
		mo.read = &progress.n
	}
	deferFirstGC()
	stopProfile, err := startProfiles(c.String("cpuprofile"), c.String("memprofile"))
	if err != nil {
		return err
	}
	stop := progress.start()
	r, parts, err := analyzeMany(c.Context, paths, sliOpts, analyze.Options{
		MaxBodyCapture: maxBody,
		DiscardBodies:  true, // no output of several inputs shows bodies
		Filter:         filter,
		Redact:         policy,
	}, mo)
	stop()
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	defer removeParts(parts)
	for i, s := range specs[1:] {
		which := func(p *manyPart) *string { return &p.exchanges }
		if s.flag == "--pcapng" {
			which = func(p *manyPart) *string { return &p.pcapng }
		}
		if err := joinParts(outs.writer(i+1), parts, which); err != nil {
			return fmt.Errorf("%s %s: %w", s.flag, s.path, err)
		}
	}
	if mo.parquetFile != "" {
		var srcs []string
		for _, p := range parts {
			srcs = append(srcs, p.parquet)
		}
		if err := parquet.Concat(pqPath, srcs, parquet.Options{Version: version, TrackTemp: trackTemp}); err != nil {
			return err
		}
	}
	rw := c.Bool("wide")
	if err := report.WriteWith(outs.writer(0), format, r, report.RenderOptions{Wide: rw}); err != nil {
		return err
	}
	if err := outs.commit(); err != nil {
		return err
	}
	if !c.Bool("quiet") {
		for _, w := range r.Capture.Warnings {
			fmt.Fprintf(os.Stderr, "rewind: warning: %s\n", w)
		}
	}
	return sloExit(r, c.String("slo-no-data"))
}

// openAnalyzeInput opens analyze's input: a file, standard input ("-": a
// capture, pcap or pcapng streamed in, such as tcpdump -U -w -, read as it
// comes with bounded memory), or with follow a capture still being
// recorded. The progress it returns shows on a terminal (not when
// following: the exchanges' lines are the progress).
func openAnalyzeInput(c *cli.Context, path string, follow bool) (*analyze.Input, *progress, error) {
	if follow {
		in, err := analyze.Follow(c.Context, path)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return in, &progress{}, nil
	}
	f, name := os.Stdin, "standard input"
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, nil, err
		}
		name = path
	}
	var status *statusLine
	if !c.Bool("quiet") {
		status = newStatusLine(os.Stderr)
	}
	progress := newProgress(f, status)
	in, err := analyze.OpenReader(progress, name)
	if err != nil {
		if f != os.Stdin {
			f.Close()
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if f != os.Stdin {
		in = in.WithCloser(f.Close)
	}
	return in, progress, nil
}

// startProfiles starts a CPU profile into cpu and arranges an allocation
// profile into mem (either may be empty); the returned function ends both.
func startProfiles(cpu, mem string) (func() error, error) {
	var cf *os.File
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("starting CPU profile: %w", err)
		}
		cf = f
	}
	return func() error {
		if cf != nil {
			pprof.StopCPUProfile()
			if err := cf.Close(); err != nil {
				return err
			}
		}
		if mem == "" {
			return nil
		}
		f, err := os.Create(mem)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			f.Close()
			return fmt.Errorf("writing allocation profile: %w", err)
		}
		return f.Close()
	}, nil
}

// analyzeFilter builds the exchange filter from the filter flags, or nil.
func analyzeFilter(c *cli.Context) (func(*analyze.Exchange) bool, error) {
	pids := map[uint32]bool{}
	for _, p := range c.IntSlice("pid") {
		pids[uint32(p)] = true
	}
	set := func(vals []string, fold bool) map[string]bool {
		m := map[string]bool{}
		for _, v := range vals {
			if fold {
				v = strings.ToUpper(v)
			}
			m[v] = true
		}
		return m
	}
	comms, hosts, methods := set(c.StringSlice("comm"), false), set(c.StringSlice("host"), false), set(c.StringSlice("method"), true)
	role := c.String("role")
	if role != "" && role != "server" && role != "client" {
		return nil, usagef("--role must be server or client, not %q", role)
	}
	prefix := c.String("path-prefix")
	ctrs, pods, nss := c.StringSlice("container"), set(c.StringSlice("pod"), false), set(c.StringSlice("namespace"), false)
	if len(pids) == 0 && len(comms) == 0 && len(hosts) == 0 && len(methods) == 0 && role == "" && prefix == "" &&
		len(ctrs) == 0 && len(pods) == 0 && len(nss) == 0 {
		return nil, nil
	}
	// A container is given by its name, or by its id or a prefix of it
	// long enough not to match by chance (nspawn: the machine name, its
	// id).
	inContainer := func(ct container.Info) bool {
		for _, want := range ctrs {
			if ct.Name != "" && ct.Name == want || len(want) >= 4 && ct.ID != "" && strings.HasPrefix(ct.ID, want) || ct.ID == want {
				return true
			}
		}
		return false
	}
	// A pod is given by UID, name or NAMESPACE/NAME.
	inPod := func(ct container.Info) bool {
		return ct.PodUID != "" && pods[ct.PodUID] || ct.Pod != "" && (pods[ct.Pod] || pods[ct.PodLabel()])
	}
	return func(ex *analyze.Exchange) bool {
		switch {
		case len(ctrs) > 0 && !inContainer(ex.Conn.Container),
			len(pods) > 0 && !inPod(ex.Conn.Container),
			len(nss) > 0 && (ex.Conn.Container.Namespace == "" || !nss[ex.Conn.Container.Namespace]),
			len(pids) > 0 && !pids[ex.Conn.PID],
			len(comms) > 0 && !comms[ex.Conn.Comm],
			len(hosts) > 0 && !hosts[ex.Request.Host],
			len(methods) > 0 && !methods[ex.Request.Method],
			role != "" && ex.Conn.Role.String() != role,
			prefix != "" && !strings.HasPrefix(ex.Request.Path, prefix):
			return false
		}
		return true
	}, nil
}

// redactPolicy builds what analyze redacts: credential headers unless
// --no-redact, plus any --redact-header and --redact-pattern.
func redactPolicy(c *cli.Context) (*redact.Policy, error) {
	var headers []string
	if !c.Bool("no-redact") {
		headers = append(headers, redact.DefaultHeaders...)
	}
	headers = append(headers, c.StringSlice("redact-header")...)
	var patterns []*regexp.Regexp
	for _, p := range c.StringSlice("redact-pattern") {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, usagef("--redact-pattern %q: %v", p, err)
		}
		patterns = append(patterns, re)
	}
	return redact.NewPolicy(headers, patterns), nil
}

// progress counts bytes read from the input and, on a terminal, shows a bar
// (bytes, rate, time left; a spinner with bytes and rate for a pipe, which
// has no size) once the replay has run for progressDelay, so that short
// runs leave no trace.
type progress struct {
	r     io.Reader
	n     atomic.Int64
	total int64
	line  *statusLine // nil: no progress shown
}

// progressDelay is how long a replay runs before its progress is shown.
var progressDelay = time.Second

func newProgress(f *os.File, line *statusLine) *progress {
	p := &progress{r: f, line: line}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		p.total = st.Size()
	}
	return p
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

// newProgressBar is analyze's bar on w, for total bytes (-1: unknown).
func newProgressBar(w io.Writer, total int64, ansi bool) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("analyzing"),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetSpinnerChangeInterval(0), // no goroutine of its own: the ticker draws
		progressbar.OptionThrottle(0),                 // the ticker paces it
		progressbar.OptionUseANSICodes(ansi),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *progress) start() (stop func()) {
	if p.line == nil {
		return func() {}
	}
	total := p.total
	if total <= 0 {
		total = -1
	}
	// The bar counts from the start, so that its rate and time left are
	// right, but shows nothing before progressDelay.
	out := &laterWriter{w: p.line.f, from: time.Now().Add(progressDelay)}
	bar := newProgressBar(out, total, p.line.ansi)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				if out.shown.Load() {
					bar.Clear()
					fmt.Fprint(p.line.f, "\r")
				}
				return
			case <-t.C:
				bar.Set64(p.n.Load())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// laterWriter drops what is written to it before from.
type laterWriter struct {
	w     io.Writer
	from  time.Time
	shown atomic.Bool
}

func (l *laterWriter) Write(b []byte) (int, error) {
	if time.Now().Before(l.from) {
		return len(b), nil
	}
	l.shown.Store(true)
	return l.w.Write(b)
}
