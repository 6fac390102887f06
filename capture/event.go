package capture

import (
	"fmt"
	"net/netip"
)

// Kind identifies the type of an [Event]. The numeric values are part of the
// file format (see FORMAT.md) and never change meaning; new kinds get new
// numbers.
type Kind uint8

// Event kinds. A reader meeting a kind it does not know skips it and counts it
// in [Stats.UnknownKinds].
const (
	KindProcess Kind = 1  // a process, from the start snapshot or seen exec'ing
	KindSocket  Kind = 2  // a socket that was open when recording started
	KindConnect Kind = 3  // connect(2) returned (successfully or EINPROGRESS)
	KindAccept  Kind = 4  // accept(2)/accept4(2) returned a new socket
	KindClose   Kind = 5  // close(2) of a socket
	KindData    Kind = 6  // bytes a process sent or received on a socket
	KindPacket  Kind = 7  // a packet seen by the packet socket
	KindTCP     Kind = 8  // a TCP-level event (retransmission, reset, …)
	KindLoss    Kind = 9  // events the kernel could not deliver
	KindExit    Kind = 10 // a process exited

	maxKind = KindExit
)

var kindNames = [...]string{
	KindProcess: "process",
	KindSocket:  "socket",
	KindConnect: "connect",
	KindAccept:  "accept",
	KindClose:   "close",
	KindData:    "data",
	KindPacket:  "packet",
	KindTCP:     "tcp",
	KindLoss:    "loss",
	KindExit:    "exit",
}

// String returns the kind's name as used in reports and `rewind info`.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Kinds lists every kind this version knows, in numeric order.
func Kinds() []Kind {
	ks := make([]Kind, 0, maxKind)
	for k := Kind(1); k <= maxKind; k++ {
		ks = append(ks, k)
	}
	return ks
}

// Event is one record of a capture. The concrete types are the pointer types
// of this package ([*Data], [*Connect], …). Events returned by [Reader.Next]
// are owned by the reader and valid until the next call; use [Clone] to keep
// one.
type Event interface {
	// Kind returns the event's kind.
	Kind() Kind
	// Time returns when the event happened, in monotonic nanoseconds
	// (CLOCK_MONOTONIC); [Header.Clock] maps it to wall-clock time.
	Time() uint64
}

// Source says which probe produced a [Data] event: a socket syscall or a TLS
// library's plaintext API.
type Source uint8

// Data sources. Syscall sources are below 32, TLS libraries from 32 up.
const (
	SourceUnknown  Source = 0
	SourceRead     Source = 1
	SourceWrite    Source = 2
	SourceReadv    Source = 3
	SourceWritev   Source = 4
	SourceSendto   Source = 5
	SourceRecvfrom Source = 6
	SourceSendmsg  Source = 7
	SourceRecvmsg  Source = 8
	SourceSendmmsg Source = 9
	SourceRecvmmsg Source = 10
	SourceSendfile Source = 11 // size only: sendfile's bytes come from a file

	SourceOpenSSL   Source = 32
	SourceBoringSSL Source = 33
	SourceGnuTLS    Source = 34
	SourceGoTLS     Source = 35
)

var sourceNames = map[Source]string{
	SourceUnknown:   "unknown",
	SourceRead:      "read",
	SourceWrite:     "write",
	SourceReadv:     "readv",
	SourceWritev:    "writev",
	SourceSendto:    "sendto",
	SourceRecvfrom:  "recvfrom",
	SourceSendmsg:   "sendmsg",
	SourceRecvmsg:   "recvmsg",
	SourceSendmmsg:  "sendmmsg",
	SourceRecvmmsg:  "recvmmsg",
	SourceSendfile:  "sendfile",
	SourceOpenSSL:   "openssl",
	SourceBoringSSL: "boringssl",
	SourceGnuTLS:    "gnutls",
	SourceGoTLS:     "go-tls",
}

// String returns the source's name: the syscall or the TLS library.
func (s Source) String() string {
	if n, ok := sourceNames[s]; ok {
		return n
	}
	return fmt.Sprintf("source(%d)", uint8(s))
}

// IsTLS reports whether the data is TLS plaintext taken from a library.
func (s Source) IsTLS() bool { return s >= 32 }

// Direction says whether the process received or sent the bytes.
type Direction uint8

// Directions, seen from the traced process.
const (
	Ingress Direction = 1 // received: read, recv, SSL_read
	Egress  Direction = 2 // sent: write, send, SSL_write
)

// String returns "in" or "out".
func (d Direction) String() string {
	switch d {
	case Ingress:
		return "in"
	case Egress:
		return "out"
	}
	return "?"
}

// Role says which end of a connection a process is.
type Role uint8

// Roles. RoleUnknown is common for connections that predate a recording.
const (
	RoleUnknown Role = 0
	RoleClient  Role = 1 // connected out
	RoleServer  Role = 2 // accepted
)

// String returns "client", "server" or "unknown".
func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleServer:
		return "server"
	}
	return "unknown"
}

