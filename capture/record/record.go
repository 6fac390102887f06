//go:build linux

package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rewind-tools/rewind/bpf"
	"github.com/rewind-tools/rewind/capture"
)

// Available returns nil: this build can record (whether this process may is
// found out when the probes load, see [UnavailableError]).
func Available() error { return nil }

// CheckPrivileges returns an [*UnavailableError] when this process lacks
// the capabilities recording needs, so a command can say so before it
// creates any file.
func CheckPrivileges() error {
	if err := bpf.CheckPrivileges(); err != nil {
		return &UnavailableError{Reason: err.Error()}
	}
	return nil
}

func record(ctx context.Context, opts Options, open func() (io.Writer, error)) (*Result, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if opts.Snaplen <= 0 {
		opts.Snaplen = bpf.DefaultSnaplen
	}
	bo := bpf.Options{Snaplen: uint32(opts.Snaplen), KeepOther: opts.KeepOther, RingSize: uint32(opts.RingSize), VerifierLog: opts.VerifierLog}
	for _, p := range opts.PIDs {
		if p <= 0 {
			return nil, fmt.Errorf("pid %d: must be positive", p)
		}
	}
	// The process trees: children already running are included, those
	// started later are added by the fork tracepoint.
	tree := WithDescendants("/proc", opts.PIDs)
	for _, p := range tree {
		bo.PIDs = append(bo.PIDs, uint32(p))
	}
	for _, p := range opts.Ports {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("port %d: must be 1-65535", p)
		}
		bo.Ports = append(bo.Ports, uint16(p))
	}
	bo.Comms = opts.Comms
	cgroups, err := resolveCgroups(opts.Cgroups, opts.Containers)
	if err != nil {
		return nil, err
	}
	bo.Cgroups = cgroups
	var cgroupPaths []string
	for _, c := range cgroups {
		cgroupPaths = append(cgroupPaths, c.Path)
	}
	bo.TLS = opts.TLS
	bo.Log = log

	tr, err := bpf.Load(bo)
	if err != nil {
		if pe := (*bpf.PrivilegeError)(nil); errors.As(err, &pe) {
			return nil, &UnavailableError{Reason: pe.Error()}
		}
		return nil, err
	}
	defer tr.Close()
	probes := tr.Probes()

	var pc *packetCapture
	if opts.Packets {
		pc, err = startPackets(tr, opts.Iface)
		if err != nil {
			if opts.Iface != "" && !errors.Is(err, bpf.ErrNoPacketPrivilege) {
				return nil, err
			}
			fmt.Fprintf(log, "rewind: %v: recording without packets (no network timings)\n", err)
			opts.Packets = false
		} else {
			defer pc.close()
		}
	}

	hdr := newHeader(opts, probes)
	out, err := open()
	if err != nil {
		return nil, err
	}
	cw, err := capture.NewWriter(out, hdr, capture.WriterOptions{Codec: opts.Compression})
	if err != nil {
		return nil, err
	}
	snap, err := TakeSnapshot(SnapshotOptions{PIDs: tree, Comms: opts.Comms, Cgroups: cgroupPaths, Ports: opts.Ports})
	if err != nil {
		fmt.Fprintf(log, "rewind: snapshot incomplete: %v\n", err)
	}
	for _, ev := range snap.Events() {
		if err := cw.WriteSnapshot(ev); err != nil {
			return nil, err
		}
	}
	if pc != nil {
		// The packet filter keeps the ports of the traced processes'
		// sockets (listening ones included); new connections mark theirs
		// in the kernel.
		for _, so := range snap.Sockets {
			if err := tr.MarkPacketPort(so.Local.Port()); err != nil {
				return nil, err
			}
		}
	}
	if err := cw.Flush(); err != nil {
		return nil, err
	}

	s := &session{
		opts:      opts,
		tr:        tr,
		w:         cw,
		listening: snap.ListeningPorts,
		lastLoss:  map[bpf.LossCause][]uint64{},
		packets:   pc,
		redact:    newRecordRedactor(opts),
	}
	fmt.Fprintf(log, "%s (%d probes attached) — press Ctrl-C to stop\n", AttachedMessage, len(probes))
	if opts.Ready != nil {
		opts.Ready(probes)
	}
	reason, runErr := s.run(ctx)
	if runErr != nil {
		reason = "error: " + runErr.Error()
	}
	cw.SetStopReason(reason)
	if err := cw.Close(); err != nil && runErr == nil {
		runErr = err
	}
	res := &Result{Events: cw.Events(), Bytes: cw.Size(), Lost: cw.Lost(), StopReason: reason, Probes: probes}
	return res, runErr
}

