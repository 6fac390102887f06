//go:build linux

// Package bpf loads and attaches rewind's eBPF programs and streams the raw
// records they write: socket data, connects, accepts, closes, process execs
// and exits. It knows nothing of the capture file format; package capture
// turns its records into capture events.
//
// The programs use syscall tracepoints (enter and exit) and sched tp_btf
// tracepoints only: no kprobes and no fentry, which many kernels lack. See
// README.md in this folder for how they decide what to record.
package bpf

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// FragmentSize is the largest payload of one [DataEvent]: a call that moved
// more is split into several records with increasing Offset.
const FragmentSize = 16384

// DefaultSnaplen is the default number of payload bytes kept per call.
const DefaultSnaplen = 16 << 10

// DefaultRingSize is the default size of the ring buffer.
const DefaultRingSize = 32 << 20

// Record types, the first field of every record.
const (
	EventData    uint32 = 1 // [DataEvent] and its payload
	EventConnect uint32 = 2 // [ConnEvent]: connect returned 0 or -EINPROGRESS
	EventAccept  uint32 = 3 // [ConnEvent]: accept returned a socket
	EventClose   uint32 = 4 // [CloseEvent]
	EventSocket  uint32 = 5 // [ConnEvent]: a socket first seen with data (opened before recording)
	EventExec    uint32 = 6 // [ProcEvent]
	EventExit    uint32 = 7 // [ProcEvent]
	EventPacket  uint32 = 8 // [PacketEvent] and the packet's first bytes
)

// Data directions, as in DataEvent.Dir.
const (
	DirIngress uint8 = 1
	DirEgress  uint8 = 2
)

// Flags of DataEvent.Flags.
const (
	// DataTruncated: the call moved bytes beyond this fragment's payload
	// that no record holds (snaplen, or a user-memory fault).
	DataTruncated uint8 = 1
	// DataFDNested: the fd of TLS plaintext is the one of the read/write
	// syscall nested in the library call on the same thread.
	DataFDNested uint8 = 2
	// DataFDCached: the fd of TLS plaintext is the last one seen for the
	// library's connection object (a call served from its buffer).
	DataFDCached uint8 = 4
	// DataFDUnknown: the fd of TLS plaintext was not found (Fd is -1).
	DataFDUnknown uint8 = 8
	// DataOther: the connection's first bytes showed another protocol than
	// any rewind parses (see [Options.KeepOther]); the call is recorded by
	// its length only.
	DataOther uint8 = 32
	// DataMerged (with DataOther): the record sums the lengths of
	// consecutive calls of one direction and source, from the first's
	// entry (StartNs) to the last's exit (TsNs); Tid is the last's.
	DataMerged uint8 = 64
)

// TLS plaintext with none of the DataFD flags set had its fd read from the
// library's connection object (Go: *tls.Conn → net.Conn → netFD.pfd.Sysfd).

// Socket families in ConnEvent.Family.
const (
	AFInet  = 2
	AFInet6 = 10
)

// DataEvent is the header of a data record; Cap payload bytes follow it.
// Source numbers the syscall (1 read … 11 sendfile) or, from 32 up, a TLS
// library, with the same values as capture.Source.
type DataEvent = rewindDataEvent

// ConnEvent is a connect, accept or socket record: the connection's
// generation and addresses (IPv4 in the first 4 bytes of Laddr and Raddr).
type ConnEvent = rewindConnEvent

// CloseEvent is the close of a socket fd the recording knew.
type CloseEvent = rewindCloseEvent

// ProcEvent is a process exec or exit.
type ProcEvent = rewindProcEvent

// PacketEvent is a packet the packet socket filter kept (see
// [Tracer.OpenPackets]). [Tracer.Read] fills its header fields only; the
// packet's bytes, from the IP header on, are in [Record].Payload.
type PacketEvent = rewindPacketEvent

// packetHeaderSize is the size of a packet record before its bytes.
const packetHeaderSize = int(unsafe.Offsetof(rewindPacketEvent{}.Data))

