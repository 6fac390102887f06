package analyze_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture/capturetest"
)

type countSink struct{ n int }

func (c *countSink) Begin(*analyze.CaptureInfo) error { return nil }
func (c *countSink) Exchange(*analyze.Exchange) error { c.n++; return nil }
func (c *countSink) End(*analyze.Summary) error       { return nil }

// leanSink counts exchanges and takes the pipeline's two shortcuts, as the
// report and JSONL writers do: fields looked up by name, no exchange kept.
type leanSink struct{ countSink }

func (*leanSink) HeaderLookupOnly() bool { return true }
func (*leanSink) KeepsNoExchange() bool  { return true }

// keepAliveCapture builds n small exchanges spread over conns keep-alive
// connections of one server, like curl or a browser against nginx.
func keepAliveCapture(tb testing.TB, n, conns int) []byte {
	b := capturetest.New()
	b.SetChunkSize(1 << 20)
	srv := b.Process(100, "nginx")
	cs := make([]*capturetest.Conn, conns)
	for i := range cs {
		cs[i] = srv.Accept(0, "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", 40000+i))
	}
	for i := 0; i < n; i++ {
		c := cs[i%conns]
		c.Read(fmt.Sprintf("GET /api/items/%d HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/7.88.1\r\n"+
			"Accept: */*\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n", i))
		c.Write("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 02:40:00 GMT\r\n" +
			"Content-Type: application/json\r\nContent-Length: 27\r\nConnection: keep-alive\r\n\r\n" +
			`{"id":12345,"name":"thing"}`)
	}
	for _, c := range cs {
		c.Close()
	}
	return b.Bytes(tb)
}

func bigBodyCapture(tb testing.TB, n int) []byte {
	b := capturetest.New()
	srv := b.Process(100, "nginx")
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	for i := 0; i < n; i++ {
		c.Read("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		c.Write("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
		for off := 0; off < len(body); off += 256 << 10 {
			c.Write(body[off : off+256<<10])
		}
	}
	c.Close()
	return b.Bytes(tb)
}

func runReplay(b *testing.B, data []byte) int {
	var s countSink
	replayInto(b, data, &s)
	return s.n
}

func replayInto(b *testing.B, data []byte, s analyze.Sink) {
	in, err := analyze.OpenReader(bytes.NewReader(data), "bench")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{}, s); err != nil {
		b.Fatal(err)
	}
	in.Close()
}

func BenchmarkReplaySmallExchanges(b *testing.B) {
	const n = 100_000
	data := keepAliveCapture(b, n, 50)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := runReplay(b, data); got != n {
			b.Fatalf("%d exchanges, want %d", got, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "exchanges/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/exchange")
}

// BenchmarkReplaySmallExchangesLean is BenchmarkReplaySmallExchanges with
// a sink that takes the pipeline's shortcuts (see leanSink).
func BenchmarkReplaySmallExchangesLean(b *testing.B) {
	const n = 100_000
	data := keepAliveCapture(b, n, 50)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s leanSink
		if replayInto(b, data, &s); s.n != n {
			b.Fatalf("%d exchanges, want %d", s.n, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "exchanges/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/exchange")
}

func BenchmarkReplayLargeBodies(b *testing.B) {
	const n = 1000
	data := bigBodyCapture(b, n)
	b.SetBytes(int64(n) << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := runReplay(b, data); got != n {
			b.Fatalf("%d exchanges, want %d", got, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "exchanges/s")
}

// TestWriteBenchCaptures writes synthetic captures for measuring `rewind
// analyze` from the outside (peak RSS, time) when REWIND_BENCH_DIR is set:
// keepalive-100k.rwd and keepalive-1m.rwd (ten times larger).
func TestWriteBenchCaptures(t *testing.T) {
	dir := os.Getenv("REWIND_BENCH_DIR")
	if dir == "" {
		t.Skip("set REWIND_BENCH_DIR to write benchmark captures")
	}
	for name, n := range map[string]int{"keepalive-100k.rwd": 100_000, "keepalive-1m.rwd": 1_000_000} {
		if err := os.WriteFile(filepath.Join(dir, name), keepAliveCapture(t, n, 50), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
