package analyze_test

import (
	"fmt"
	"testing"

	"github.com/rewind-tools/rewind/capture/capturetest"
	"golang.org/x/net/http2"
)

// h2Capture builds n small exchanges spread over conns HTTP/2 connections
// of one server, each request and response in its own read and write, like
// keepAliveCapture does for HTTP/1.1.
func h2Capture(tb testing.TB, n, conns int) []byte {
	b := capturetest.New()
	b.SetChunkSize(1 << 20)
	srv := b.Process(100, "nginx")
	cs := make([]*capturetest.Conn, conns)
	cl := make([]*capturetest.H2Wire, conns)
	sv := make([]*capturetest.H2Wire, conns)
	for i := range cs {
		cs[i] = srv.Accept(0, "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", 40000+i))
		cl[i], sv[i] = capturetest.NewH2Wire(tb), capturetest.NewH2Wire(tb)
		cs[i].Read(http2.ClientPreface + cl[i].Settings().Take())
		cs[i].Write(sv[i].Settings().Take())
	}
	for i := 0; i < n; i++ {
		k := i % conns
		id := uint32(2*(i/conns) + 1)
		cs[k].Read(cl[k].Headers(id, true, ":method", "GET", ":scheme", "http", ":authority", "localhost:8080",
			":path", fmt.Sprintf("/api/items/%d", i), "user-agent", "curl/7.88.1", "accept", "*/*",
			"accept-encoding", "gzip").Take())
		cs[k].Write(sv[k].Headers(id, false, ":status", "200", "server", "nginx/1.22.1",
			"date", "Sun, 22 Nov 2026 02:40:00 GMT", "content-type", "application/json", "content-length", "27").
			Data(id, true, `{"id":12345,"name":"thing"}`).Take())
	}
	for _, c := range cs {
		c.Close()
	}
	return b.Bytes(tb)
}

// BenchmarkReplayHTTP2SmallExchanges is BenchmarkReplaySmallExchanges over
// HTTP/2: 100,000 exchanges on 50 connections.
func BenchmarkReplayHTTP2SmallExchanges(b *testing.B) {
	const n = 100_000
	data := h2Capture(b, n, 50)
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