// packetMax is PACKET_MAX of rewind.h: the most bytes of a packet a record
// carries.
const packetMax = len(rewindPacketEvent{}.Data)

// Record is one record read from the ring buffer. Type says which of the
// other fields is set.
type Record struct {
	Type  uint32
	Data  DataEvent
	Conn  ConnEvent
	Close CloseEvent
	Proc  ProcEvent
	// Packet is the header of a packet record.
	Packet PacketEvent
	// Payload holds the data or packet record's bytes. It aliases the ring
	// buffer, which is mapped read-only: copy it to change it. It is valid
	// until the next [Tracer.Read] or [Tracer.Close].
	Payload []byte
}

// Options select what the programs record.
type Options struct {
	// PIDs, Comms and Cgroups select processes (their union); empty means
	// all. The children a selected PID starts later are traced too, and so
	// are the processes of cgroups made later below a selected one.
	PIDs    []uint32
	Comms   []string
	Cgroups []Cgroup
	// Ports keeps connections whose local or remote port is listed; empty
	// means all.
	Ports []uint16
	// Snaplen is the payload bytes kept per call (default DefaultSnaplen).
	Snaplen uint32
	// KeepOther keeps the payload of every connection. Without it, a
	// connection whose first bytes show a protocol rewind does not parse
	// (a control byte first, as in binary length-prefixed protocols and
	// bulk data; or text that its peer does not answer with an HTTP status
	// line) keeps the calls that showed it whole and the later ones by
	// length only ([DataOther]): their bytes are not copied at all.
	// Connections that predate the recording are always kept whole.
	KeepOther bool
	// RingSize is the ring buffer size in bytes, a power of two (default
	// DefaultRingSize).
	RingSize uint32
	// SelfPID is never traced; default the calling process.
	SelfPID uint32
	// VerifierLog, when set, receives the verifier's full log if the kernel
	// refuses a program.
	VerifierLog string
	// TLS attaches uprobes to the TLS libraries of running processes and of
	// the ones started later (OpenSSL, BoringSSL, GnuTLS, Go crypto/tls;
	// amd64 only, see [TLSProbesSupported]), recording their plaintext.
	TLS bool
	// NoUprobeMulti attaches the TLS probes with one link each even where
	// the kernel has uprobe_multi links (for comparisons and tests).
	NoUprobeMulti bool
	// NoFieldLoads reads the kernel's socket structures and the task name
	// with helper calls, as on kernels without bpf_rdonly_cast, even where
	// direct loads are possible (for comparisons and tests).
	NoFieldLoads bool
	// Log receives notices: each TLS library attached, or why one was not.
	Log io.Writer
	// PacketPayload is the TCP payload bytes the packet filter keeps after
	// the TCP header (default [DefaultPacketPayload]); see
	// [Tracer.OpenPackets].
	PacketPayload uint32
}

// Cgroup is a cgroup v2 selected by the recording, in the kernel: a
// process in it or in a cgroup below it is traced.
type Cgroup struct {
	// ID is the cgroup's id (its directory's inode in the v2 mount, what
	// bpf_get_current_cgroup_id returns).
	ID uint64
	// Level is its depth below the root cgroup (level 0).
	Level int
	// Path is its path from the root ("/system.slice/docker-….scope"),
	// for deciding in user space which processes it holds.
	Path string
}

// Tracer is the loaded and attached set of programs. Close detaches them.
type Tracer struct {
	objs    rewindObjects
	rd      *eventRing
	selfPID uint32
	tls     *tlsAttacher // nil without TLS probes
	// uprobeMulti: the TLS probes of a file are attached with one
	// uprobe_multi link per program (kernels >= 6.6).
	uprobeMulti bool
	// fieldLoads: the syscall programs load socket fields directly
	// (btf_walk) rather than with helper calls.
	fieldLoads bool
	// The process filter, for the TLS attacher: with PIDs or Comms set it
	// inspects the selected processes only.
	filterPIDs bool
	comms      map[string]bool
	cgroups    []string // the selected cgroups' paths

	mu       sync.Mutex // links and probes grow while TLS libraries are found
	links    []link.Link
	uprobes  []link.Link // TLS probes, detached all at once
	probes   []string
	detached bool
}