func newHeader(opts Options, probes []string) capture.Header {
	h := capture.Header{
		RecorderVersion: opts.Version,
		Arch:            runtime.GOARCH,
		Probes:          probes,
		Options: capture.RecordingOptions{
			PIDs:       opts.PIDs,
			Comms:      opts.Comms,
			Cgroups:    opts.Cgroups,
			Containers: opts.Containers,
			Ports:      opts.Ports,
			MaxSize:    opts.MaxSize,
			Snaplen:    opts.Snaplen,
			KeepOther:  opts.KeepOther,
			// What the capture can contain.
			TLS:         opts.TLS && bpf.TLSProbesSupported() == nil,
			Packets:     opts.Packets,
			Iface:       opts.Iface,
			Compression: opts.Compression.String(),
		},
	}
	if opts.Redact {
		h.Options.Redact, h.Options.RedactHeaders = true, redactHeaderNames(opts)
	}
	if opts.Duration > 0 {
		h.Options.Duration = opts.Duration.String()
	}
	h.Host, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
	}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.BootID = strings.TrimSpace(string(b))
	}
	h.Clock = readClocks()
	h.NetNS = SelfNetNS()
	if opts.Packets {
		h.Clock.PacketClock = capture.PacketClockEvents
	}
	return h
}

// readClocks reads CLOCK_MONOTONIC (bpf_ktime_get_ns), CLOCK_REALTIME and
// CLOCK_BOOTTIME back to back.
func readClocks() capture.ClockMapping {
	var mono, wall, boot unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &wall)
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	_, off := time.Unix(0, wall.Nano()).Zone()
	return capture.ClockMapping{
		MonoNS:     uint64(mono.Nano()),
		WallUnixNS: wall.Nano(),
		BoottimeNS: uint64(boot.Nano()),
		ZoneOffset: off,
	}
}

func monoNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// session drains the tracer into the writer.
type session struct {
	opts      Options
	tr        *bpf.Tracer
	w         *capture.Writer
	listening map[uint16]bool
	// One reused value per kind: the writer encodes an event at once.
	evData   capture.Data
	evConn   capture.Connect
	evAccept capture.Accept
	evSocket capture.Socket
	evClose  capture.Close
	evExit   capture.Exit
	evPacket capture.Packet
	lastLoss map[bpf.LossCause][]uint64
	packets  *packetCapture // nil without packet capture
	bad      uint64
	full     bool            // MaxSize reached
	redact   *recordRedactor // nil unless Options.Redact
	// redactBuf holds the payload being masked.
	redactBuf []byte
}

// A read waits for records at most a poll interval: the programs wake the
// reader only each time another eighth of the ring fills up. Below
// highRate records per second the interval is minPoll, so the reader
// drains the ring in small batches: with 50 ms it wrote 4,000 events at a
// time on nginx at 20k req/s, ~2.5 ms of work on one of the two CPUs
// nginx and wrk share, and the requests behind it waited. With 5 ms,
// bench-record's paced-20k kept a median 98.0 % of the untraced rate
// instead of 96.9 % and its p99 change was +23 % instead of +36 % (eight
// alternations), for ~0.1 µs more recorder CPU per event. At highRate or
// more, small batches cost the traced programs throughput (flat out kept
// 63–65 % with 5 ms throughout, against 66–69 %), so the interval goes
// back to maxPoll. The rate decides, not a drain's count: after a long
// wait even a moderate rate fills a big drain. drainBatch, the most a
// drain reads before the loop looks at its timers, is more than highRate
// writes in maxPoll, so a drain that waited maxPoll is never cut short
// below highRate, which would understate the rate. Each empty wait
// doubles the interval up to maxPoll: an idle host wakes the recorder 20
// times a second, not 200.
const (
	minPoll    = 5 * time.Millisecond
	maxPoll    = 50 * time.Millisecond
	highRate   = 200_000 // records per second: about 1,000 per minPoll
	drainBatch = 16384   // > highRate × maxPoll (10,000)
)

// nextPoll is the poll interval after a drain that read n records written
// over the time since the previous drain ended.
func nextPoll(poll time.Duration, n int, over time.Duration) time.Duration {
	switch {
	case n == 0:
		return min(2*poll, maxPoll)
	case float64(n) >= highRate*max(over, time.Microsecond).Seconds():
		return maxPoll
	default:
		return minPoll
	}
}

