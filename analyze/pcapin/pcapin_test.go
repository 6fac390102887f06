package pcapin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/rewind-tools/rewind/analyze/tcpip"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/internal/golden"
)

// pkt is a TCP segment to put in a test capture.
type pkt struct {
	fromClient bool
	seq, ack   uint32
	flags      uint8
	payload    string
	cut        int // bytes of payload left out of the capture (snaplen)
}

var (
	client = [4]byte{10, 0, 0, 1}
	server = [4]byte{10, 0, 0, 2}
)

const (
	cport = 40000
	sport = 80
)

// ipv4TCP builds an IPv4 packet carrying p.
func ipv4TCP(p pkt) []byte {
	src, dst, sp, dp := client, server, uint16(cport), uint16(sport)
	if !p.fromClient {
		src, dst, sp, dp = server, client, sport, cport
	}
	b := make([]byte, 40, 40+len(p.payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(40+len(p.payload)))
	b[8], b[9] = 64, 6
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	t := b[20:]
	binary.BigEndian.PutUint16(t[0:], sp)
	binary.BigEndian.PutUint16(t[2:], dp)
	binary.BigEndian.PutUint32(t[4:], p.seq)
	binary.BigEndian.PutUint32(t[8:], p.ack)
	t[12] = 5 << 4
	t[13] = p.flags
	b = append(b, p.payload...)
	return b[:len(b)-p.cut]
}

// frame wraps an IP packet in the given link type's header.
func frame(link int, ip []byte) []byte {
	var h []byte
	switch link {
	case tcpip.LinkEthernet:
		h = make([]byte, 18) // with one VLAN tag
		binary.BigEndian.PutUint16(h[12:], 0x8100)
		binary.BigEndian.PutUint16(h[16:], 0x0800)
	case tcpip.LinkSLL:
		h = make([]byte, 16)
		binary.BigEndian.PutUint16(h[14:], 0x0800)
	case tcpip.LinkSLL2:
		h = make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], 0x0800)
	case tcpip.LinkNull:
		h = []byte{2, 0, 0, 0}
	case tcpip.LinkLoop:
		h = []byte{0, 0, 0, 2}
	}
	return append(h, ip...)
}

// conversation is a keep-alive exchange with a handshake, a request split
// in two segments that arrive out of order, a retransmission, and FINs.
func conversation() []pkt {
	req1, req2 := "GET /a HTTP/1.1\r\nHo", "st: x\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
	c, s := uint32(1000), uint32(5000)
	return []pkt{
		{true, c, 0, tcpip.SYN, "", 0},
		{false, s, c + 1, tcpip.SYN | tcpip.ACK, "", 0},
		{true, c + 1, s + 1, tcpip.ACK, "", 0},
		{true, c + 1 + uint32(len(req1)), s + 1, tcpip.ACK, req2, 0}, // ahead of req1
		{true, c + 1, s + 1, tcpip.ACK, req1, 0},
		{true, c + 1, s + 1, tcpip.ACK, req1, 0}, // retransmitted
		{false, s + 1, c + 1 + uint32(len(req1+req2)), tcpip.ACK, resp, 0},
		{true, c + 1 + uint32(len(req1+req2)), s + 1 + uint32(len(resp)), tcpip.ACK | tcpip.FIN, "", 0},
		{false, s + 1 + uint32(len(resp)), c + 2 + uint32(len(req1+req2)), tcpip.ACK | tcpip.FIN, "", 0},
		{true, c + 2 + uint32(len(req1+req2)), s + 2 + uint32(len(resp)), tcpip.ACK, "", 0},
	}
}

func ts(i int) time.Time { return time.Unix(1700000000, int64(i)*1000) }