// Process describes a process, from the start snapshot or from an exec seen
// during recording.
type Process struct {
	Timestamp uint64
	PID       uint32
	PPID      uint32
	UID       uint32
	Snapshot  bool   // from the start snapshot rather than an exec event
	Comm      string // the kernel's 15-byte task name
	Exe       string // resolved /proc/PID/exe
	Cmdline   string // arguments joined by single spaces
	Cgroup    string // cgroup v2 path
	// Fields appended to the record later; zero in older captures.

	// NetNS is the inode of the process's network namespace
	// (/proc/PID/ns/net), 0 when unknown: connections of processes in two
	// namespaces are two connections even when their addresses are equal.
	NetNS uint64
	// CgroupID is the inode of the process's cgroup v2 directory, what
	// bpf_get_current_cgroup_id returns; 0 when unknown.
	CgroupID uint64
	// CgroupV1 holds the cgroup v1 hierarchy lines of /proc/PID/cgroup
	// ("4:memory:/docker/ID"), newline-separated, on hosts that still
	// mount v1 hierarchies (alone or beside v2); "" elsewhere.
	CgroupV1 string
	// PodName and PodNamespace name the Kubernetes pod whose UID the
	// cgroup path holds, from the kubelet's /var/log/pods/NS_NAME_UID
	// directory on the node; "" when unknown.
	PodName, PodNamespace string
	// Hostname is the container's /etc/hostname (what a pod's containers
	// see as their hostname: the pod name), for processes in a container;
	// "" otherwise.
	Hostname string
	// ContainerName is the name the container runtime gave the process's
	// container (docker and podman: the --name; Kubernetes: the
	// container's name in its pod), read from the runtime's files on the
	// node; "" when unknown.
	ContainerName string
}

// Socket describes a TCP socket that was open when recording started, so that
// data on connections opened earlier still gets addresses.
type Socket struct {
	Timestamp uint64
	PID       uint32
	FD        int32
	Inode     uint64
	Role      Role
	State     uint8 // kernel TCP state (1 = established, 10 = listen, …)
	Local     netip.AddrPort
	Remote    netip.AddrPort
}

// Connect records a connect(2) that succeeded or is in progress.
type Connect struct {
	Start     uint64 // syscall entry, monotonic ns
	Timestamp uint64 // syscall exit, monotonic ns
	PID, TID  uint32
	FD        int32
	Gen       uint32 // connection generation for (PID, FD); see FORMAT.md
	Ret       int32  // 0 or a negative errno such as -EINPROGRESS (-115)
	Local     netip.AddrPort
	Remote    netip.AddrPort
}

// Accept records an accept(2) or accept4(2) that returned a socket.
type Accept struct {
	Start     uint64
	Timestamp uint64
	PID, TID  uint32
	ListenFD  int32
	FD        int32 // the accepted socket
	Gen       uint32
	Local     netip.AddrPort
	Remote    netip.AddrPort
}

// Close records the close of a socket fd.
type Close struct {
	Timestamp uint64
	PID, TID  uint32
	FD        int32
	Gen       uint32
}

// DataFlags qualify a [Data] event.
type DataFlags uint8

// Data flags.
const (
	// DataTruncated: Payload holds fewer bytes than this fragment of the call
	// moved (snaplen or a per-event limit); the rest is not in the file.
	DataTruncated DataFlags = 1 << 0
	// DataFDNested: the fd of TLS plaintext came from the read/write syscall
	// nested inside the library call on the same thread.
	DataFDNested DataFlags = 1 << 1
	// DataFDCached: the fd of TLS plaintext came from the last fd seen for the
	// same library connection object.
	DataFDCached DataFlags = 1 << 2
	// DataFDUnknown: the fd of TLS plaintext could not be determined.
	DataFDUnknown DataFlags = 1 << 3
	// DataFDObject: the fd of TLS plaintext was read from the library's
	// connection object (Go: *tls.Conn → net.Conn → netFD).
	DataFDObject DataFlags = 1 << 4
	// DataOtherProtocol: the connection's first bytes showed a protocol
	// rewind does not parse, so the recorder kept this call's length and
	// none of its bytes (record --keep-other keeps them).
	DataOtherProtocol DataFlags = 1 << 5
	// DataMerged (with DataOtherProtocol): the record holds the length of
	// several consecutive calls of one direction and source, from the
	// first's Start to the last's Timestamp (TID is the last's), not of
	// one call.
	DataMerged DataFlags = 1 << 6
)

// Data records bytes moved by one call. A call that moved more than fits in
// one event is split into fragments with increasing Offset; Len is always the
// whole call's length, so a reader knows how far the stream advanced even
// when Payload is cut.
type Data struct {
	Start     uint64 // call entry, monotonic ns
	Timestamp uint64 // call exit, monotonic ns
	PID, TID  uint32
	FD        int32
	Gen       uint32
	Source    Source
	Dir       Direction
	Flags     DataFlags
	Len       uint32 // bytes the whole call moved (its return value)
	Offset    uint32 // where Payload starts within the call's bytes
	TLSConn   uint64 // library connection object (SSL*, gnutls_session_t, *tls.Conn), 0 for syscalls
	Payload   []byte
}

