package pcapng

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
)

// Stream ends: the client initiated the connection.
const (
	client = 0
	server = 1
)

type tcpFlags uint8

const (
	flagFIN tcpFlags = 1 << iota
	flagSYN
	flagPSH
	flagACK
)

// tuple is a stream's 4-tuple, client first.
type tuple struct {
	client, server netip.AddrPort
}

// stream is the synthetic TCP stream of one connection.
type stream struct {
	c       *analyze.Conn
	n       int    // connection number in open order, for placeholders
	open    uint64 // ConnOpen time
	last    uint64 // latest packet time: packets never go back in time
	started bool   // handshake written

	tuple    tuple
	procSide int // the end the traced process is
	v6       bool
	mss      int
	ips      [2]net.IP
	ipID     [2]uint16
	nxt      [2]uint32 // next sequence number each end sends
	missing  [2]int64  // bytes skipped since the end's last packet
	// frameNote is said on the end's next data segment: what the
	// transcoder changed in the frame it starts with.
	frameNote [2]string
	note      string // said once, on the SYN: how the tuple was chosen

	tc      Transcoder
	tcAsked bool

	// comment cache: the base comment depends on fields that may still
	// change (comm, TLS library) and on the thread.
	cmtTLS, cmtComm string
	cmtTID          uint32
	cmt             string
}

// side returns the end that sends bytes of direction dir.
func (s *stream) side(dir capture.Direction) int {
	if dir == capture.Egress {
		return s.procSide
	}
	return 1 - s.procSide
}

// tlsPorts are the TCP ports Wireshark (4.x) hands to its TLS dissector by
// default, with the port of the same protocol without TLS. A synthetic
// stream never carries TLS records, so a server port among these is
// rewritten, or Wireshark would try to read the plaintext as TLS.
var tlsPorts = map[uint16]uint16{
	443: 80, 465: 25, 563: 119, 636: 389, 853: 53, 993: 143, 995: 110,
	5061: 5060, 5671: 5672, 8883: 1883,
	// Claimed for TLS with no well-known plaintext twin: shown as HTTP,
	// which is what rewind parses.
	324: 80, 802: 80, 1300: 80, 2221: 80, 2443: 80, 3249: 80, 3250: 80, 3251: 80,
	3252: 80, 3496: 80, 5684: 80, 5868: 80, 11207: 80, 19999: 80, 27017: 80,
}

// httpPorts are the TCP ports Wireshark (4.x) hands to its HTTP dissector,
// which recognises HTTP/2 by its preface or an h2c upgrade. No heuristic
// finds HTTP/2 with prior knowledge on other ports, so a connection known to
// carry HTTP/2 when its stream starts gets server port 80 instead.
var httpPorts = map[uint16]bool{80: true, 1900: true, 2710: true, 2869: true, 3128: true, 3132: true, 5985: true, 8080: true, 8088: true, 11371: true}

// unknownAddrs says why a stream's addresses are placeholders: a TLS
// session whose plaintext no socket call could be tied to (a library that
// works between memory BIOs, such as Node.js's OpenSSL), or a socket opened
// before the recording that no snapshot described.
func unknownAddrs(c *analyze.Conn) string {
	if c.FD < 0 && c.TLS != "" && c.TLS != "none" {
		return "addresses unknown (" + c.TLS + " session not tied to a socket): placeholders"
	}
	return "addresses unknown (connection opened before the recording, no snapshot): placeholders"
}