func writePcap(t testing.TB, link int, pkts []pkt, nanos bool) []byte {
	var buf bytes.Buffer
	var w *pcapgo.Writer
	if nanos {
		w = pcapgo.NewWriterNanos(&buf)
	} else {
		w = pcapgo.NewWriter(&buf)
	}
	if err := w.WriteFileHeader(65535, layers.LinkType(link)); err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		data := frame(link, ipv4TCP(p))
		ci := gopacket.CaptureInfo{Timestamp: ts(i), CaptureLength: len(data), Length: len(data) + p.cut}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// bigEndian rewrites a little-endian µs pcap in big-endian byte order.
func bigEndian(le []byte) []byte {
	out := append([]byte(nil), le...)
	swap32 := func(b []byte) { binary.BigEndian.PutUint32(b, binary.LittleEndian.Uint32(b)) }
	swap16 := func(b []byte) { binary.BigEndian.PutUint16(b, binary.LittleEndian.Uint16(b)) }
	swap32(out[0:])
	swap16(out[4:])
	swap16(out[6:])
	for _, o := range []int{8, 12, 16, 20} {
		swap32(out[o:])
	}
	for off := 24; off+16 <= len(out); {
		n := int(binary.LittleEndian.Uint32(out[off+8:]))
		for i := 0; i < 4; i++ {
			swap32(out[off+4*i:])
		}
		off += 16 + n
	}
	return out
}

// writePcapng puts the packets on two interfaces of different link types
// and timestamp resolutions.
func writePcapng(t testing.TB, pkts []pkt) []byte {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet,
		SnapLength: 65535, TimestampResolution: 9}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.AddInterface(pcapgo.NgInterface{Name: "any", LinkType: layers.LinkTypeLinuxSLL2, SnapLength: 65535,
		TimestampResolution: 6})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		link, iface := tcpip.LinkEthernet, 0
		if i%2 == 1 {
			link, iface = tcpip.LinkSLL2, id
		}
		data := frame(link, ipv4TCP(p))
		ci := gopacket.CaptureInfo{Timestamp: ts(i), CaptureLength: len(data), Length: len(data) + p.cut,
			InterfaceIndex: iface}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t testing.TB, kind string, b []byte) []byte {
	var buf bytes.Buffer
	switch kind {
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case "zstd":
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		w.Close()
	default:
		return b
	}
	return buf.Bytes()
}

// summarize reads every event and renders them one per line.
func summarize(t testing.TB, b []byte) (string, Counts) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var sb strings.Builder
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.(type) {
		case *capture.Accept:
			fmt.Fprintf(&sb, "accept fd=%d %v<-%v\n", e.FD, e.Local, e.Remote)
		case *capture.Socket:
			fmt.Fprintf(&sb, "socket fd=%d %v %v\n", e.FD, e.Local, e.Remote)
		case *capture.Data:
			fmt.Fprintf(&sb, "data fd=%d %v len=%d trunc=%v %q\n", e.FD, e.Dir, e.Len, e.Truncated(), e.Payload)
		case *capture.TCP:
			fmt.Fprintf(&sb, "tcp %d %v->%v seq=%d\n", e.Type, e.Local, e.Remote, e.Seq)
		case *capture.Close:
			fmt.Fprintf(&sb, "close fd=%d\n", e.FD)
		}
	}
	return sb.String(), r.Counts()
}

const wantConversation = `accept fd=1 10.0.0.2:80<-10.0.0.1:40000
data fd=1 in len=19 trunc=false "GET /a HTTP/1.1\r\nHo"
data fd=1 in len=9 trunc=false "st: x\r\n\r\n"
tcp 1 10.0.0.1:40000->10.0.0.2:80 seq=0
data fd=1 out len=40 trunc=false "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
tcp 4 10.0.0.2:80->10.0.0.1:40000 seq=40
close fd=1
`

func TestFormatsAndLinkTypes(t *testing.T) {
	pkts := conversation()
	inputs := map[string][]byte{
		"pcap-ethernet-vlan": writePcap(t, tcpip.LinkEthernet, pkts, false),
		"pcap-ns-sll":        writePcap(t, tcpip.LinkSLL, pkts, true),
		"pcap-be-raw":        bigEndian(writePcap(t, tcpip.LinkRaw, pkts, false)),
		"pcap-null":          writePcap(t, tcpip.LinkNull, pkts, false),
		"pcap-loop":          writePcap(t, tcpip.LinkLoop, pkts, false),
		"pcap-ipv4":          writePcap(t, tcpip.LinkIPv4, pkts, false),
		"pcapng-two-ifaces":  writePcapng(t, pkts),
	}
	for name, b := range inputs {
		for _, z := range []string{"", "gzip", "zstd"} {
			t.Run(name+"-"+z, func(t *testing.T) {
				got, counts := summarize(t, compress(t, z, b))
				if got != wantConversation {
					t.Errorf("events:\n%s\nwant:\n%s", got, wantConversation)
				}
				if counts.Retransmissions != 1 || counts.OutOfOrder != 1 || counts.Packets != uint64(len(pkts)) {
					t.Errorf("counts %+v", counts)
				}
			})
		}
	}
}

