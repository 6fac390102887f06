package analyze

import (
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/container"
)

// connKey identifies a connection in a recorded capture. TLS plaintext
// whose socket the recorder could not find (fd -1: libraries that use
// memory BIOs, such as Node.js) is keyed by its library connection object
// instead, so that each TLS session stays a connection of its own.
type connKey struct {
	pid uint32
	fd  int32
	gen uint32
	tls uint64 // SSL *, gnutls_session_t…; set only when fd is -1
}

func (a connKey) less(b connKey) bool {
	if a.pid != b.pid {
		return a.pid < b.pid
	}
	if a.fd != b.fd {
		return a.fd < b.fd
	}
	if a.gen != b.gen {
		return a.gen < b.gen
	}
	return a.tls < b.tls
}

// pidFD identifies a socket slot of a process, whatever its generation.
type pidFD struct {
	pid uint32
	fd  int32
}

type procInfo struct {
	comm, exe string
	ctr       container.Info // from the process's cgroup
	netns     uint64         // network namespace inode, 0 when unknown
}

// tracker owns the connections of a replay and routes events to them.
type tracker struct {
	opts  Options
	sinks []Sink
	err   error
	// streams and packets are the sinks that also take byte streams or
	// packets (stream.go); nil when none does.
	streams []StreamSink
	packets []PacketSink
	// delivery takes finished exchanges to the sinks (delivery.go); nil
	// once closed.
	delivery exchangeDelivery

	// byAddr finds connections by (local, remote) for TCP events;
	// expectAcks says the input has packets, so server-side exchanges wait
	// for the ACK of their response (network.go).
	byAddr     map[addrPair]*connState
	addrCache  [addrSlots]addrSlot // in front of byAddr (network.go)
	connCache  [connSlots]connSlot // in front of conns, for data events
	expectAcks bool
	// flows follows the sequence spaces of captured packets (packets.go);
	// rawPackets says the input has them (a recording: network timings
	// start at a packet found there, not at the last write).
	flows      map[addrPair]*flow
	rawPackets bool
	// noNetwork counts server exchanges left without a network timing, by
	// reason (network.go).
	noNetwork [noNetReasons]int

	// hostNS is the network namespace the recorder captured packets in
	// (0 when the capture does not say): packets and TCP events belong
	// to connections of that namespace.
	hostNS uint64

	procs   map[uint32]procInfo
	sockets map[pidFD]capture.Socket // from the snapshot or the recorder
	conns   map[connKey]*connState
	open    map[pidFD]connKey // the live generation of each slot
	// ties pairs TLS sessions whose socket the recorder could not name
	// with their socket (tlstie.go).
	ties tlsTie
	// sessionExchanges counts the exchanges of TLS sessions that could not
	// be tied to a socket: they have no addresses.
	sessionExchanges int

	// slab carves HTTP/1 exchanges and field lists from shared chunks
	// (h1conn.go), and proto is what the protocol connections parse with;
	// they reach both through their exchangeOut.
	slab  slab
	proto protoOpts

	nextID     int
	exchanges  int
	connsSeen  int
	httpConns  int
	otherConns int
	byFlag     map[string]int
	first      uint64
	last       uint64
}

func newTracker(opts Options, sinks []Sink) *tracker {
	t := &tracker{
		opts:    opts,
		sinks:   sinks,
		procs:   map[uint32]procInfo{},
		sockets: map[pidFD]capture.Socket{},
		conns:   map[connKey]*connState{},
		open:    map[pidFD]connKey{},
		byFlag:  map[string]int{},
	}
	t.proto = newProtoOpts(&t.opts)
	t.streams, t.packets = streamSinks(sinks)
	return t
}

