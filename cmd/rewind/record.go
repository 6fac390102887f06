package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
	"github.com/rewind-tools/rewind/format/report"
)

func newRecordCommand() *cli.Command {
	return &cli.Command{
		Name:  "record",
		Usage: "record processes' TCP traffic with eBPF into a capture file (root)",
		Description: "Records what processes send and receive on TCP sockets (syscall tracepoints) into one\n" +
			"compressed capture file, until --duration, --max-size, or Ctrl-C/SIGTERM. TLS connections are\n" +
			"recorded as plaintext (uprobes on OpenSSL, BoringSSL, GnuTLS and Go crypto/tls, in running\n" +
			"programs and the ones started while recording; amd64) unless --no-tls. Needs root, or\n" +
			"CAP_BPF and CAP_PERFMON. Once every probe is attached it prints\n" +
			"\"rewind: recording (N probes attached)\" on stderr.",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "capture `FILE` to write (created with mode 0600; required)"},
			&cli.IntSliceFlag{Name: "pid", Usage: "record this `PID` and its descendants: the children it runs now and those it starts (repeatable)"},
			&cli.StringSliceFlag{Name: "comm", Usage: "record processes with this task `NAME` (repeatable)"},
			&cli.StringSliceFlag{Name: "cgroup", Usage: "record the processes of cgroup v2 `PATH` and of the cgroups below it, selected in the kernel (a path as in /proc/PID/cgroup, or in full; repeatable)"},
			&cli.StringSliceFlag{Name: "container", Usage: "record the processes of running container `ID|NAME`: its name, or 4 or more characters of its id, as docker ps, podman ps or crictl ps show them (or an nspawn machine name), selected in the kernel by its cgroup (repeatable; see CONTAINERS below)"},
			&cli.IntSliceFlag{Name: "port", Usage: "record connections with this local or remote `PORT` (repeatable)"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this `DURATION` (e.g. 30s); 0: until Ctrl-C"},
			&cli.StringFlag{Name: "max-size", Usage: "stop when the file reaches `SIZE` (e.g. 1GiB)"},
			&cli.StringFlag{Name: "snaplen", Value: "16KiB", Usage: "payload `SIZE` kept per call; longer calls are recorded with their length, flagged truncated"},
			&cli.BoolFlag{Name: "keep-other", Usage: "keep the payload of connections of other protocols too; by default a connection whose first bytes are neither HTTP nor TLS (a binary or bulk protocol) is recorded by its lengths after those first bytes"},
			&cli.BoolFlag{Name: "no-tls", Usage: "do not capture TLS plaintext (no uprobes; TLS connections are recorded as ciphertext)"},
			&cli.BoolFlag{Name: "no-packets", Usage: "do not capture packets"},
			&cli.StringFlag{Name: "iface", Usage: "interface `NAME` for packet capture (default: all)"},
			&cli.BoolFlag{Name: "redact", Usage: "mask credential header values (Authorization, Proxy-Authorization, Cookie, Set-Cookie) in HTTP/1 payloads before writing them; HTTP/2 headers are HPACK-compressed and stay as recorded"},
			&cli.StringSliceFlag{Name: "redact-header", Usage: "with --redact, also mask the values of header `NAME` (repeatable)"},
			&cli.StringFlag{Name: "ring-size", Usage: "kernel ring buffer `SIZE`, a power of two of at least 64KiB (default 32MiB); a larger one absorbs longer bursts"},
			&cli.StringFlag{Name: "compression", Value: "s2", Usage: "chunk codec `CODEC`: s2 (least recorder CPU, files about twice zstd's) or zstd (smaller files, about three times the CPU per byte; readable by rewind releases before format version 2)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite the -o file if it exists"},
			&cli.StringFlag{Name: "verifier-log", Usage: "write the BPF verifier's log to `FILE` if the kernel refuses a program"},
			&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a CPU profile of the recorder to `FILE` (the input of default.pgo)"},
		},
		Action: runRecord,
	}
}

