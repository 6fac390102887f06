//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

// TestPacketsPerInterface checks the packet sockets: loopback's packets are
// seen once each (received, never the outgoing copy), and an interface
// created during the capture (a veth pair into a network namespace made
// here) gets a socket of its own, whose packets arrive in both directions,
// and loses it when the interface is removed.
func TestPacketsPerInterface(t *testing.T) {
	bpftest.RequireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ip (iproute2) is missing")
		}
		t.Skip("ip (iproute2) is missing")
	}
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer ln.Close()

	tr, err := Load(Options{Ports: []uint16{port}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.MarkPacketPort(port); err != nil {
		t.Fatal(err)
	}
	ps, err := tr.OpenPackets("")
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	before := ps.Interfaces()
	ifs, _ := net.Interfaces()
	if before != len(ifs) {
		t.Errorf("%d packet sockets for %d interfaces", before, len(ifs))
	}

	// Loopback: one request, each packet seen once.
	get(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "")
	lo := readPackets(t, tr, port)
	for _, p := range lo {
		if p.Packet.Ifindex == loopbackIndex() && p.Packet.PktType == PacketOutgoing {
			t.Fatalf("loopback's outgoing copy was captured")
		}
	}
	if seen := countDup(lo); seen != "" {
		t.Errorf("a loopback packet was captured twice: %s", seen)
	}
	if len(lo) < 6 {
		t.Errorf("%d loopback packets for one HTTP request on a new connection, want at least 6", len(lo))
	}

	// A veth pair into a namespace of our own, made after the capture began.
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	ns, host, peer := "rwtest"+tag, "rwh"+tag, "rwp"+tag
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sh("netns", "add", ns)
	defer exec.Command("ip", "netns", "del", ns).Run()
	sh("link", "add", host, "type", "veth", "peer", "name", peer)
	defer exec.Command("ip", "link", "del", host).Run()
	sh("link", "set", peer, "netns", ns)
	sh("addr", "add", "10.213.77.1/30", "dev", host)
	sh("link", "set", host, "up")
	sh("-n", ns, "addr", "add", "10.213.77.2/30", "dev", peer)
	sh("-n", ns, "link", "set", peer, "up")
	sh("-n", ns, "link", "set", "lo", "up")
	ifc, err := net.InterfaceByName(host)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a packet socket on the new interface", func() bool { return ps.has(ifc.Index) })

	get(t, fmt.Sprintf("http://10.213.77.1:%d/", port), ns)
	var in, out int
	for _, p := range readPackets(t, tr, port) {
		if int(p.Packet.Ifindex) != ifc.Index {
			continue
		}
		if p.Packet.PktType == PacketOutgoing {
			out++
		} else {
			in++
		}
	}
	t.Logf("%d interfaces at the start; loopback: %d packets; new interface: %d received, %d sent", before, len(lo), in, out)
	if in < 3 || out < 3 {
		t.Errorf("on the new interface: %d packets received and %d sent, want at least 3 of each", in, out)
	}

	sh("link", "del", host)
	waitFor(t, "the removed interface's socket to close", func() bool { return !ps.has(ifc.Index) })
}

// TestPacketHeaders checks that the filter finds the TCP header behind an
// IPv6 header and behind an IPv4 header with options (a client that sets
// IP_OPTIONS on its socket), keeps those packets of the selected port and
// their first payload bytes, and drops other ports' packets.
func TestPacketHeaders(t *testing.T) {
	bpftest.RequireRoot(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is missing")
		}
		t.Skip("python3 is missing")
	}
	serve := func(network, addr string) uint16 {
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
		return uint16(ln.Addr().(*net.TCPAddr).Port)
	}
	v6, v4, other := serve("tcp6", "[::1]:0"), serve("tcp4", "127.0.0.1:0"), serve("tcp4", "127.0.0.1:0")
	tr, err := Load(Options{Ports: []uint16{v6, v4}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for _, p := range []uint16{v6, v4} {
		if err := tr.MarkPacketPort(p); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := tr.OpenPackets("lo")
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()

	// Each read takes everything the ring holds: one connection at a time.
	get(t, fmt.Sprintf("http://[::1]:%d/v6", v6), "")
	var got6, got4, opts []packet
	for _, p := range readPackets(t, tr, v6) {
		if p.l3 == 40 {
			got6 = append(got6, p)
		}
	}
	// Four bytes of IP options (three NOPs and an end of list): a 24-byte
	// IPv4 header on every packet the client sends.
	client := fmt.Sprintf(`import socket
s = socket.socket()
s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, bytes([1, 1, 1, 0]))
s.connect(("127.0.0.1", %d))
s.sendall(b"GET /options HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
while s.recv(4096):
    pass
`, v4)
	if out, err := exec.Command(py, "-c", client).CombinedOutput(); err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	for _, p := range readPackets(t, tr, v4) {
		got4 = append(got4, p)
		if p.l3 == 24 {
			opts = append(opts, p)
		}
	}
	if len(got6) < 6 {
		t.Errorf("%d IPv6 packets for one request on a new connection, want at least 6", len(got6))
	}
	if !slices.ContainsFunc(got6, func(p packet) bool { return strings.HasPrefix(p.payload, "GET /v6 HTTP/1.1") }) {
		t.Errorf("no IPv6 packet kept the request's first bytes: %+v", got6)
	}
	if len(opts) < 3 {
		t.Errorf("%d IPv4 packets with options (of %d on the port), want the client's (at least 3)", len(opts), len(got4))
	}
	if !slices.ContainsFunc(opts, func(p packet) bool { return strings.HasPrefix(p.payload, "GET /options HTTP/1.1") }) {
		t.Errorf("no packet with IP options kept the request's first bytes: %+v", opts)
	}
	get(t, fmt.Sprintf("http://127.0.0.1:%d/other", other), "")
	if n := len(readPackets(t, tr, other)); n != 0 {
		t.Errorf("%d packets of an unselected port were kept", n)
	}
}

// has reports whether interface ifindex has a packet socket.
func (s *PacketSocket) has(ifindex int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.fds[ifindex]
	return ok
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(end) {
			t.Fatalf("waited 5 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get fetches url with curl, in network namespace ns when it is not "".
func get(t *testing.T, url, ns string) {
	t.Helper()
	args := []string{"-s", "--max-time", "5", "-o", "/dev/null", url}
	cmd := exec.Command("curl", args...)
	if ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, "curl"}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
}

// packet is a copy of a packet record's header and its TCP facts.
type packet struct {
	Packet PacketEvent
	seq    uint32
	ack    uint32
	flags  byte
	sport  uint16
	len    uint32
	// Not compared by countDup: the IP header's length and the TCP
	// payload the filter kept.
	l3      int
	payload string
}

// readPackets reads the ring until it has been empty for 300 ms and keeps
// the TCP packets to or from port.
func readPackets(t *testing.T, tr *Tracer, port uint16) []packet {
	t.Helper()
	var got []packet
	var rec Record
	for {
		tr.SetDeadline(time.Now().Add(300 * time.Millisecond))
		err := tr.Read(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type != EventPacket || len(rec.Payload) < 40 {
			continue
		}
		b := rec.Payload
		var l3 int
		switch b[0] >> 4 {
		case 4:
			l3 = int(b[0]&0xf) * 4
		case 6:
			l3 = 40
		default:
			continue
		}
		if len(b) < l3+20 {
			continue
		}
		sport, dport := be16(b[l3:]), be16(b[l3+2:])
		if sport != port && dport != port {
			continue
		}
		doff := int(b[l3+12]>>4) * 4
		got = append(got, packet{Packet: rec.Packet, seq: be32(b[l3+4:]), ack: be32(b[l3+8:]), flags: b[l3+13], sport: sport, len: rec.Packet.Len,
			l3: l3, payload: string(b[min(l3+doff, len(b)):])})
	}
}

// countDup returns a description of the first packet seen twice (same
// direction, sequence and acknowledgment numbers, flags and length), or "".
func countDup(ps []packet) string {
	seen := map[packet]bool{}
	for _, p := range ps {
		k := packet{seq: p.seq, ack: p.ack, flags: p.flags, sport: p.sport, len: p.len}
		if seen[k] {
			return fmt.Sprintf("from port %d, seq %d, flags %#x, %d bytes", p.sport, p.seq, p.flags, p.len)
		}
		seen[k] = true
	}
	return ""
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
func be32(b []byte) uint32 { return uint32(be16(b))<<16 | uint32(be16(b[2:])) }