// handle applies one event, in replay order.
func (t *tracker) handle(ev capture.Event) {
	if ts := ev.Time(); ts != 0 {
		if t.first == 0 || ts < t.first {
			t.first = ts
		}
		if ts > t.last {
			t.last = ts
		}
	}
	if len(t.ties.held) != 0 {
		t.releaseOld(ev.Time())
	}
	switch e := ev.(type) {
	case *capture.Process:
		ctr := container.ParseProcess(e.Cgroup, e.CgroupV1)
		if ctr.Known() {
			ctr.Hostname, ctr.Name = e.Hostname, e.ContainerName
			if ctr.PodUID != "" {
				ctr.Pod, ctr.Namespace = e.PodName, e.PodNamespace
			}
		}
		t.procs[e.PID] = procInfo{comm: e.Comm, exe: e.Exe, ctr: ctr, netns: e.NetNS}
	case *capture.Socket:
		t.sockets[pidFD{e.PID, e.FD}] = *e
		if k, ok := t.open[pidFD{e.PID, e.FD}]; ok {
			cs := t.conns[k]
			if !cs.c.Local.IsValid() {
				cs.c.Local, cs.c.Remote = e.Local, e.Remote
				t.index(cs)
			}
			if cs.c.Role == capture.RoleUnknown {
				cs.c.Role = e.Role
			}
		}
	case *capture.Connect:
		cs := t.begin(connKey{pid: e.PID, fd: e.FD, gen: e.Gen}, e.Timestamp)
		cs.c.Role = capture.RoleClient
		cs.c.Local, cs.c.Remote = e.Local, e.Remote
		cs.announced = true
		t.index(cs)
		t.streamOpen(cs)
	case *capture.Accept:
		cs := t.begin(connKey{pid: e.PID, fd: e.FD, gen: e.Gen}, e.Timestamp)
		cs.c.Role = capture.RoleServer
		cs.c.Local, cs.c.Remote = e.Local, e.Remote
		cs.announced = true
		t.index(cs)
		t.streamOpen(cs)
	case *capture.Close:
		k := connKey{pid: e.PID, fd: e.FD, gen: e.Gen}
		if cs, ok := t.conns[k]; ok {
			t.end(k, cs, e.Timestamp)
		}
	case *capture.Data:
		if untiedTLS(e) && !t.tlsData(e) {
			return // held until the socket write that follows (tlstie.go)
		}
		t.route(e)
	case *capture.TCP:
		t.tcp(e)
	case *capture.Packet:
		t.packetTCP(e)
		if t.packets != nil {
			t.packet(e)
		}
	}
}

// route gives a data event to its connection. TLS plaintext whose socket
// is unknown goes to the socket's connection once its session is tied
// (tlstie.go), else to a connection of its own session.
func (t *tracker) route(e *capture.Data) {
	k := connKey{pid: e.PID, fd: e.FD, gen: e.Gen}
	if untiedTLS(e) {
		if fk, ok := t.ties.tied[sessKey{e.PID, e.TLSConn}]; ok {
			k = fk
		} else {
			k.tls = e.TLSConn
		}
	}
	cs, ok := t.conn(k)
	if !ok {
		cs = t.begin(k, e.Timestamp)
		if s, ok := t.sockets[pidFD{e.PID, e.FD}]; ok && k.tls == 0 {
			cs.c.Local, cs.c.Remote, cs.c.Role = s.Local, s.Remote, s.Role
			t.index(cs)
		}
	}
	if k.tls == 0 && !e.Source.IsTLS() && cs.layers[layerTLS] == nil {
		t.sockData(e, k)
	}
	cs.data(e)
}

// connSlot caches one entry of tracker.conns: a data event's lookup
// hashes no key when its connection's slot holds it. A slot holds a
// present entry or none (cs nil); end clears the slot of the key it
// deletes, so the cache never disagrees with the map.
type connSlot struct {
	k  connKey
	cs *connState
}

// connSlots is the size of that cache (a power of two).
const connSlots = 256

func (k connKey) slot() int {
	h := (k.pid*0x9e3779b1 + uint32(k.fd) + uint32(k.tls) + uint32(k.tls>>32)) * 0x85ebca6b
	return int((h^k.gen)>>24) & (connSlots - 1)
}