// probe is one program and where it attaches.
type probe struct {
	prog  *ebpf.Program
	kind  string // "tracepoint" or "tp_btf"
	group string
	name  string
}

// LoadError says that the kernel refused a program; Log is the verifier's
// log, written to LogPath when the caller asked for a file.
type LoadError struct {
	Program string
	Err     error
	Log     []string
	LogPath string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the kernel refused BPF program %s: %v", e.Program, e.Err)
	if e.LogPath != "" {
		fmt.Fprintf(&b, " (full verifier log in %s)", e.LogPath)
	}
	b.WriteString("; rewind needs a kernel >= 5.17 with BTF (/sys/kernel/btf/vmlinux), BPF ring buffers, bpf_loop and syscall tracepoints (CONFIG_FTRACE_SYSCALLS)")
	return b.String()
}

func (e *LoadError) Unwrap() error { return e.Err }

// Load checks privileges, mounts tracefs when missing, loads the programs
// configured by opts and attaches every probe. The caller must Close the
// Tracer.
func Load(opts Options) (*Tracer, error) {
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	if err := EnsureTracefs(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		// Kernels >= 5.11 account BPF memory to the cgroup instead.
		_ = err
	}
	if opts.Snaplen == 0 {
		opts.Snaplen = DefaultSnaplen
	}
	if opts.RingSize == 0 {
		opts.RingSize = DefaultRingSize
	}
	if opts.RingSize&(opts.RingSize-1) != 0 || opts.RingSize < 1<<16 {
		return nil, fmt.Errorf("ring buffer size %d: must be a power of two of at least 64 KiB", opts.RingSize)
	}
	if opts.SelfPID == 0 {
		opts.SelfPID = uint32(os.Getpid())
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.PacketPayload == 0 {
		opts.PacketPayload = DefaultPacketPayload
	}
	if int(opts.PacketPayload) > packetMax-packetHeaders {
		return nil, fmt.Errorf("packet payload %d: at most %d bytes after the TCP header", opts.PacketPayload, packetMax-packetHeaders)
	}
	if opts.TLS {
		if err := TLSProbesSupported(); err != nil {
			fmt.Fprintf(opts.Log, "rewind: %v: recording TLS connections as ciphertext\n", err)
			opts.TLS = false
		}
	}
	for _, c := range opts.Cgroups {
		if c.Level < 0 || c.Level > maxCgroupLevel {
			return nil, fmt.Errorf("cgroup %s is %d levels deep: the kernel filter selects cgroups up to %d levels below the root", c.Path, c.Level, maxCgroupLevel)
		}
	}
	spec, err := loadRewind()
	if err != nil {
		return nil, fmt.Errorf("reading embedded BPF object: %w", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("counting CPUs: %w", err)
	}
	spec.Maps[rewindMapEvents].MaxEntries = opts.RingSize
	spec.Maps[rewindMapScratch].MaxEntries = uint32(ncpu)
	set := func(name string, v any) error {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("BPF object has no variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("setting BPF variable %s: %w", name, err)
		}
		return nil
	}
	b := func(v bool) uint8 {
		if v {
			return 1
		}
		return 0
	}
	for _, kv := range []struct {
		name string
		v    any
	}{
		{"self_tgid", opts.SelfPID},
		{"snaplen", opts.Snaplen},
		{"keep_other", b(opts.KeepOther)},
		{"filter_pids", b(len(opts.PIDs) > 0)},
		{"filter_comms", b(len(opts.Comms) > 0)},
		{"filter_cgroups", b(len(opts.Cgroups) > 0)},
		{"cgroup_levels", cgroupLevels(opts.Cgroups)},
		{"filter_ports", b(len(opts.Ports) > 0)},
		{"wakeup_bytes", uint64(opts.RingSize / 8)},
		{"tls_wake_exec", b(opts.TLS)},
		// With a process or port filter, the packet filter keeps the
		// traced connections' ports only; else every TCP packet.
		{"packet_by_port", b(len(opts.PIDs) > 0 || len(opts.Comms) > 0 || len(opts.Cgroups) > 0 || len(opts.Ports) > 0)},
		{"packet_payload", opts.PacketPayload},
		{"packet_lo_ifindex", loopbackIndex()},
	} {
		if err := set(kv.name, kv.v); err != nil {
			return nil, err
		}
	}

	t := &Tracer{selfPID: opts.SelfPID, filterPIDs: len(opts.PIDs) > 0}
	if opts.TLS && !opts.NoUprobeMulti {
		if err := features.HaveBPFLinkUprobeMulti(); err == nil {
			t.uprobeMulti = true
		} else if !errors.Is(err, ebpf.ErrNotSupported) {
			fmt.Fprintf(opts.Log, "rewind: TLS: probing for uprobe_multi links: %v: one link per probe\n", err)
		}
	}
	if !t.uprobeMulti {
		stubMultiPrograms(spec)
	}
	for _, c := range opts.Cgroups {
		t.cgroups = append(t.cgroups, c.Path)
	}
	for _, c := range opts.Comms {
		if t.comms == nil {
			t.comms = map[string]bool{}
		}
		if len(c) > 15 {
			c = c[:15]
		}
		t.comms[c] = true
	}
	t.fieldLoads = !opts.NoFieldLoads && kernelHasFunc("bpf_rdonly_cast")
	if err := set("btf_walk", b(t.fieldLoads)); err != nil {
		return nil, err
	}
	err = spec.LoadAndAssign(&t.objs, &ebpf.CollectionOptions{})
	var ve *ebpf.VerifierError
	if err != nil && t.fieldLoads && errors.As(err, &ve) {
		// A verifier that has the kfunc but refuses the loads: the
		// helper calls do the same, a little slower. Other errors (no
		// memory for a map, no permission) would only repeat.
		first := err
		t.fieldLoads = false
		if err = set("btf_walk", b(false)); err != nil {
			return nil, err
		}
		if err = spec.LoadAndAssign(&t.objs, &ebpf.CollectionOptions{}); err == nil {
			fmt.Fprintf(opts.Log, "rewind: the kernel refused direct loads of socket fields (%v); reading them with bpf_probe_read_kernel\n", first)
		}
	}
	if err != nil {
		return nil, loadError(err, opts.VerifierLog)
	}
	if err := t.fillFilters(opts); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.attach(); err != nil {
		t.Close()
		return nil, err
	}
	t.rd, err = newEventRing(t.objs.Events)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("opening ring buffer: %w", err)
	}
	if opts.TLS {
		t.startTLS(opts.Log)
	}
	return t, nil
}

// kernelHasFunc reports whether the running kernel's BTF has the function
// (a kfunc) name.
func kernelHasFunc(name string) bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false
	}
	var fn *btf.Func
	return spec.TypeByName(name, &fn) == nil
}