func runRecord(c *cli.Context) error {
	if err := record.Available(); err != nil {
		return exitCodeError{code: exitError, msg: err.Error()}
	}
	if c.NArg() > 0 {
		return usagef("record takes no arguments, got %q", c.Args().First())
	}
	out := c.String("output")
	if out == "" {
		return usagef("record needs -o FILE.rwd: where to write the capture")
	}
	// The recorder's work is one loop (ring to file); its other goroutines
	// (interface and TLS library watchers, progress) are light. With one P
	// the runtime keeps no idle P spinning for work and runs the GC on the
	// loop's own time: 10 % less recorder CPU per event flat out under
	// nginx+wrk (0.345 against 0.383 µs, 3 alternated runs). GOMAXPROCS in
	// the environment still decides.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	opts := record.Options{
		PIDs:          c.IntSlice("pid"),
		Comms:         c.StringSlice("comm"),
		Cgroups:       c.StringSlice("cgroup"),
		Containers:    c.StringSlice("container"),
		Ports:         c.IntSlice("port"),
		Duration:      c.Duration("duration"),
		TLS:           !c.Bool("no-tls"),
		Packets:       !c.Bool("no-packets"),
		Iface:         c.String("iface"),
		VerifierLog:   c.String("verifier-log"),
		KeepOther:     c.Bool("keep-other"),
		Redact:        c.Bool("redact"),
		RedactHeaders: c.StringSlice("redact-header"),
		Version:       version,
		Log:           os.Stderr,
	}
	for _, p := range opts.PIDs {
		if p <= 0 {
			return usagef("--pid %d: must be a positive process id", p)
		}
	}
	for _, p := range opts.Ports {
		if p <= 0 || p > 65535 {
			return usagef("--port %d: must be 1-65535", p)
		}
	}
	for _, v := range opts.Containers {
		if v == "" {
			return usagef("--container: give a container's name or at least 4 characters of its id")
		}
	}
	if len(opts.RedactHeaders) > 0 && !opts.Redact {
		return usagef("--redact-header needs --redact")
	}
	if opts.Duration < 0 {
		return usagef("--duration %s: must not be negative", opts.Duration)
	}
	if s := c.String("max-size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return usagef("--max-size: %v", err)
		}
		opts.MaxSize = n
	}
	snap, err := parseSize(c.String("snaplen"))
	if err != nil {
		return usagef("--snaplen: %v", err)
	}
	if snap < 1 || snap > 64<<20 {
		return usagef("--snaplen %s: must be between 1 B and 64 MiB", c.String("snaplen"))
	}
	opts.Snaplen = int(snap)
	if s := c.String("ring-size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return usagef("--ring-size: %v", err)
		}
		if n < 64<<10 || n > 1<<30 || n&(n-1) != 0 {
			return usagef("--ring-size %s: must be a power of two between 64KiB and 1GiB", s)
		}
		opts.RingSize = int(n)
	}
	if opts.Compression, err = capture.ParseCodec(c.String("compression")); err != nil {
		return usagef("--compression: %v", err)
	}
	// Everything that can be checked without the kernel is checked before
	// any probe is loaded or file created.
	if err := record.CheckPrivileges(); err != nil {
		return exitCodeError{code: exitError, msg: err.Error()}
	}
	if err := checkRecordTargets(out, c.Bool("force"), opts.PIDs, opts.Iface); err != nil {
		return err
	}
	f, err := createCapture(out)
	if err != nil {
		return err
	}
	status := newStatusLine(os.Stderr)
	if status != nil {
		opts.Progress = func(p record.Progress) {
			status.Show(fmt.Sprintf("%s  %d events  %s written  %d lost",
				p.Elapsed.Truncate(time.Second), p.Events, report.Bytes(p.Bytes), p.Lost))
		}
	}

	stopProfile, err := startProfiles(c.String("cpuprofile"), "")
	if err != nil {
		return err
	}
	res, err := record.ToWriter(c.Context, opts, f)
	if perr := stopProfile(); perr != nil && err == nil {
		err = fmt.Errorf("writing CPU profile: %w", perr)
	}
	if status != nil {
		status.Clear()
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing %s: %w", out, cerr)
	}
	if err != nil && res == nil {
		// Nothing was recorded (the probes did not load): leave no
		// empty file behind.
		if fi, serr := os.Stat(out); serr == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			os.Remove(out)
		}
	}
	if err != nil {
		if ue := (*record.UnavailableError)(nil); errors.As(err, &ue) {
			return exitCodeError{code: exitError, msg: ue.Error()}
		}
		if se := (*record.SelectionError)(nil); errors.As(err, &se) {
			return usageError{se.Error()}
		}
		return err
	}
	fmt.Fprintf(os.Stderr, "rewind: wrote %s: %d events, %s, %d lost (stopped: %s)\n",
		out, res.Events, report.Bytes(res.Bytes), res.Lost, res.StopReason)
	if res.Lost > 0 {
		fmt.Fprintf(os.Stderr, "rewind: warning: the kernel lost %d events (ring buffer full); the capture says where\n", res.Lost)
	}
	return nil
}

// parseSize reads a byte size: a number with an optional unit, binary
// (KiB, MiB, GiB, TiB, or K, M, G, T) or decimal (kB, MB, GB, TB); "B" or no
// unit means bytes.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		return 0, fmt.Errorf("size %q: want a number with an optional unit such as 16KiB or 1GiB", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[strings.ToLower(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)", s, unit)
	}
	n := v * mult
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(n), nil
}

// checkRecordTargets checks what record is pointed at, which needs neither
// root nor the kernel's probes: each --pid is a running process, --iface
// (if given) an interface, and the capture file path is not a directory, is
// in a directory that exists, and is not an existing regular file unless
// force.
func checkRecordTargets(path string, force bool, pids []int, iface string) error {
	for _, p := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err != nil {
			return usagef("--pid %d: no such process", p)
		}
	}
	if iface != "" {
		if _, err := net.InterfaceByName(iface); err != nil {
			return usagef("--iface %s: no such interface", iface)
		}
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return usagef("-o %s: is a directory", path)
	case err == nil && fi.Mode().IsRegular() && !force:
		return usagef("-o %s: the file exists; refusing to overwrite it (use --force, or another name)", path)
	case err != nil && errors.Is(err, fs.ErrNotExist):
		if di, derr := os.Stat(filepath.Dir(path)); derr != nil || !di.IsDir() {
			return usagef("-o %s: directory %s does not exist", path, filepath.Dir(path))
		}
	}
	return nil
}

// createCapture opens the capture file for writing (mode 0600), once
// [checkRecordTargets] has passed.
func createCapture(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating capture file: %w", err)
	}
	return f, nil
}
