package analyze_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/capturetest"
)

// TestNetNSKeepsConnectionsApart replays two servers that answer on the same
// 4-tuple at the same time, each in a network namespace of its own, and a
// third on the recorder's namespace: three connections, three services,
// and only the host's connection takes the ACKs of the captured packets
// (#22).
func TestNetNSKeepsConnectionsApart(t *testing.T) {
	const hostNS, nsA, nsB = 4026531833, 4026532173, 4026532250
	b := capturetest.New()
	b.Header.NetNS = hostNS
	b.Header.Options.Packets = true
	a := b.Process(100, "python3").InNetNS(nsA)
	bb := b.Process(200, "python3").InNetNS(nsB)
	h := b.Process(300, "python3").InNetNS(hostNS)
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	var conns []*capturetest.Conn
	for _, p := range []*capturetest.Proc{a, bb, h} {
		conns = append(conns, p.Accept(4, "127.0.0.1:8080", "127.0.0.1:40000"))
	}
	for i, c := range conns {
		c.Read("GET /" + string(rune('a'+i)) + " HTTP/1.1\r\nHost: h\r\n\r\n")
	}
	for _, c := range conns {
		c.Write(resp)
	}
	local, remote := netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("127.0.0.1:40000")
	b.Advance(time.Millisecond)
	b.Event(&capture.TCP{Timestamp: b.Now(), Type: capture.TCPAck, Local: local, Remote: remote, Seq: uint32(len(resp))})
	for _, c := range conns {
		c.Close()
	}
	agg := sli.New(sli.Options{})
	var got collect
	replayTo(t, b, analyze.Options{}, &got, agg)
	if len(got.exs) != 3 {
		t.Fatalf("%d exchanges, want 3", len(got.exs))
	}
	ids := map[string]bool{}
	for _, ex := range got.exs {
		want := map[string]uint64{"/a": nsA, "/b": nsB, "/c": hostNS}[ex.Request.Path]
		if ex.Conn.NetNS != want {
			t.Errorf("%s: netns %d, want %d", ex.Request.Path, ex.Conn.NetNS, want)
		}
		ids[ex.Conn.ID] = true
		// Only the host's connection is in the packets' namespace.
		if hasNet := ex.Timings.Network != analyze.Unknown; hasNet != (want == hostNS) {
			t.Errorf("%s: network timing %d", ex.Request.Path, ex.Timings.Network)
		}
	}
	if len(ids) != 3 {
		t.Errorf("connections %v, want 3", ids)
	}
	if n := got.sum.NoNetwork["the connection ran in another network namespace than the recorder, whose packets were not captured"]; n != 2 {
		t.Errorf("no-network counts %v", got.sum.NoNetwork)
	}
	var nss []uint64
	for _, s := range agg.Report().Services {
		nss = append(nss, s.NetNS)
	}
	if len(nss) != 3 || nss[0] != 0 || nss[1] != nsA || nss[2] != nsB {
		t.Errorf("services' namespaces %v, want [0 %d %d] (the host's shown as 0)", nss, nsA, nsB)
	}
}
