package pcapng

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/capturetest"
	"github.com/rewind-tools/rewind/capture/container"
)

// fixedCaptures are the captures recorded from real programs.
var fixedCaptures = []string{"curl-nginx", "pipelining-nginx", "sample"}

// bigBody is a response body that spans many segments.
var bigBody = strings.Repeat("0123456789abcdef", 6400) // 100 KiB

// rawPacket is a captured packet for the packet interface: IPv4/UDP.
func rawPacket(t testing.TB) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: netip.MustParseAddr("10.9.9.1").AsSlice(), DstIP: netip.MustParseAddr("10.9.9.2").AsSlice()}
	udp := &layers.UDP{SrcPort: 40001, DstPort: 40002}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, udp, gopacket.Payload("hello")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mixedCapture builds the connections the writer must handle.
func mixedCapture(t testing.TB) []byte {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	cli := b.Process(200, "curl")
	tlsSrv := b.Process(300, "haproxy")
	old := b.Process(400, "java")

	// Server side, keep-alive with three exchanges, one with a big body.
	c := srv.Accept(0, "10.0.0.1:8080", "10.0.0.2:40000")
	c.Read("GET /a HTTP/1.1\r\nHost: example\r\n\r\n")
	c.Write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	c.Read("POST /b HTTP/1.1\r\nHost: example\r\nContent-Length: 3\r\n\r\nabc")
	c.Write("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
	c.Read("GET /big HTTP/1.1\r\nHost: example\r\n\r\n")
	c.Write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(bigBody), bigBody))
	c.Close()

	// Client side, IPv6, a body truncated by snaplen: a gap.
	d := cli.Connect(0, "[fd12::2]:50000", "[fd12::1]:8080")
	d.Write("GET /trunc HTTP/1.1\r\nHost: v6\r\n\r\n")
	head := "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
	d.ReadTruncated(head+strings.Repeat("x", 1000), len(head)+5000)
	d.Write("GET /after HTTP/1.1\r\nHost: v6\r\n\r\n")
	d.Read("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!")
	d.Close()

	// TLS server on 443: ciphertext syscall bytes first, then plaintext.
	e := tlsSrv.Accept(0, "10.0.0.1:443", "10.0.0.3:41000")
	e.Read("\x16\x03\x01\x00\x05hello")
	e.Write("\x16\x03\x03\x00\x05world")
	e.TLS(capture.SourceOpenSSL)
	e.Read("GET /secret HTTP/1.1\r\nHost: tls.example\r\n\r\n")
	e.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	e.Close()

	// A connection from before the recording, with no addresses.
	f := old.Existing(0, "", "", capture.RoleUnknown)
	f.Read("GET /old HTTP/1.1\r\nHost: old\r\n\r\n")
	f.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
	f.Close()

	b.Event(&capture.Packet{Timestamp: b.Now(), Ifindex: 2, Dir: capture.Egress, LinkType: 101,
		OrigLen: uint32(len(rawPacket(t))), Data: rawPacket(t)})
	return b.Bytes(t)
}