// Truncated reports whether bytes of this fragment are missing from Payload.
func (d *Data) Truncated() bool { return d.Flags&DataTruncated != 0 }

// Packet is a packet seen on an interface, kept from the network header on.
type Packet struct {
	Timestamp uint64
	Ifindex   uint32
	Dir       Direction // Ingress: received by the host; Egress: sent
	OrigLen   uint32    // length on the wire, from the network header
	LinkType  uint16    // pcap LINKTYPE of Data (101 = raw IP)
	Data      []byte
}

// TCPEventType says what happened in a [TCP] event.
type TCPEventType uint8

// TCP event types.
const (
	TCPRetransmit  TCPEventType = 1
	TCPReset       TCPEventType = 2
	TCPStateChange TCPEventType = 3
	// TCPAck: Remote acknowledged Local's bytes up to stream offset Seq
	// (mod 2^32, counted from the first byte Local sent). Emitted by packet
	// input when an ACK advances over data, for network timing.
	TCPAck TCPEventType = 4
)

// TCP records a TCP-level event on a connection, identified by its addresses.
type TCP struct {
	Timestamp uint64
	Type      TCPEventType
	OldState  uint8
	NewState  uint8
	PID       uint32 // 0 when not known (softirq context)
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Seq       uint32
}

// LossSource says which kernel buffer lost events.
type LossSource uint8

// Loss sources.
const (
	LossRingbuf LossSource = 1 // the event ring buffer was full
	LossPacket  LossSource = 2 // packets were dropped (the ring buffer had no room for them)
	LossTooBig  LossSource = 3 // a payload did not fit in the per-CPU scratch space
	LossState   LossSource = 4 // no per-thread call state could be kept: calls not followed
)

// String names the loss source.
func (s LossSource) String() string {
	switch s {
	case LossRingbuf:
		return "ringbuf"
	case LossPacket:
		return "packet"
	case LossTooBig:
		return "too-big"
	case LossState:
		return "state"
	}
	return fmt.Sprintf("loss(%d)", uint8(s))
}

// Loss counts events lost since the previous Loss event of the same CPU and
// source. Losses are written into the capture as they are found, so even a
// salvaged file says what it is missing.
type Loss struct {
	Timestamp uint64
	CPU       uint32
	Source    LossSource
	Count     uint64
}

// Exit records a process (thread group) exit.
type Exit struct {
	Timestamp uint64
	PID       uint32
	Code      int32
}

// Kind implements [Event].
func (*Process) Kind() Kind { return KindProcess }

// Kind implements [Event].
func (*Socket) Kind() Kind { return KindSocket }

// Kind implements [Event].
func (*Connect) Kind() Kind { return KindConnect }

// Kind implements [Event].
func (*Accept) Kind() Kind { return KindAccept }

// Kind implements [Event].
func (*Close) Kind() Kind { return KindClose }

// Kind implements [Event].
func (*Data) Kind() Kind { return KindData }

// Kind implements [Event].
func (*Packet) Kind() Kind { return KindPacket }

// Kind implements [Event].
func (*TCP) Kind() Kind { return KindTCP }

// Kind implements [Event].
func (*Loss) Kind() Kind { return KindLoss }

// Kind implements [Event].
func (*Exit) Kind() Kind { return KindExit }

// Time implements [Event].
func (e *Process) Time() uint64 { return e.Timestamp }

// Time implements [Event].
func (e *Socket) Time() uint64 { return e.Timestamp }

// Time implements [Event].
func (e *Connect) Time() uint64 { return e.Timestamp }

// Time implements [Event].
func (e *Accept) Time() uint64 { return e.Timestamp }

// Time implements [Event].
func (e *Close) Time() uint64 { return e.Timestamp }

// Time implements [Event].
func (e *Data) Time() uint64 { return e.Timestamp }

// Time implements [Event].
func (e *Packet) Time() uint64 { return e.Timestamp }

// Time implements [Event].
func (e *TCP) Time() uint64 { return e.Timestamp }

// Time implements [Event].
func (e *Loss) Time() uint64 { return e.Timestamp }

// Time implements [Event].
func (e *Exit) Time() uint64 { return e.Timestamp }

// Clone returns a copy of ev that does not share memory with the reader that
// produced it.
func Clone(ev Event) Event {
	switch e := ev.(type) {
	case *Process:
		c := *e
		return &c
	case *Socket:
		c := *e
		return &c
	case *Connect:
		c := *e
		return &c
	case *Accept:
		c := *e
		return &c
	case *Close:
		c := *e
		return &c
	case *Data:
		c := *e
		c.Payload = append([]byte(nil), e.Payload...)
		return &c
	case *Packet:
		c := *e
		c.Data = append([]byte(nil), e.Data...)
		return &c
	case *TCP:
		c := *e
		return &c
	case *Loss:
		c := *e
		return &c
	case *Exit:
		c := *e
		return &c
	}
	panic(fmt.Sprintf("capture.Clone: unknown event type %T", ev))
}