func TestMidStreamGapsAndTruncation(t *testing.T) {
	c, s := uint32(7000), uint32(9000)
	pkts := []pkt{
		// joined mid-stream: the server's response tail first
		{false, s, c, tcpip.ACK, "tail", 0},
		{true, c, s + 4, tcpip.ACK, "GET / HTTP/1.1\r\n\r\n", 0},
		// 10 bytes of the response never captured; the client acks them
		{false, s + 14, c + 18, tcpip.ACK, "more", 0},
		{true, c + 18, s + 18, tcpip.ACK, "", 0},
		// a segment cut by the snaplen
		{false, s + 18, c + 18, tcpip.ACK, "abcdef", 4},
		{true, c + 18, s + 24, tcpip.ACK | tcpip.RST, "", 0},
	}
	got, counts := summarize(t, writePcap(t, tcpip.LinkEthernet, pkts, false))
	want := `socket fd=1 10.0.0.1:40000 10.0.0.2:80
data fd=1 in len=4 trunc=false "tail"
data fd=1 out len=18 trunc=false "GET / HTTP/1.1\r\n\r\n"
tcp 4 10.0.0.2:80->10.0.0.1:40000 seq=4
tcp 4 10.0.0.1:40000->10.0.0.2:80 seq=18
data fd=1 in len=10 trunc=true ""
data fd=1 in len=4 trunc=false "more"
data fd=1 in len=6 trunc=true "ab"
tcp 4 10.0.0.2:80->10.0.0.1:40000 seq=24
close fd=1
`
	if got != want {
		t.Errorf("events:\n%s\nwant:\n%s", got, want)
	}
	if counts.Gaps != 1 || counts.GapBytes != 10 || counts.TruncatedPackets != 1 {
		t.Errorf("counts %+v", counts)
	}
}

func TestTupleReuseAndBufferLimit(t *testing.T) {
	var pkts []pkt
	for round, isn := range []uint32{100, 90000} {
		pkts = append(pkts,
			pkt{true, isn, 0, tcpip.SYN, "", 0},
			pkt{true, isn + 1, 0, tcpip.ACK, "x", 0},
			pkt{true, isn + 2, 0, tcpip.ACK | tcpip.FIN, "", 0},
			pkt{false, 500, isn + 3, tcpip.ACK | tcpip.FIN | tcpip.SYN, "", 0},
		)
		_ = round
	}
	got, _ := summarize(t, writePcap(t, tcpip.LinkEthernet, pkts, false))
	if n := strings.Count(got, "accept"); n != 2 {
		t.Errorf("want two connections on one 4-tuple:\n%s", got)
	}
	// A hole never filled is given up once the buffer limit is reached.
	pkts = []pkt{{true, 1, 0, tcpip.SYN, "", 0}}
	big := strings.Repeat("y", 1000)
	for i := 0; i < 10; i++ {
		pkts = append(pkts, pkt{true, 2 + 100 + uint32(i*1000), 0, tcpip.ACK, big, 0})
	}
	r, err := NewReader(bytes.NewReader(writePcap(t, tcpip.LinkEthernet, pkts, false)), Options{MaxBuffered: 4000})
	if err != nil {
		t.Fatal(err)
	}
	var firstGapBeforeEnd bool
	for i := 0; ; i++ {
		ev, err := r.Next()
		if err != nil {
			break
		}
		if d, ok := ev.(*capture.Data); ok && d.Truncated() && d.Len == 100 && r.eof == false {
			firstGapBeforeEnd = true
		}
	}
	if !firstGapBeforeEnd {
		t.Error("the hole was not given up when the buffer limit was reached")
	}
}