// FieldLoads reports whether the syscall programs load the kernel's socket
// fields directly (kernels with bpf_rdonly_cast, 6.2 and later) rather
// than with bpf_probe_read_kernel helper calls.
func (t *Tracer) FieldLoads() bool { return t.fieldLoads }

// stubMultiPrograms replaces the uprobe_multi programs, which kernels
// before 6.6 refuse to load, with programs that only return 0: the
// generated objects still load, and nothing attaches them.
func stubMultiPrograms(spec *ebpf.CollectionSpec) {
	for name, ps := range spec.Programs {
		if ps.AttachType != ebpf.AttachTraceUprobeMulti {
			continue
		}
		spec.Programs[name] = &ebpf.ProgramSpec{
			Name:         ps.Name,
			Type:         ps.Type,
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
			License:      ps.License,
		}
	}
}

func loadError(err error, logPath string) error {
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return fmt.Errorf("loading BPF programs: %w", err)
	}
	le := &LoadError{Program: programName(err.Error()), Err: ve.Cause, Log: ve.Log}
	if le.Err == nil {
		le.Err = err
	}
	if logPath == "" {
		f, ferr := os.CreateTemp("", "rewind-verifier-*.log")
		if ferr == nil {
			logPath = f.Name()
			f.Close()
		}
	}
	if logPath != "" {
		text := strings.Join(ve.Log, "\n") + "\n"
		if werr := os.WriteFile(logPath, []byte(text), 0o600); werr == nil {
			le.LogPath = logPath
		}
	}
	return le
}

