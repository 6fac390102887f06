package analyze_test

import (
	"bytes"
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/http2"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture/capturetest"
)

// h2cBodiesPcap builds a pcap of one h2c connection (prior knowledge) on
// which the client GETs streams responses of body bytes each, one after the
// other, in TCP segments of up to 64 KiB as tcpdump records them on a
// loopback interface.
func h2cBodiesPcap(t testing.TB, streams, body int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	seq := [2]uint32{1000, 5000000} // client, server
	packet := func(fromClient bool, flags byte, payload []byte) {
		src, dst := netip.MustParseAddrPort("10.1.0.1:80"), netip.MustParseAddrPort("10.0.0.1:40000") // server to client
		d := 1
		if fromClient {
			src, dst, d = dst, src, 0
		}
		b := tcpPacket(src, dst, seq[d], seq[1-d], flags, payload)
		ts = ts.Add(7 * time.Microsecond)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
		seq[d] += uint32(len(payload))
		if flags&0x02 != 0 {
			seq[d]++
		}
	}
	const syn, ack = 0x02, 0x10
	send := func(fromClient bool, p []byte) {
		for len(p) > 0 {
			n := min(len(p), 65535-40)
			packet(fromClient, ack, p[:n])
			p = p[n:]
			packet(!fromClient, ack, nil)
		}
	}
	packet(true, syn, nil)
	packet(false, syn|ack, nil)
	packet(true, ack, nil)
	cl, sv := capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	send(true, []byte(http2.ClientPreface+cl.Settings().Take()))
	send(false, []byte(sv.Settings().Take()))
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<10) // one 16 KiB frame
	for i := range streams {
		id := uint32(2*i + 1)
		send(true, []byte(cl.Headers(id, true, get(id, "/big")...).Take()))
		sv.Headers(id, false, ":status", "200")
		for sent := 0; sent < body; sent += len(chunk) {
			n := min(len(chunk), body-sent)
			sv.Must(sv.Framer().WriteData(id, sent+n == body, chunk[:n]))
			if sv.Len() >= 256<<10 {
				send(false, []byte(sv.Take()))
			}
		}
		send(false, []byte(sv.Take()))
	}
	return buf.Bytes()
}

// TestBoundedHTTP2Allocations replays 64 h2c responses of 1 MiB with no
// output that shows bodies (and the CLI's --max-body of 1 MiB), and bounds what the replay allocates: bodies
// are measured, not kept, and packets move through the reader's batches
// without copies of their own. Memory held for bodies (or copied per byte)
// made `rewind analyze` of a 1 GB h2c pcap peak at 290 MiB (#23).
func TestBoundedHTTP2Allocations(t *testing.T) {
	const streams, body = 64, 1 << 20
	file := h2cBodiesPcap(t, streams, body)
	in, err := analyze.OpenReader(bytes.NewReader(file), "h2c.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var cnt countSink
	sum, err := analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{MaxBodyCapture: 1 << 20, DiscardBodies: true}, &cnt)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if cnt.n != streams || sum.Exchanges != streams {
		t.Fatalf("%d exchanges (summary %d), want %d", cnt.n, sum.Exchanges, streams)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("pcap of %s: replay allocated %s", mib(uint64(len(file))), mib(alloc))
	// Today about 5 MiB, nearly all fixed (the reader's batches); a copy
	// of each body would be 64 MiB more.
	if alloc > uint64(len(file))/4 {
		t.Errorf("replaying %s of h2c allocated %s; want at most a quarter of it", mib(uint64(len(file))), mib(alloc))
	}
}