// start chooses the stream's addresses and writes its handshake.
func (w *Writer) start(s *stream, procIsClient bool) error {
	s.started = true
	c := s.c
	local, remote := unmap(c.Local), unmap(c.Remote)
	cl, sv := remote, local
	s.procSide = server
	if procIsClient {
		cl, sv = local, remote
		s.procSide = client
	}
	var notes []string
	if !cl.IsValid() || !sv.IsValid() {
		notes = append(notes, unknownAddrs(c))
	}
	v6 := cl.Addr().Is6() || sv.Addr().Is6()
	if w.realPackets && cl.IsValid() && sv.IsValid() {
		// The captured packets of this connection are in the file too:
		// with the same 4-tuple Wireshark would take both for one TCP
		// conversation (duplicate segments, broken reassembly).
		notes = append(notes, "placeholder addresses: the captured packets of "+cl.String()+" → "+sv.String()+" are on their own interface")
		cl = netip.AddrPortFrom(placeholder(v6, client, s.n), cl.Port())
		sv = netip.AddrPortFrom(placeholder(v6, server, s.n), sv.Port())
	}
	if !cl.IsValid() {
		cl = netip.AddrPortFrom(placeholder(v6, client, s.n), uint16(49152+s.n%16384))
	}
	if !sv.IsValid() {
		sv = netip.AddrPortFrom(placeholder(v6, server, s.n), 80)
	}
	if v6 {
		// One family per stream: an IPv4 end of a dual-stack pair is
		// written as its IPv4-mapped IPv6 address.
		cl = netip.AddrPortFrom(netip.AddrFrom16(cl.Addr().As16()), cl.Port())
		sv = netip.AddrPortFrom(netip.AddrFrom16(sv.Addr().As16()), sv.Port())
	}
	if p, ok := tlsPorts[sv.Port()]; ok {
		notes = append(notes, fmt.Sprintf("server port %d written as %d so that Wireshark decodes the plaintext instead of expecting TLS", sv.Port(), p))
		sv = netip.AddrPortFrom(sv.Addr(), p)
	}
	if c.Proto != "" && !httpPorts[sv.Port()] {
		// Off its port table Wireshark finds HTTP by heuristics only,
		// and a client port that happens to be another protocol's
		// registered port (44322, PMPROXY) takes the stream instead.
		notes = append(notes, fmt.Sprintf("server port %d written as 80 so that Wireshark decodes the %s", sv.Port(), c.Proto))
		sv = netip.AddrPortFrom(sv.Addr(), 80)
	}
	t := tuple{cl, sv}
	if other, ok := w.tuples[t]; ok {
		// Both ends of one connection were traced: each view is a stream
		// of its own, told apart by the client port.
		real := cl.Port()
		for p := 49152 + (s.n*7919)%16384; ; p = 49152 + (p-49152+1)%16384 {
			t.client = netip.AddrPortFrom(cl.Addr(), uint16(p))
			if _, used := w.tuples[t]; !used {
				break
			}
		}
		notes = append(notes, fmt.Sprintf("client port %d written as %d: %s is the other end's view of the same connection",
			real, t.client.Port(), other.c.ID))
	}
	s.tuple = t
	w.tuples[t] = s
	s.v6 = v6
	s.mss = MSS4
	if v6 {
		s.mss = MSS6
	}
	if w.opts.MSS > 0 {
		s.mss = w.opts.MSS
	}
	s.ips = [2]net.IP{ip(t.client.Addr()), ip(t.server.Addr())}
	s.nxt = [2]uint32{isn(c.ID, client), isn(c.ID, server)}
	s.note = strings.Join(notes, "; ")

	ts := s.open
	if err := w.segment(s, client, flagSYN, ts, 0, nil); err != nil {
		return err
	}
	s.nxt[client]++
	if err := w.segment(s, server, flagSYN|flagACK, ts, 0, nil); err != nil {
		return err
	}
	s.nxt[server]++
	return w.segment(s, client, flagACK, ts, 0, nil)
}

// unmap turns an IPv4-mapped IPv6 address into IPv4.
func unmap(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return a
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// placeholder returns an address for an unknown end: 127.1.x.y (client) or
// 127.2.x.y (server), fd00::1:0:n or fd00::2:0:n for IPv6, from the
// connection number.
func placeholder(v6 bool, side, n int) netip.Addr {
	if v6 {
		var b [16]byte
		b[0] = 0xfd
		b[11] = byte(side + 1)
		b[12], b[13], b[14], b[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{127, byte(side + 1), byte(n >> 8), byte(n)})
}

// segment writes one TCP segment from end `from` of s at monotonic time ts.
func (w *Writer) segment(s *stream, from int, flags tcpFlags, ts uint64, tid uint32, payload []byte) error {
	if ts < s.last {
		ts = s.last
	}
	s.last = ts
	to := 1 - from
	w.tcp = layers.TCP{
		Seq:    s.nxt[from],
		Window: 0xffff,
		FIN:    flags&flagFIN != 0,
		SYN:    flags&flagSYN != 0,
		PSH:    flags&flagPSH != 0,
		ACK:    flags&flagACK != 0,
	}
	if from == client {
		w.tcp.SrcPort, w.tcp.DstPort = layers.TCPPort(s.tuple.client.Port()), layers.TCPPort(s.tuple.server.Port())
	} else {
		w.tcp.SrcPort, w.tcp.DstPort = layers.TCPPort(s.tuple.server.Port()), layers.TCPPort(s.tuple.client.Port())
	}
	if w.tcp.ACK {
		w.tcp.Ack = s.nxt[to]
	}
	if w.tcp.SYN {
		w.tcp.Options = synOptions(s.mss)
	}
	var ipLayer gopacket.SerializableLayer
	if s.v6 {
		w.ip6 = layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64, SrcIP: s.ips[from], DstIP: s.ips[to]}
		w.tcp.SetNetworkLayerForChecksum(&w.ip6)
		ipLayer = &w.ip6
	} else {
		w.ip4 = layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
			Id: s.ipID[from], SrcIP: s.ips[from], DstIP: s.ips[to]}
		s.ipID[from]++
		w.tcp.SetNetworkLayerForChecksum(&w.ip4)
		ipLayer = &w.ip4
	}
	w.payload = payload
	if err := gopacket.SerializeLayers(w.buf, w.sopts, ipLayer, &w.tcp, &w.payload); err != nil {
		return w.fail(fmt.Errorf("building segment of %s: %w", s.c.ID, err))
	}
	data := w.buf.Bytes()
	if len(payload) > 0 {
		s.nxt[from] += uint32(len(payload))
	}

	w.comment[0] = w.commentFor(s, from, flags, tid)
	opts := pcapgo.NgPacketOptions{Comments: w.comment[:], Flags: &flagsIn}
	if from == s.procSide {
		opts.Flags = &flagsOut
	}
	ci := gopacket.CaptureInfo{Timestamp: w.wall(ts), CaptureLength: len(data), Length: len(data), InterfaceIndex: streamIface}
	if err := w.ng.WritePacketWithOptions(ci, data, opts); err != nil {
		return w.fail(fmt.Errorf("writing segment of %s: %w", s.c.ID, err))
	}
	return nil
}

