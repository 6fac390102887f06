package pcapng

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture/capturetest"
)

// nopSink counts exchanges: the replay alone, as a baseline.
type nopSink struct{ n int }

func (s *nopSink) Begin(*analyze.CaptureInfo) error { return nil }
func (s *nopSink) Exchange(*analyze.Exchange) error { s.n++; return nil }
func (s *nopSink) End(*analyze.Summary) error       { return nil }

// bulkCapture is one keep-alive connection moving 64 exchanges with 64 KiB
// bodies: 4 MiB of plaintext.
func bulkCapture(b testing.TB) []byte {
	cb := capturetest.New()
	c := cb.Process(100, "nginx").Accept(0, "10.0.0.1:8080", "10.0.0.2:40000")
	body := strings.Repeat("x", 64<<10)
	for i := 0; i < 64; i++ {
		c.Read(fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: bulk\r\n\r\n", i))
		c.Write("HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n" + body)
	}
	c.Close()
	return cb.Bytes(b)
}

func benchReplay(b *testing.B, data []byte, withPcapng bool) {
	b.Helper()
	var exchanges int
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		in, err := analyze.OpenReader(bytes.NewReader(data), "bench.rwd")
		if err != nil {
			b.Fatal(err)
		}
		cnt := &nopSink{}
		sinks := []analyze.Sink{cnt}
		if withPcapng {
			sinks = append(sinks, New(io.Discard, Options{Version: "bench"}))
		}
		_, err = analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{}, sinks...)
		if err != nil {
			b.Fatal(err)
		}
		exchanges = cnt.n
		in.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(exchanges), "ns/exchange")
}

// BenchmarkReplay compares the replay alone with the replay writing a
// pcapng: the difference is the writer's cost.
func BenchmarkReplay(b *testing.B) {
	sample, err := os.ReadFile("../../testdata/sample.rwd")
	if err != nil {
		b.Fatal(err)
	}
	bulk := bulkCapture(b)
	for _, c := range []struct {
		name string
		data []byte
		mb   float64
	}{{"sample", sample, 0}, {"bulk-4MiB", bulk, 4}} {
		for _, w := range []bool{false, true} {
			name := c.name + "/replay-only"
			if w {
				name = c.name + "/pcapng"
			}
			b.Run(name, func(b *testing.B) {
				if c.mb > 0 {
					b.SetBytes(int64(c.mb * (1 << 20)))
				}
				benchReplay(b, c.data, w)
			})
		}
	}
}
