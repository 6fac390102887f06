package analyze_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/analyze/sli"
	"github.com/rewind-tools/rewind/capture/redact"
	"github.com/rewind-tools/rewind/format/jsonl"
)

// interleavedPcap builds a pcap of conns keep-alive connections taking turns,
// each carrying perConn exchanges with their handshakes and ACKs: enough
// packets to cross many of the reader's batches and the sink stage's.
func interleavedPcap(t testing.TB, conns, perConn int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	write := func(c int, fromClient bool, seq, ack uint32, flags byte, payload string) {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(c >> 8), byte(c)}), uint16(40000+c))
		srv := netip.MustParseAddrPort("10.1.0.1:80")
		if !fromClient {
			cli, srv = srv, cli
		}
		b := tcpPacket(cli, srv, seq, ack, flags, []byte(payload))
		ts = ts.Add(7 * time.Microsecond)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
	const syn, ack = 0x02, 0x10
	cseq := make([]uint32, conns)
	sseq := make([]uint32, conns)
	for c := range conns {
		cseq[c], sseq[c] = uint32(1000*c), uint32(5000000+1000*c)
		write(c, true, cseq[c], 0, syn, "")
		write(c, false, sseq[c], cseq[c]+1, syn|ack, "")
		cseq[c]++
		sseq[c]++
		write(c, true, cseq[c], sseq[c], ack, "")
	}
	for i := range perConn {
		for c := range conns {
			req := fmt.Sprintf("GET /item/%d?c=%d HTTP/1.1\r\nHost: shop.example\r\nCookie: s=%d\r\n\r\n", i, c, i)
			body := fmt.Sprintf("item %d of connection %d", i, c)
			status := 200
			if (i+c)%13 == 0 {
				status = 503
			}
			resp := fmt.Sprintf("HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
			write(c, true, cseq[c], sseq[c], ack, req)
			cseq[c] += uint32(len(req))
			write(c, false, sseq[c], cseq[c], ack, resp)
			sseq[c] += uint32(len(resp))
			write(c, true, cseq[c], sseq[c], ack, "")
		}
	}
	return buf.Bytes()
}

// noStreams is a stream sink that ignores everything: with it, the replay
// hands exchanges to the sinks on its own goroutine instead of the sink
// stage's.
type noStreams struct{}

func (noStreams) Begin(*analyze.CaptureInfo) error                           { return nil }
func (noStreams) Exchange(*analyze.Exchange) error                           { return nil }
func (noStreams) End(*analyze.Summary) error                                 { return nil }
func (noStreams) ConnOpen(*analyze.Conn, uint64) error                       { return nil }
func (noStreams) StreamData(*analyze.Conn, analyze.StreamSpan, []byte) error { return nil }
func (noStreams) StreamGap(*analyze.Conn, analyze.StreamSpan, int64) error   { return nil }
func (noStreams) ConnClose(*analyze.Conn, uint64) error                      { return nil }

// TestPipelineDeterministic replays a pcap through the concurrent pipeline
// (packet decoding and the sinks on goroutines of their own) with one and
// two processors, and through the same pipeline with the sinks called
// synchronously: the exchanges and the report must be byte-identical.
func TestPipelineDeterministic(t *testing.T) {
	const conns, perConn = 16, 150
	file := interleavedPcap(t, conns, perConn)
	run := func(procs int, sync bool) (string, string) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		in, err := analyze.OpenReader(bytes.NewReader(file), "interleaved.pcap")
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		var lines bytes.Buffer
		agg := sli.New(sli.Options{})
		sinks := []analyze.Sink{jsonl.New(&lines), agg}
		if sync {
			sinks = append(sinks, noStreams{})
		}
		sum, err := analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{Redact: redact.Default()}, sinks...)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Exchanges != conns*perConn {
			t.Fatalf("%d exchanges, want %d", sum.Exchanges, conns*perConn)
		}
		report, err := json.Marshal(agg.Report())
		if err != nil {
			t.Fatal(err)
		}
		return lines.String(), string(report)
	}
	want, wantReport := run(1, true)
	if !bytes.Contains([]byte(want), []byte(`"status":503`)) {
		t.Fatal("the replay lost the 503s")
	}
	for _, c := range []struct {
		procs int
		sync  bool
	}{{1, false}, {2, false}, {2, true}, {2, false}} {
		got, report := run(c.procs, c.sync)
		if got != want {
			t.Errorf("GOMAXPROCS=%d sync=%v: exchanges differ", c.procs, c.sync)
		}
		if report != wantReport {
			t.Errorf("GOMAXPROCS=%d sync=%v: report differs", c.procs, c.sync)
		}
	}
}

// BenchmarkPipelinePcap times what `rewind analyze FILE --exchanges F`
// does after opening the file: packet decoding, reassembly, HTTP parsing,
// redaction, the JSONL writer and the SLI aggregator, on their goroutines.
// It replays a synthetic pcap of 8 keep-alive connections, or the file
// named by REWIND_BENCH_PCAP (for example the one `KEEP=1 make bench-pcap`
// leaves).
func BenchmarkPipelinePcap(b *testing.B) {
	file := []byte(nil)
	if p := os.Getenv("REWIND_BENCH_PCAP"); p != "" {
		var err error
		if file, err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	} else {
		file = interleavedPcap(b, 8, 5000)
	}
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	exchanges := 0
	for b.Loop() {
		in, err := analyze.OpenReader(bytes.NewReader(file), "bench.pcap")
		if err != nil {
			b.Fatal(err)
		}
		sum, err := analyze.Replay(context.Background(), in.Source, in.Info,
			analyze.Options{DiscardBodies: true, Redact: redact.Default()},
			jsonl.New(io.Discard), sli.New(sli.Options{}))
		if err != nil {
			b.Fatal(err)
		}
		in.Close()
		exchanges += sum.Exchanges
	}
	b.ReportMetric(float64(exchanges)/b.Elapsed().Seconds(), "exchanges/s")
}