// synOptions announces the MSS and the window scale.
func synOptions(mss int) []layers.TCPOption {
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(mss >> 8), byte(mss)}},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{windowScale}},
	}
}

// commentFor is a packet's comment: the connection and the process (with
// the thread of data segments), plus what the packet means beyond TCP.
func (w *Writer) commentFor(s *stream, from int, flags tcpFlags, tid uint32) string {
	c := s.c
	if s.cmt == "" || s.cmtTLS != c.TLS || s.cmtComm != c.Comm || s.cmtTID != tid {
		var b strings.Builder
		b.WriteString(c.ID)
		if c.Comm != "" {
			b.WriteString(" comm=")
			b.WriteString(c.Comm)
		}
		if c.PID != 0 {
			b.WriteString(" pid=")
			b.WriteString(strconv.FormatUint(uint64(c.PID), 10))
		}
		if tid != 0 {
			b.WriteString(" tid=")
			b.WriteString(strconv.FormatUint(uint64(tid), 10))
		}
		if c.PID != 0 {
			b.WriteString(" fd=")
			b.WriteString(strconv.FormatInt(int64(c.FD), 10))
		}
		if c.TLS != "" && c.TLS != "none" {
			b.WriteString(" tls=")
			b.WriteString(c.TLS)
		}
		if ct := c.Container; ct.Known() {
			b.WriteString(" container=")
			b.WriteString(ct.Runtime)
			b.WriteByte(':')
			b.WriteString(ct.Short())
			if ct.Name != "" {
				b.WriteString(" container_name=")
				b.WriteString(ct.Name)
			}
			if ct.PodUID != "" {
				b.WriteString(" pod=")
				b.WriteString(ct.PodUID)
			}
			if ct.Pod != "" {
				// As kubectl names it: NAMESPACE/NAME.
				b.WriteString(" pod_name=")
				b.WriteString(ct.PodLabel())
			}
			if ct.Hostname != "" {
				b.WriteString(" hostname=")
				b.WriteString(ct.Hostname)
			}
		}
		if c.NetNS != 0 {
			b.WriteString(" netns=")
			b.WriteString(strconv.FormatUint(c.NetNS, 10))
		}
		s.cmt, s.cmtTLS, s.cmtComm, s.cmtTID = b.String(), c.TLS, c.Comm, tid
	}
	extra := ""
	if flags&flagSYN != 0 && from == client {
		extra = "; " + roleNote(s)
		if s.note != "" {
			extra += "; " + s.note
		}
	}
	if n := s.missing[from]; n > 0 && flags&flagSYN == 0 {
		extra += fmt.Sprintf("; %d bytes missing before this packet (not in the capture)", n)
		s.missing[from] = 0
	}
	if s.frameNote[from] != "" {
		extra += "; " + s.frameNote[from]
		s.frameNote[from] = ""
	}
	if extra == "" {
		return s.cmt
	}
	return s.cmt + extra
}

// roleNote says which end the traced process is and where the real
// addresses were.
func roleNote(s *stream) string {
	c := s.c
	side := "client"
	if s.procSide == server {
		side = "server"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the traced process is the %s", side)
	if c.Role == capture.RoleUnknown {
		b.WriteString(" (guessed: it joined mid-connection)")
	}
	if c.Local.IsValid() {
		fmt.Fprintf(&b, "; real local %s", c.Local)
	}
	if c.Remote.IsValid() {
		fmt.Fprintf(&b, "; real remote %s", c.Remote)
	}
	return b.String()
}