// checksum16 is the Internet checksum (RFC 1071) of b with an initial sum.
func checksum16(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// verifyChecksums checks the IP and TCP checksums of a raw IP packet by
// hand: a correct checksum makes the sum over the covered bytes zero.
func verifyChecksums(t *testing.T, i int, data []byte) {
	t.Helper()
	var pseudo uint32
	var seg []byte
	switch data[0] >> 4 {
	case 4:
		ihl := int(data[0]&15) * 4
		if c := checksum16(0, data[:ihl]); c != 0 {
			t.Errorf("packet %d: bad IPv4 header checksum", i)
		}
		seg = data[ihl:binary.BigEndian.Uint16(data[2:4])]
		for _, w := range [][]byte{data[12:14], data[14:16], data[16:18], data[18:20]} {
			pseudo += uint32(binary.BigEndian.Uint16(w))
		}
		pseudo += 6 + uint32(len(seg))
	case 6:
		seg = data[40 : 40+int(binary.BigEndian.Uint16(data[4:6]))]
		for j := 8; j < 40; j += 2 {
			pseudo += uint32(binary.BigEndian.Uint16(data[j:]))
		}
		pseudo += 6 + uint32(len(seg))
	default:
		t.Fatalf("packet %d: not IP", i)
	}
	if c := checksum16(pseudo, seg); c != 0 {
		t.Errorf("packet %d: bad TCP checksum", i)
	}
}

var missingRE = regexp.MustCompile(`; (\d+) bytes missing before this packet`)

// side is what the test tracks of one direction of a synthetic stream.
type side struct {
	conn string
	dir  capture.Direction
	nxt  uint32
	fin  bool
	data bytes.Buffer
	// pos holds every sequence number at a packet's start or end: an ACK
	// from the other end must name one (after a gap, the next packet's).
	pos map[uint32]bool
}

type ackCheck struct {
	frame int
	ack   uint32
	of    *side
}

func TestStreams(t *testing.T) {
	file, rec := run(t, mixedCapture(t), Options{Version: "test"})
	again, _ := run(t, mixedCapture(t), Options{Version: "test"})
	if !bytes.Equal(file, again) {
		t.Error("two runs over the same capture differ")
	}
	pkts, r := readBack(t, file)
	if got := r.SectionInfo().Application; got != "rewind test" {
		t.Errorf("section application = %q", got)
	}
	if n := r.NInterfaces(); n != 2 {
		t.Fatalf("interfaces = %d, want 2 (streams, captured packets)", n)
	}
	if ifc, _ := r.Interface(0); ifc.LinkType != layers.LinkTypeRaw || ifc.TimestampResolution != 9 {
		t.Errorf("stream interface: link type %v, tsresol %v", ifc.LinkType, ifc.TimestampResolution)
	}

	flows := map[flowKey]*side{}
	var captured int
	var acks []ackCheck
	for i, p := range pkts {
		i++ // frame numbers as Wireshark shows them
		if p.iface != streamIface {
			captured++
			if !bytes.Equal(p.data, rawPacket(t)) || p.dir != pcapgo.NgEpbFlagDirectionOutbound {
				t.Errorf("captured packet %d not written as is", i)
			}
			continue
		}
		verifyChecksums(t, i, p.data)
		if p.comment == "" || p.dir == pcapgo.NgEpbFlagDirectionUnknown {
			t.Fatalf("packet %d: no comment or direction", i)
		}
		id := strings.Fields(p.comment)[0]
		if !strings.Contains(p.comment, "pid=") || !strings.Contains(p.comment, "fd=") {
			t.Errorf("packet %d: comment %q lacks pid or fd", i, p.comment)
		}
		k := endpoints(p)
		s := flows[k]
		if s == nil {
			if !p.tcp.SYN {
				t.Fatalf("packet %d: stream %v starts without SYN", i, k)
			}
			dir := capture.Ingress
			if p.dir == pcapgo.NgEpbFlagDirectionOutbound {
				dir = capture.Egress
			}
			s = &side{conn: id, dir: dir, nxt: p.tcp.Seq + 1, pos: map[uint32]bool{p.tcp.Seq + 1: true}}
			flows[k] = s
		} else {
			want := s.nxt
			if m := missingRE.FindStringSubmatch(p.comment); m != nil {
				n, _ := strconv.Atoi(m[1])
				want += uint32(n)
			}
			if p.tcp.Seq != want {
				t.Errorf("packet %d (%s): seq %d, want %d", i, p.comment, p.tcp.Seq, want)
			}
			s.nxt = p.tcp.Seq + uint32(len(p.tcp.Payload))
			if p.tcp.FIN {
				s.nxt++
				s.fin = true
			}
			s.pos[p.tcp.Seq] = true
			s.pos[s.nxt] = true
		}
		s.data.Write(p.tcp.Payload)
		if p.tcp.ACK {
			back := flows[flowKey{k.dst, k.src}]
			if back == nil {
				t.Fatalf("packet %d: ACK before the other end's SYN", i)
			}
			if p.tcp.Ack-back.nxt > 1<<30 {
				t.Errorf("packet %d: ack %d behind the other end's next seq %d", i, p.tcp.Ack, back.nxt)
			}
			acks = append(acks, ackCheck{i, p.tcp.Ack, back})
		}
		if len(p.tcp.Payload) > MSS4 {
			t.Errorf("packet %d: %d bytes, above the MSS", i, len(p.tcp.Payload))
		}
	}
	if captured != 1 {
		t.Errorf("captured packets written: %d, want 1", captured)
	}

	for _, a := range acks {
		if !a.of.pos[a.ack] {
			t.Errorf("packet %d: ack %d is not a segment boundary of the other end", a.frame, a.ack)
		}
	}
	byConn := map[string]map[capture.Direction]*side{}
	for _, s := range flows {
		if !s.fin {
			t.Errorf("%s %v: no FIN", s.conn, s.dir)
		}
		if byConn[s.conn] == nil {
			byConn[s.conn] = map[capture.Direction]*side{}
		}
		byConn[s.conn][s.dir] = s
	}
	if len(byConn) != 4 {
		t.Errorf("streams for %d connections, want 4", len(byConn))
	}
	for id, bufs := range rec.plain {
		for d, dir := range []capture.Direction{capture.Ingress, capture.Egress} {
			s := byConn[id][dir]
			if s == nil {
				t.Errorf("%s %v: no stream", id, dir)
				continue
			}
			if !bytes.Equal(s.data.Bytes(), bufs[d].Bytes()) {
				t.Errorf("%s %v: stream carries %d bytes, the replay's plaintext %d", id, dir, s.data.Len(), bufs[d].Len())
			}
		}
	}

	// Specific connections.
	keys := map[string]flowKey{}
	for k, s := range flows {
		if s.dir == capture.Egress {
			keys[s.conn] = k
		}
	}
	if k := keys["c1"]; k.src != netip.MustParseAddrPort("10.0.0.1:8080") || k.dst != netip.MustParseAddrPort("10.0.0.2:40000") {
		t.Errorf("server conn written as %v", k)
	}
	if k := keys["c2"]; !k.src.Addr().Is6() {
		t.Errorf("IPv6 conn written as %v", k)
	}
	if k := keys["c3"]; k.src != netip.MustParseAddrPort("10.0.0.1:80") {
		t.Errorf("TLS server conn written as %v, want port 443 shown as 80", k)
	}
	if s := byConn["c3"][capture.Ingress]; s != nil && bytes.Contains(s.data.Bytes(), []byte("hello")) {
		t.Error("TLS ciphertext written to the stream")
	}
	if k := keys["c4"]; !strings.HasPrefix(k.src.Addr().String(), "127.") {
		t.Errorf("conn without addresses written as %v, want placeholders", k)
	}
	if rec.gaps["c2"] != 4000 {
		t.Errorf("gap of c2 = %d, want 4000", rec.gaps["c2"])
	}
	var gapNote bool
	for _, p := range pkts {
		gapNote = gapNote || strings.Contains(p.comment, "4000 bytes missing")
	}
	if !gapNote {
		t.Error("no comment says 4000 bytes are missing")
	}
}

// TestTimes checks timestamps: the handshake at the connection's start,
// segments within their calls, never going back within a stream.
func TestTimes(t *testing.T) {
	file, _ := run(t, mixedCapture(t), Options{})
	pkts, _ := readBack(t, file)
	start := capturetest.Epoch.UnixNano()
	last := map[string]int64{}
	for i, p := range pkts {
		if p.iface != streamIface {
			continue
		}
		id := strings.Fields(p.comment)[0]
		if p.ts < start || p.ts > start+int64(time.Minute) {
			t.Errorf("packet %d at %v, outside the capture", i+1, time.Unix(0, p.ts))
		}
		if p.ts < last[id] {
			t.Errorf("packet %d of %s goes back in time", i+1, id)
		}
		last[id] = p.ts
	}
	if pkts[0].ts != start+int64(10*time.Microsecond) {
		t.Errorf("first SYN at %d ns after the start, want at the accept's return", pkts[0].ts-start)
	}
}

func TestFixedCaptures(t *testing.T) {
	for _, name := range fixedCaptures {
		t.Run(name, func(t *testing.T) {
			file, rec := runFile(t, "../../testdata/"+name+".rwd")
			pkts, _ := readBack(t, file)
			var payload [2]int
			for i, p := range pkts {
				if p.iface != streamIface {
					// Captured packets are as the kernel had them: on
					// loopback their checksums are left to "offload".
					continue
				}
				verifyChecksums(t, i+1, p.data)
				if p.dir == pcapgo.NgEpbFlagDirectionOutbound {
					payload[1] += len(p.tcp.Payload)
				} else {
					payload[0] += len(p.tcp.Payload)
				}
			}
			var want [2]int
			for _, b := range rec.plain {
				want[0] += b[0].Len()
				want[1] += b[1].Len()
			}
			if payload != want {
				t.Errorf("payload bytes in/out %v, replay's plaintext %v", payload, want)
			}
		})
	}
}

// TestUnknownAddrsNote checks that a stream's note says why its addresses
// are placeholders: a TLS session that no socket call was tied to (Node.js
// keeps its TLS between memory BIOs) was not opened before the recording.
func TestUnknownAddrsNote(t *testing.T) {
	for _, tc := range []struct {
		c    analyze.Conn
		want string
	}{
		{analyze.Conn{FD: -1, TLS: "openssl"}, "openssl session not tied to a socket"},
		{analyze.Conn{FD: 7, TLS: "none"}, "opened before the recording"},
		{analyze.Conn{FD: -1, TLS: "none"}, "opened before the recording"},
	} {
		if got := unknownAddrs(&tc.c); !strings.Contains(got, tc.want) {
			t.Errorf("fd %d tls %s: note %q, want it to say %q", tc.c.FD, tc.c.TLS, got, tc.want)
		}
	}
}

// TestContainerComment checks that a stream's packet comments name the
// container and pod whose process spoke, and say nothing of it for a host
// process.
func TestContainerComment(t *testing.T) {
	var w Writer
	ctr := &analyze.Conn{ID: "c1", PID: 7, Comm: "app", FD: 3, TLS: "none",
		Container: container.Info{Runtime: "docker", ID: strings.Repeat("ab", 32)}}
	pod := &analyze.Conn{ID: "c2", PID: 8, Comm: "app", FD: 4, TLS: "none",
		Container: container.Info{Runtime: "containerd", ID: strings.Repeat("cd", 32), PodUID: "6b1e2c1a-0b6f-4a43-9a4c-1d2e3f405162", QoS: "besteffort"}}
	host := &analyze.Conn{ID: "c3", PID: 9, Comm: "app", FD: 5, TLS: "none"}
	named := &analyze.Conn{ID: "c4", PID: 10, Comm: "app", FD: 6, TLS: "none",
		Container: container.Info{Runtime: "containerd", ID: strings.Repeat("ef", 32), PodUID: "6b1e2c1a-0b6f-4a43-9a4c-1d2e3f405162", QoS: "burstable",
			Pod: "web-0", Namespace: "shop", Hostname: "web-0", Name: "app"}}
	for _, tc := range []struct {
		c    *analyze.Conn
		want string
	}{
		{ctr, "c1 comm=app pid=7 fd=3 container=docker:abababababab"},
		{pod, "c2 comm=app pid=8 fd=4 container=containerd:cdcdcdcdcdcd pod=6b1e2c1a-0b6f-4a43-9a4c-1d2e3f405162"},
		{host, "c3 comm=app pid=9 fd=5"},
		{named, "c4 comm=app pid=10 fd=6 container=containerd:efefefefefef container_name=app pod=6b1e2c1a-0b6f-4a43-9a4c-1d2e3f405162 pod_name=shop/web-0 hostname=web-0"},
	} {
		if got := w.commentFor(&stream{c: tc.c}, client, 0, 0); got != tc.want {
			t.Errorf("comment %q, want %q", got, tc.want)
		}
	}
}
