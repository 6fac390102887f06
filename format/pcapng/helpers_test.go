package pcapng

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
)

// recorder is a sink that keeps the exchanges and the plaintext the replay
// streamed, per connection and direction, as the truth to compare with.
type recorder struct {
	exs   []*analyze.Exchange
	plain map[string]*[2]bytes.Buffer // conn id → [in, out]
	gaps  map[string]int64
	conns []*analyze.Conn
}

func newRecorder() *recorder {
	return &recorder{plain: map[string]*[2]bytes.Buffer{}, gaps: map[string]int64{}}
}

func (r *recorder) Begin(*analyze.CaptureInfo) error   { return nil }
func (r *recorder) Exchange(e *analyze.Exchange) error { r.exs = append(r.exs, e); return nil }
func (r *recorder) End(*analyze.Summary) error         { return nil }
func (r *recorder) ConnOpen(c *analyze.Conn, _ uint64) error {
	r.conns = append(r.conns, c)
	r.plain[c.ID] = &[2]bytes.Buffer{}
	return nil
}
func (r *recorder) StreamData(c *analyze.Conn, sp analyze.StreamSpan, p []byte) error {
	r.plain[c.ID][dirIdx(sp.Dir)].Write(p)
	return nil
}
func (r *recorder) StreamGap(c *analyze.Conn, sp analyze.StreamSpan, n int64) error {
	r.gaps[c.ID] += n
	return nil
}
func (r *recorder) ConnClose(*analyze.Conn, uint64) error { return nil }

func dirIdx(d capture.Direction) int {
	if d == capture.Egress {
		return 1
	}
	return 0
}

// run replays a capture's bytes into a Writer and a recorder.
func run(t testing.TB, data []byte, opts Options) ([]byte, *recorder) {
	t.Helper()
	in, err := analyze.OpenReader(bytes.NewReader(data), "test.rwd")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	rec := newRecorder()
	if _, err := analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{}, New(&out, opts), rec); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), rec
}

func runFile(t testing.TB, path string) ([]byte, *recorder) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, data, Options{Version: "test"})
}

// pkt is one packet read back.
type pkt struct {
	iface   int
	ts      int64
	data    []byte
	comment string
	dir     pcapgo.NgEpbFlag
	ip      gopacket.NetworkLayer
	tcp     *layers.TCP
}

// readBack reads every packet of a pcapng with pcapgo.
func readBack(t testing.TB, file []byte) ([]pkt, *pcapgo.NgReader) {
	t.Helper()
	r, err := pcapgo.NewNgReader(bytes.NewReader(file), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatalf("reading pcapng: %v", err)
	}
	var out []pkt
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading packet %d: %v", len(out)+1, err)
		}
		p := pkt{iface: ci.InterfaceIndex, ts: ci.Timestamp.UnixNano(), data: data}
		if len(opts.Comments) > 0 {
			p.comment = opts.Comments[0]
		}
		if opts.Flags != nil {
			p.dir = opts.Flags.Direction
		}
		if ci.InterfaceIndex == streamIface {
			pk := gopacket.NewPacket(data, layers.LayerTypeIPv4, gopacket.Default)
			if data[0]>>4 == 6 {
				pk = gopacket.NewPacket(data, layers.LayerTypeIPv6, gopacket.Default)
			}
			if el := pk.ErrorLayer(); el != nil {
				t.Fatalf("packet %d does not decode: %v", len(out)+1, el.Error())
			}
			p.ip = pk.NetworkLayer()
			tl, _ := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if tl == nil {
				t.Fatalf("packet %d has no TCP layer", len(out)+1)
			}
			p.tcp = tl
		}
		out = append(out, p)
	}
	return out, r
}

// flowKey identifies one direction of a synthetic stream.
type flowKey struct {
	src, dst netip.AddrPort
}

func endpoints(p pkt) flowKey {
	var src, dst netip.Addr
	switch ip := p.ip.(type) {
	case *layers.IPv4:
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
	case *layers.IPv6:
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
	}
	return flowKey{netip.AddrPortFrom(src, uint16(p.tcp.SrcPort)), netip.AddrPortFrom(dst, uint16(p.tcp.DstPort))}
}
