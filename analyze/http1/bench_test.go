package http1

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

const browserReq = "GET /api/v1/users/12345?fields=name,email HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://app.example.com/users\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=abcdef0123456789; theme=dark\r\n" +
	"Sec-Fetch-Mode: cors\r\n" +
	"Priority: u=4\r\n\r\n"

const smallResp = "HTTP/1.1 200 OK\r\n" +
	"Date: Mon, 02 Jun 2025 10:00:00 GMT\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 49\r\n" +
	"Connection: keep-alive\r\n" +
	"Cache-Control: no-store\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"X-Request-Id: 4f2a9c1e-7d3b-4a8e-9f10-2b6c5d7e8f90\r\n" +
	"Server: nginx/1.27.0\r\n" +
	"Strict-Transport-Security: max-age=31536000\r\n\r\n" +
	`{"id":12345,"name":"Ada","email":"ada@example.c"}`

// BenchmarkKeepAlive parses 100,000 request/response pairs of a keep-alive
// connection, each message written in one chunk as a process would.
func BenchmarkKeepAlive(b *testing.B) {
	if len(smallResp) != bytes.Index([]byte(smallResp), []byte("\r\n\r\n"))+4+49 {
		b.Fatal("response body length")
	}
	const pairs = 100_000
	req, resp := []byte(browserReq), []byte(smallResp)
	rp := NewParser(Request, DefaultOptions())
	sp := NewParser(Response, DefaultOptions())
	n := 0
	emit := func(m *Message) {
		if m.State == Complete {
			n++
			if m.Kind == Request {
				sp.ExpectResponseTo(m.Method)
			}
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(pairs * (len(req) + len(resp))))
	for b.Loop() {
		for i := range pairs {
			ts := bytetime.Times{First: uint64(i), Last: uint64(i)}
			rp.Feed(req, ts, emit)
			sp.Feed(resp, ts, emit)
		}
	}
	if n != 2*pairs*b.N {
		b.Fatalf("%d messages, want %d", n, 2*pairs*b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/msg")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkKeepAliveVarying is BenchmarkKeepAlive with heads that differ
// from one message to the next (a request id in each), as most traffic's
// do: no header block repeats its predecessor.
func BenchmarkKeepAliveVarying(b *testing.B) {
	const pairs = 1000
	var reqs, resps [pairs][]byte
	for i := range pairs {
		reqs[i] = []byte(strings.Replace(browserReq, "Priority: u=4", fmt.Sprintf("X-Trace: %08d", i), 1))
		resps[i] = []byte(strings.Replace(smallResp, "4f2a9c1e", fmt.Sprintf("%08d", i), 1))
	}
	rp := NewParser(Request, DefaultOptions())
	sp := NewParser(Response, DefaultOptions())
	n := 0
	emit := func(m *Message) {
		if m.State == Complete {
			n++
			if m.Kind == Request {
				sp.ExpectResponseTo(m.Method)
			}
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(pairs * (len(reqs[0]) + len(resps[0]))))
	for b.Loop() {
		for i := range pairs {
			ts := bytetime.Times{First: uint64(i), Last: uint64(i)}
			rp.Feed(reqs[i], ts, emit)
			sp.Feed(resps[i], ts, emit)
		}
	}
	if n != 2*pairs*b.N {
		b.Fatalf("%d messages, want %d", n, 2*pairs*b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/msg")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLargeBody parses 1 MiB response bodies, by Content-Length and
// chunked, fed in 64 KiB reads.
func BenchmarkLargeBody(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	for _, chunked := range []bool{false, true} {
		var msg []byte
		if chunked {
			msg = []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			for off := 0; off < len(body); off += 16 << 10 {
				msg = fmt.Appendf(msg, "%x\r\n", 16<<10)
				msg = append(msg, body[off:off+16<<10]...)
				msg = append(msg, "\r\n"...)
			}
			msg = append(msg, "0\r\n\r\n"...)
		} else {
			msg = fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
			msg = append(msg, body...)
		}
		b.Run(fmt.Sprintf("chunked=%v", chunked), func(b *testing.B) {
			p := NewParser(Response, DefaultOptions())
			done := 0
			emit := func(m *Message) {
				if m.State == Complete {
					done++
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				for off := 0; off < len(msg); off += 64 << 10 {
					p.Feed(msg[off:min(off+64<<10, len(msg))], bytetime.Times{}, emit)
				}
			}
			if done != b.N {
				b.Fatalf("%d messages for %d", done, b.N)
			}
		})
	}
}