// programName finds the program's name in cilium/ebpf's error text
// ("field EnterRead: program enter_read: load program: …").
func programName(msg string) string {
	if i := strings.Index(msg, "program "); i >= 0 {
		rest := msg[i+len("program "):]
		if j := strings.IndexByte(rest, ':'); j > 0 {
			return rest[:j]
		}
	}
	return "(unknown)"
}

func (t *Tracer) fillFilters(opts Options) error {
	one := uint8(1)
	for _, pid := range opts.PIDs {
		if err := t.objs.TracedTgids.Put(pid, one); err != nil {
			return fmt.Errorf("adding pid %d to the filter: %w", pid, err)
		}
	}
	for _, c := range opts.Comms {
		var k rewindCommKey
		if len(c) >= len(k.Comm) {
			c = c[:len(k.Comm)-1] // the kernel keeps 15 bytes of a task name
		}
		for i := 0; i < len(c); i++ {
			k.Comm[i] = int8(c[i])
		}
		if err := t.objs.TracedComms.Put(k, one); err != nil {
			return fmt.Errorf("adding comm %q to the filter: %w", c, err)
		}
	}
	for _, c := range opts.Cgroups {
		if err := t.objs.TracedCgroups.Put(c.ID, one); err != nil {
			return fmt.Errorf("adding cgroup %s to the filter: %w", c.Path, err)
		}
	}
	for _, p := range opts.Ports {
		if err := t.objs.TracedPorts.Put(uint32(p), one); err != nil {
			return fmt.Errorf("adding port %d to the filter: %w", p, err)
		}
		if err := t.MarkPacketPort(p); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tracer) probeList() []probe {
	p := &t.objs.rewindPrograms
	tp := func(prog *ebpf.Program, name string) probe {
		return probe{prog: prog, kind: "tracepoint", group: "syscalls", name: name}
	}
	return []probe{
		// Process lifecycle first, so that children forked while the rest
		// attaches are already followed.
		{prog: p.OnFork, kind: "tp_btf", name: "sched_process_fork"},
		{prog: p.OnExec, kind: "tp_btf", name: "sched_process_exec"},
		{prog: p.OnExit, kind: "tp_btf", name: "sched_process_exit"},
		// Exits before enters: an enter whose exit is not attached yet
		// would leave state behind.
		tp(p.ExitConnect, "sys_exit_connect"), tp(p.EnterConnect, "sys_enter_connect"),
		tp(p.ExitAccept, "sys_exit_accept"), tp(p.EnterAccept, "sys_enter_accept"),
		tp(p.ExitAccept4, "sys_exit_accept4"), tp(p.EnterAccept4, "sys_enter_accept4"),
		tp(p.EnterClose, "sys_enter_close"),
		tp(p.ExitRead, "sys_exit_read"), tp(p.EnterRead, "sys_enter_read"),
		tp(p.ExitWrite, "sys_exit_write"), tp(p.EnterWrite, "sys_enter_write"),
		tp(p.ExitReadv, "sys_exit_readv"), tp(p.EnterReadv, "sys_enter_readv"),
		tp(p.ExitWritev, "sys_exit_writev"), tp(p.EnterWritev, "sys_enter_writev"),
		tp(p.ExitSendto, "sys_exit_sendto"), tp(p.EnterSendto, "sys_enter_sendto"),
		tp(p.ExitRecvfrom, "sys_exit_recvfrom"), tp(p.EnterRecvfrom, "sys_enter_recvfrom"),
		tp(p.ExitSendmsg, "sys_exit_sendmsg"), tp(p.EnterSendmsg, "sys_enter_sendmsg"),
		tp(p.ExitRecvmsg, "sys_exit_recvmsg"), tp(p.EnterRecvmsg, "sys_enter_recvmsg"),
		tp(p.ExitSendmmsg, "sys_exit_sendmmsg"), tp(p.EnterSendmmsg, "sys_enter_sendmmsg"),
		tp(p.ExitRecvmmsg, "sys_exit_recvmmsg"), tp(p.EnterRecvmmsg, "sys_enter_recvmmsg"),
		tp(p.ExitSendfile64, "sys_exit_sendfile64"), tp(p.EnterSendfile64, "sys_enter_sendfile64"),
	}
}

func (t *Tracer) attach() error {
	for _, p := range t.probeList() {
		var (
			l   link.Link
			err error
			id  string
		)
		switch p.kind {
		case "tracepoint":
			id = "tracepoint:" + p.group + ":" + p.name
			l, err = link.Tracepoint(p.group, p.name, p.prog, nil)
		case "tp_btf":
			id = "tp_btf:" + p.name
			l, err = link.AttachTracing(link.TracingOptions{Program: p.prog})
		}
		if err != nil {
			return fmt.Errorf("attaching %s: %w", id, err)
		}
		t.mu.Lock()
		t.links = append(t.links, l)
		t.probes = append(t.probes, id)
		t.mu.Unlock()
	}
	return nil
}

// Probes lists the attached probes ("tracepoint:syscalls:sys_enter_read",
// "tp_btf:sched_process_fork", …).
// TLS uprobes are listed as "uprobe:FILE:SYMBOL@OFFSET" (and "uretprobe:…"),
// or "uprobe.multi:…" and "uretprobe.multi:…" when attached with
// uprobe_multi links (one entry per probe all the same), those attached so
// far.
func (t *Tracer) Probes() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.probes...)
}