// conn returns the connection tracked under k.
func (t *tracker) conn(k connKey) (*connState, bool) {
	s := &t.connCache[k.slot()]
	if s.cs != nil && s.k == k {
		return s.cs, true
	}
	cs, ok := t.conns[k]
	if ok {
		*s = connSlot{k, cs}
	}
	return cs, ok
}

// begin starts tracking a connection, ending any older generation of the
// same fd whose close was not seen.
func (t *tracker) begin(k connKey, ts uint64) *connState {
	slot := pidFD{k.pid, k.fd}
	if old, ok := t.open[slot]; ok && old != k && k.tls == 0 {
		t.end(old, t.conns[old], ts)
	}
	if cs, ok := t.conns[k]; ok {
		return cs
	}
	t.nextID++
	t.connsSeen++
	p := t.procs[k.pid]
	cs := &connState{t: t, c: &Conn{
		ID: connID(t.nextID), PID: k.pid, Comm: p.comm, Exe: p.exe, Container: p.ctr, NetNS: t.netnsOf(p), FD: k.fd, Gen: k.gen,
		TLS: "none", Start: ts, End: ts,
	}}
	t.conns[k] = cs
	if k.tls == 0 {
		t.open[slot] = k
	} else { // a TLS session without a socket has no fd slot
		cs.session = true
	}
	return cs
}

// netnsOf returns the network namespace of a process: the one its record
// names, else the recorder's (processes that predate the namespace field,
// or that were never described, are taken to share the host's).
func (t *tracker) netnsOf(p procInfo) uint64 {
	if p.netns != 0 {
		return p.netns
	}
	return t.hostNS
}

// end finishes a connection: its parsers see the end of their streams.
func (t *tracker) end(k connKey, cs *connState, ts uint64) {
	if ts > cs.c.End {
		cs.c.End = ts
	}
	cs.close(ts)
	cs.flushAwaiting()
	t.unindex(cs)
	t.untie(cs)
	t.streamClose(cs, ts)
	delete(t.conns, k)
	if s := &t.connCache[k.slot()]; s.k == k {
		*s = connSlot{}
	}
	if t.open[pidFD{k.pid, k.fd}] == k {
		delete(t.open, pidFD{k.pid, k.fd})
	}
	switch {
	case cs.isHTTP():
		t.httpConns++
	case cs.c.BytesIn+cs.c.BytesOut > 0:
		t.otherConns++
	}
}

// finish ends every connection still open, in a fixed order.
func (t *tracker) finish() {
	t.releaseOld(0)
	for _, k := range sortedKeys(t.conns) {
		t.end(k, t.conns[k], t.last)
	}
}

// emit hands a finished exchange of cs to the sinks.
func (t *tracker) emit(cs *connState, ex *Exchange) {
	if t.err != nil {
		return
	}
	// A pcap has no processes: no lookup, which copies out the (large)
	// value even when it finds nothing.
	if ex.Conn.Comm == "" && len(t.procs) > 0 {
		if p, ok := t.procs[ex.Conn.PID]; ok {
			ex.Conn.Comm, ex.Conn.Exe, ex.Conn.Container = p.comm, p.exe, p.ctr
		}
	}
	if t.opts.Filter != nil {
		t.slab.materialize(ex)
		if !t.opts.Filter(ex) {
			return
		}
	}
	t.exchanges++
	ex.Seq = t.exchanges
	if cs.session {
		t.sessionExchanges++
	}
	for _, n := range flagNames {
		if ex.Flags&n.f != 0 {
			t.byFlag[n.name]++
		}
	}
	ex.Conn = cs.snapshot()
	if !t.delivery.exchange(ex) {
		t.err = t.closeDelivery()
	}
}