func TestNotPcap(t *testing.T) {
	if _, err := NewReader(strings.NewReader("hello world"), Options{}); err == nil {
		t.Fatal("want an error for a non-pcap input")
	}
	// A file cut mid-packet yields what is there and says so.
	b := writePcap(t, tcpip.LinkEthernet, conversation(), false)
	r, err := NewReader(bytes.NewReader(b[:len(b)-10]), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := r.Next(); err != nil {
			break
		}
	}
	if r.Counts().ReadError == "" || r.Stats().CleanClose {
		t.Errorf("cut file not reported: %+v", r.Counts())
	}
}

// FuzzPcapReader feeds arbitrary bytes to the reader: it must never panic
// and must end.
func FuzzPcapReader(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add(writePcap(f, tcpip.LinkEthernet, conversation(), false))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		r, err := NewReader(bytes.NewReader(b), Options{MaxBuffered: 1 << 16})
		if err != nil {
			return
		}
		defer r.Close()
		for n := 0; ; n++ {
			ev, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if d, ok := ev.(*capture.Data); ok && uint32(len(d.Payload)) > d.Len {
				t.Fatalf("payload %d > len %d", len(d.Payload), d.Len)
			}
			if n > 100<<20 {
				t.Fatal("no end")
			}
		}
	})
}

// TestWriteSeeds rewrites the fuzz seeds with REWIND_UPDATE=1.
func TestWriteSeeds(t *testing.T) {
	if !golden.Updating() {
		t.Skip("run with REWIND_UPDATE=1 to rewrite testdata/")
	}
	pkts := conversation()
	seeds := map[string][]byte{
		"conversation.pcap":         writePcap(t, tcpip.LinkEthernet, pkts, false),
		"conversation-ns.pcap":      writePcap(t, tcpip.LinkSLL, pkts, true),
		"conversation.pcapng":       writePcapng(t, pkts),
		"conversation.pcapng.gz":    compress(t, "gzip", writePcapng(t, pkts)),
		"conversation-raw.pcap.zst": compress(t, "zstd", writePcap(t, tcpip.LinkRaw, pkts, false)),
	}
	for name, b := range seeds {
		golden.Write(t, filepath.Join("testdata", name), b)
	}
}

// TestNoIPLength reads a segment sent with GSO, whose IP header gives no
// length, cut by the snaplen, from a pcap and a pcapng file: the length
// the capture gives for the packet says how much was not captured, so
// the missing bytes are a truncation, as when the header has its length.
func TestNoIPLength(t *testing.T) {
	c, s := uint32(7000), uint32(9000)
	pkts := []pkt{
		{true, c, s, tcpip.ACK, "GET / HTTP/1.1\r\n\r\n", 0},
		{false, s, c + 18, tcpip.ACK, "abcdef", 4}, // no IP length, 4 bytes cut
		{true, c + 18, s + 6, tcpip.ACK | tcpip.RST, "", 0},
	}
	packet := func(i int, p pkt, link int) (gopacket.CaptureInfo, []byte) {
		ip := ipv4TCP(p)
		if i == 1 {
			ip[2], ip[3] = 0, 0
		}
		data := frame(link, ip)
		return gopacket.CaptureInfo{Timestamp: ts(i), CaptureLength: len(data), Length: len(data) + p.cut}, data
	}
	var pcap, ng bytes.Buffer
	pw := pcapgo.NewWriter(&pcap)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	nw, err := pcapgo.NewNgWriterInterface(&ng, pcapgo.NgInterface{Name: "lo", LinkType: layers.LinkTypeLinuxSLL2,
		SnapLength: 65535, TimestampResolution: 9}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		if err := pw.WritePacket(packet(i, p, tcpip.LinkEthernet)); err != nil {
			t.Fatal(err)
		}
		if err := nw.WritePacket(packet(i, p, tcpip.LinkSLL2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nw.Flush(); err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string][]byte{"pcap": pcap.Bytes(), "pcapng": ng.Bytes()} {
		got, counts := summarize(t, file)
		if !strings.Contains(got, `data fd=1 out len=6 trunc=true "ab"`) || counts.TruncatedPackets != 1 {
			t.Errorf("%s: counts %+v, events:\n%s", name, counts, got)
		}
	}
}