// SetDeadline makes Read return os.ErrDeadlineExceeded once the ring is
// empty after deadline. The programs wake a waiting reader only each time
// another eighth of the ring fills up, so a reader should poll with a short
// deadline.
func (t *Tracer) SetDeadline(deadline time.Time) { t.rd.deadline = deadline }

// Read reads the next record into rec. It returns [ErrClosed] after Close
// and os.ErrDeadlineExceeded when the deadline passed with the ring empty.
// Records it cannot decode are returned as errors wrapping
// [ErrBadRecord]; reading may go on after them. Read, SetDeadline and Close
// are for one goroutine: the reader's.
func (t *Tracer) Read(rec *Record) error {
	raw, err := t.rd.read()
	if err != nil {
		return err
	}
	return rec.Decode(raw)
}

// Decode fills rec from raw, a record's bytes. Payload then aliases raw.
func (rec *Record) Decode(raw []byte) error {
	if len(raw) < 4 {
		return fmt.Errorf("%w: %d bytes", ErrBadRecord, len(raw))
	}
	rec.Type = le32(raw)
	rec.Payload = nil
	ok := false
	switch rec.Type {
	case EventData:
		if ok = decode(&rec.Data, raw); ok {
			n := int(unsafe.Sizeof(rec.Data))
			end := n + int(rec.Data.Cap)
			if ok = end <= len(raw); ok {
				rec.Payload = raw[n:end]
			}
		}
	case EventConnect, EventAccept, EventSocket:
		ok = decode(&rec.Conn, raw)
	case EventClose:
		ok = decode(&rec.Close, raw)
	case EventExec, EventExit:
		ok = decode(&rec.Proc, raw)
	case EventPacket:
		if ok = len(raw) >= packetHeaderSize; ok {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&rec.Packet)), packetHeaderSize), raw)
			end := packetHeaderSize + int(rec.Packet.Cap)
			if ok = int(rec.Packet.Cap) <= packetMax && end <= len(raw); ok {
				rec.Payload = raw[packetHeaderSize:end]
			}
		}
	}
	if !ok {
		return fmt.Errorf("%w: type %d, %d bytes", ErrBadRecord, rec.Type, len(raw))
	}
	return nil
}