func (s *session) run(ctx context.Context) (string, error) {
	start := time.Now()
	var deadline <-chan time.Time
	if s.opts.Duration > 0 {
		t := time.NewTimer(s.opts.Duration)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var rec bpf.Record
	reason := ""
	poll, drained := minPoll, time.Now()
	for reason == "" {
		select {
		case <-ctx.Done():
			reason = "signal"
			continue
		case <-deadline:
			reason = "duration"
			continue
		case <-tick.C:
			if err := s.tick(start); err != nil {
				return "", err
			}
		default:
		}
		s.tr.SetDeadline(time.Now().Add(poll))
		// Write what is there, up to a batch, then let the loop look at
		// its timers.
		n, _, err := s.drain(&rec, drainBatch)
		if err != nil {
			return "", err
		}
		now := time.Now()
		poll, drained = nextPoll(poll, n, now.Sub(drained)), now
		if s.full {
			reason = "max-size"
		}
	}
	// Stop the probes and the packet filter, then drain what they wrote
	// before they stopped.
	if err := s.tr.Detach(); err != nil {
		return "", fmt.Errorf("detaching probes: %w", err)
	}
	if s.packets != nil {
		// The only error is one met while following interfaces that
		// appeared during the recording: the rest of the capture is sound.
		if err := s.packets.close(); err != nil && s.opts.Log != nil {
			fmt.Fprintf(s.opts.Log, "rewind: warning: packet capture: %v (connections on that interface have no network times)\n", err)
		}
	}
	if reason != "max-size" {
		s.tr.SetDeadline(time.Now())
		for !s.full {
			if _, empty, err := s.drain(&rec, drainBatch); empty || err != nil {
				break
			}
		}
		// The lengths of other protocols' calls the programs were still
		// summing up.
		pend, err := s.tr.PendingOther()
		if err != nil {
			return "", err
		}
		for i := range pend {
			rec.Type, rec.Data, rec.Payload = bpf.EventData, pend[i], nil
			if s.full {
				break
			}
			if err := s.add(&rec); err != nil {
				return "", err
			}
		}
	}
	if err := s.writeLosses(); err != nil {
		return "", err
	}
	return reason, nil
}

func (s *session) tick(start time.Time) error {
	if err := s.writeLosses(); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	if s.opts.Progress != nil {
		s.opts.Progress(Progress{Elapsed: time.Since(start), Events: s.w.Events(), Bytes: s.w.Size(), Lost: s.w.Lost()})
	}
	return nil
}

var lossSources = map[bpf.LossCause]capture.LossSource{
	bpf.LossRingbuf: capture.LossRingbuf,
	bpf.LossState:   capture.LossState,
	bpf.LossPacket:  capture.LossPacket,
}

// writeLosses turns the growth of the kernel's per-CPU loss counters into
// Loss events, stamped now.
func (s *session) writeLosses() error {
	now := monoNow()
	for _, cause := range bpf.LossCauses {
		per, err := s.tr.Losses(cause)
		if err != nil {
			return err
		}
		last := s.lastLoss[cause]
		for cpu, n := range per {
			var prev uint64
			if cpu < len(last) {
				prev = last[cpu]
			}
			if n > prev {
				if err := s.w.Write(&capture.Loss{Timestamp: now, CPU: uint32(cpu), Source: lossSources[cause], Count: n - prev}); err != nil {
					return err
				}
			}
		}
		s.lastLoss[cause] = per
	}
	return nil
}

// drain writes up to max of the ring's records, waiting for the first
// until the tracer's deadline; it reports how many records it read and
// whether it stopped at an empty ring. Records that do not decode are
// counted and skipped.
func (s *session) drain(rec *bpf.Record, max int) (read int, empty bool, err error) {
	for ; read < max && !s.full; read++ {
		err := s.tr.Read(rec)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return read, true, nil
		case errors.Is(err, bpf.ErrBadRecord):
			s.bad++
			continue
		case err != nil:
			return read, false, fmt.Errorf("reading ring buffer: %w", err)
		}
		if err := s.add(rec); err != nil {
			return read, false, err
		}
	}
	return read, false, nil
}

// add writes a kernel record as a capture event, in the order the ring
// delivered it. A process start is turned into its event now, while /proc
// still has the process.
func (s *session) add(rec *bpf.Record) error {
	var ev capture.Event
	if rec.Type == bpf.EventExec {
		p := &rec.Proc
		s.tr.ProcessStarted(p.Pid)
		proc := &capture.Process{Timestamp: p.TsNs, PID: p.Pid, PPID: p.Ppid, UID: p.Uid, Comm: commString(p.Comm[:])}
		fillProcess(proc)
		// The kernel's readings are of the exec itself: /proc is read
		// later, after a quick process (ip netns exec curl) may have
		// gone, or moved on with setns.
		if p.Netns != 0 {
			proc.NetNS = uint64(p.Netns)
		}
		if p.CgroupId != 0 {
			proc.CgroupID = p.CgroupId
		}
		ev = proc
	} else if ev = s.event(rec); ev == nil {
		return nil
	}
	if s.redact != nil {
		if d, ok := ev.(*capture.Data); ok && len(d.Payload) > 0 {
			// The payload lies in the kernel's ring, mapped read-only:
			// mask a copy.
			s.redactBuf = append(s.redactBuf[:0], d.Payload...)
			d.Payload = s.redactBuf
		}
		s.redact.apply(ev)
	}
	if err := s.w.Write(ev); err != nil {
		return err
	}
	// Pending is uncompressed: when it could reach the limit, flush
	// and look at what the file really holds.
	if s.opts.MaxSize > 0 && s.w.Size()+int64(s.w.Pending()) >= s.opts.MaxSize {
		if err := s.w.Flush(); err != nil {
			return err
		}
		s.full = s.w.Size() >= s.opts.MaxSize
	}
	return nil
}