// snapshot returns a copy of the connection for an exchange: the replay
// goes on updating the live one, and sinks may run on another goroutine
// (async.go). Consecutive exchanges share a copy while the connection's
// description (everything but its counters) is unchanged.
func (cs *connState) snapshot() *Conn {
	c := cs.c
	if s := cs.snap; s != nil && s.ID == c.ID && s.PID == c.PID && s.Comm == c.Comm && s.Exe == c.Exe &&
		s.NetNS == c.NetNS && s.FD == c.FD && s.Gen == c.Gen && s.Role == c.Role && s.TLS == c.TLS && s.Local == c.Local &&
		s.Remote == c.Remote && s.Proto == c.Proto {
		return s
	}
	s := new(Conn)
	*s = *c
	cs.snap = s
	return s
}

// flushOutputs gets every exchange emitted so far written out (see
// [ErrWaiting]).
func (t *tracker) flushOutputs() error {
	if t.delivery == nil {
		return t.err // closed by a sink's error
	}
	return t.delivery.flush()
}

// closeDelivery waits until every exchange emitted has been delivered, and
// returns the first sink error.
func (t *tracker) closeDelivery() error {
	if t.delivery == nil {
		return nil
	}
	err := t.delivery.close()
	t.delivery = nil
	return err
}

// layerIdx selects a connection's plaintext layer: what the syscalls moved,
// or what a TLS library decrypted.
const (
	layerSyscall = 0
	layerTLS     = 1
)

// connState is a connection during replay.
type connState struct {
	t         *tracker
	c         *Conn
	announced bool // seen connect or accept, so the stream starts at byte 0
	session   bool // a TLS session's own connection, its socket unknown
	// egressOff counts the bytes the process sent (syscall layer), for
	// matching ACKs; awaiting holds finished exchanges until their ACK.
	egressOff uint64
	awaiting  []awaitingAck
	// egressGap says the latest egress bytes are a gap of pcap input (not
	// captured): the time their event carries is not when they were sent.
	egressGap bool
	// streamOpened says stream sinks were told about the connection.
	streamOpened bool
	layers       [2]*layer
	// snap is the copy of c given to the latest exchanges (snapshot).
	snap *Conn
	// sess is the TLS session tied to this socket (tlstie.go), if any.
	sess sessKey
}

func dirIdx(d capture.Direction) int {
	if d == capture.Egress {
		return 1
	}
	return 0
}

func (cs *connState) data(e *capture.Data) {
	if e.Timestamp > cs.c.End {
		cs.c.End = e.Timestamp
	}
	if e.Offset == 0 && e.Dir == capture.Egress && !e.Source.IsTLS() {
		cs.egressOff += uint64(e.Len)
		cs.egressGap = len(e.Payload) == 0 && e.Len > 0 && e.Flags&capture.DataTruncated != 0
	}
	li := layerSyscall
	if e.Source.IsTLS() {
		li = layerTLS
		if cs.c.TLS == "none" {
			cs.c.TLS = e.Source.String()
		}
	}
	if e.Offset == 0 {
		if e.Dir == capture.Ingress {
			if li == layerTLS || cs.layers[layerTLS] == nil {
				cs.c.BytesIn += int64(e.Len)
			}
		} else if li == layerTLS || cs.layers[layerTLS] == nil {
			cs.c.BytesOut += int64(e.Len)
		}
	}
	l := cs.layers[li]
	if l == nil {
		l = &layer{cs: cs, tls: li == layerTLS}
		cs.layers[li] = l
		if li == layerTLS && cs.layers[layerSyscall] != nil {
			// The syscall layer carried ciphertext all along.
			cs.layers[layerSyscall].setKind(kindTLSCipher)
		}
	}
	if li == layerSyscall && cs.layers[layerTLS] != nil {
		return // ciphertext of a connection whose plaintext we have
	}
	l.data(e)
}

func (cs *connState) close(ts uint64) {
	for _, l := range cs.layers {
		if l != nil {
			l.close(ts)
		}
	}
}

func (cs *connState) isHTTP() bool {
	for _, l := range cs.layers {
		if l != nil && (l.kind == kindHTTP1 || l.kind == kindHTTP2) {
			return true
		}
	}
	return false
}