// PendingOther returns, as merged length-only records ([DataMerged]), the
// calls of other protocols' connections the programs summed up and have
// not written yet (they are written when a call cannot join them, at 1 MiB
// or 100 ms, or at close). Call it after [Tracer.Detach], so that nothing
// is added meanwhile, to account for every byte.
func (t *Tracer) PendingOther() ([]DataEvent, error) {
	var (
		k   rewindConnKey
		v   rewindConnVal
		out []DataEvent
	)
	it := t.objs.Conns.Iterate()
	for it.Next(&k, &v) {
		if v.PendLen == 0 {
			continue
		}
		out = append(out, DataEvent{
			Type: EventData, Pid: k.Tgid, Tid: v.PendTid, Fd: k.Fd, StartNs: v.PendStart, TsNs: v.PendEnd,
			Gen: v.Gen, Len: v.PendLen, Source: v.PendSource, Dir: v.PendDir,
			Flags: DataOther | DataMerged | DataTruncated,
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading the connections map: %w", err)
	}
	// Map order is the kernel's hash order: sort, so the capture does
	// not depend on it.
	slices.SortFunc(out, func(a, b DataEvent) int { return cmp.Compare(a.TsNs, b.TsNs) })
	return out, nil
}

// ErrClosed is returned by [Tracer.Read] after [Tracer.Close].
var ErrClosed = errors.New("bpf tracer closed")

// ErrBadRecord is wrapped by [Tracer.Read] errors for records of an unknown
// type or size.
var ErrBadRecord = errors.New("malformed BPF record")

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// decode copies the fixed-size record at the start of raw into dst; the
// generated types have the C structs' layout (structs.HostLayout).
func decode[T any](dst *T, raw []byte) bool {
	n := int(unsafe.Sizeof(*dst))
	if len(raw) < n {
		return false
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(dst)), n), raw[:n])
	return true
}

// LossCause says why events were lost.
type LossCause uint32

// Loss causes, the keys of the per-CPU losses map.
const (
	// LossRingbuf counts records dropped because the ring buffer was full.
	LossRingbuf LossCause = 0
	// LossState counts calls not followed because the kernel could not
	// allocate the thread's state (task storage).
	LossState LossCause = 1
	// LossPacket counts packets the packet filter dropped because the ring
	// buffer was full.
	LossPacket LossCause = 2
)

// LossCauses lists every LossCause.
var LossCauses = []LossCause{LossRingbuf, LossState, LossPacket}

// Losses returns, per CPU, how many events were lost for cause since
// loading. The counts only grow.
func (t *Tracer) Losses(cause LossCause) ([]uint64, error) {
	var per []uint64
	if err := t.objs.Losses.Lookup(uint32(cause), &per); err != nil {
		return nil, fmt.Errorf("reading loss counters: %w", err)
	}
	return per, nil
}

// Detach detaches every probe; records already in the ring buffer can
// still be read (until Read reports the deadline with the ring empty).
func (t *Tracer) Detach() error {
	if t.tls != nil {
		t.tls.close()
		t.tls = nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.detached = true
	// Each detach waits for an RCU grace period: one after the other,
	// uprobes and tracepoints take tens of milliseconds each; together,
	// about as long as the slowest. The order does not matter any more:
	// state an enter program leaves behind dies with the maps.
	all := append(t.uprobes, t.links...)
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, l := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Close()
		}()
	}
	wg.Wait()
	t.uprobes, t.links = nil, nil
	return errors.Join(errs...)
}

// Close detaches every probe, unmaps the ring buffer and frees the programs
// and maps. It is for the reader's goroutine, like Read: a Read in progress
// on another goroutine is not interrupted, and would then fault on the
// unmapped ring.
func (t *Tracer) Close() error {
	errs := []error{t.Detach()}
	if t.rd != nil {
		errs = append(errs, t.rd.close())
	}
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}

// maxCgroupLevel is the deepest cgroup the kernel filter can select (its
// levels are bits of a 32-bit word).
const maxCgroupLevel = 31

// cgroupLevels is the bit set of the selected cgroups' levels.
func cgroupLevels(cgs []Cgroup) uint32 {
	var m uint32
	for _, c := range cgs {
		m |= 1 << c.Level
	}
	return m
}