// event converts a decoded kernel record into a capture event. The event is
// one of the session's reused values, and its payload aliases rec's: both
// are valid until the next call. It returns nil for a record to skip.
func (s *session) event(rec *bpf.Record) capture.Event {
	switch rec.Type {
	case bpf.EventData:
		d := &rec.Data
		e := &s.evData
		*e = capture.Data{
			Start: d.StartNs, Timestamp: d.TsNs, PID: d.Pid, TID: d.Tid, FD: d.Fd, Gen: d.Gen,
			Source: capture.Source(d.Source), Dir: capture.Direction(d.Dir), Len: d.Len, Offset: d.Offset,
			TLSConn: d.TlsConn, Payload: rec.Payload, Flags: dataFlags(d.Flags),
		}
		if e.Source.IsTLS() && e.Flags&(capture.DataFDNested|capture.DataFDCached|capture.DataFDUnknown) == 0 {
			// The kernel read the fd from the library's connection object.
			e.Flags |= capture.DataFDObject
		}
		return e
	case bpf.EventConnect:
		c := &rec.Conn
		l, r := connAddrs(c)
		s.evConn = capture.Connect{Start: c.StartNs, Timestamp: c.TsNs, PID: c.Pid, TID: c.Tid, FD: c.Fd, Gen: c.Gen, Ret: c.Ret, Local: l, Remote: r}
		return &s.evConn
	case bpf.EventAccept:
		c := &rec.Conn
		l, r := connAddrs(c)
		s.evAccept = capture.Accept{Start: c.StartNs, Timestamp: c.TsNs, PID: c.Pid, TID: c.Tid, ListenFD: c.ListenFd, FD: c.Fd, Gen: c.Gen, Local: l, Remote: r}
		return &s.evAccept
	case bpf.EventSocket:
		c := &rec.Conn
		l, r := connAddrs(c)
		role := capture.RoleClient
		if s.listening[l.Port()] {
			role = capture.RoleServer
		}
		s.evSocket = capture.Socket{Timestamp: c.TsNs, PID: c.Pid, FD: c.Fd, Inode: c.Inode, Role: role, State: c.State, Local: l, Remote: r}
		return &s.evSocket
	case bpf.EventClose:
		c := &rec.Close
		s.evClose = capture.Close{Timestamp: c.TsNs, PID: c.Pid, TID: c.Tid, FD: c.Fd, Gen: c.Gen}
		return &s.evClose
	case bpf.EventExit:
		p := &rec.Proc
		s.evExit = capture.Exit{Timestamp: p.TsNs, PID: p.Pid, Code: p.ExitCode}
		return &s.evExit
	case bpf.EventPacket:
		return s.packetEvent(rec)
	}
	s.bad++
	return nil
}

// connAddrs returns a connection record's local and remote addresses;
// IPv4-mapped IPv6 addresses (dual-stack sockets) are unmapped so both ends
// of a loopback connection show the same addresses.
func connAddrs(c *bpf.ConnEvent) (local, remote netip.AddrPort) {
	var l, r netip.Addr
	switch c.Family {
	case bpf.AFInet:
		l = netip.AddrFrom4([4]byte(c.Laddr[:4]))
		r = netip.AddrFrom4([4]byte(c.Raddr[:4]))
	case bpf.AFInet6:
		l = netip.AddrFrom16(c.Laddr).Unmap()
		r = netip.AddrFrom16(c.Raddr).Unmap()
	default:
		return netip.AddrPort{}, netip.AddrPort{}
	}
	return netip.AddrPortFrom(l, c.Lport), netip.AddrPortFrom(r, c.Rport)
}

func commString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// dataFlags converts a kernel data record's flags.
func dataFlags(f uint8) capture.DataFlags {
	var out capture.DataFlags
	for _, m := range [...]struct {
		k uint8
		c capture.DataFlags
	}{
		{bpf.DataTruncated, capture.DataTruncated},
		{bpf.DataFDNested, capture.DataFDNested},
		{bpf.DataFDCached, capture.DataFDCached},
		{bpf.DataFDUnknown, capture.DataFDUnknown},
		{bpf.DataOther, capture.DataOtherProtocol},
		{bpf.DataMerged, capture.DataMerged},
	} {
		if f&m.k != 0 {
			out |= m.c
		}
	}
	return out
}
