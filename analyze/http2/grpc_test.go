package http2

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// grpcMsg is one length-prefixed gRPC message of n bytes.
func grpcMsg(n int) string {
	var h [5]byte
	binary.BigEndian.PutUint32(h[1:], uint32(n))
	return string(h[:]) + strings.Repeat("m", n)
}

func grpcRequest(c *conv, id uint32, method string) {
	c.headers(0, id, false, ":method: POST", ":scheme: http", ":authority: svc:50051", ":path: "+method,
		"content-type: application/grpc", "te: trailers")
}

func TestGRPC(t *testing.T) {
	c := newConv(t).preface()
	// unary
	grpcRequest(c, 1, "/helloworld.Greeter/SayHello")
	c.data(0, 1, true, grpcMsg(7), 0)
	c.flush(0)
	c.headers(1, 1, false, ":status: 200", "content-type: application/grpc")
	c.data(1, 1, false, grpcMsg(12), 0)
	c.headers(1, 1, true, "grpc-status: 0")
	c.flush(1)
	// server streaming: 3 messages, the second split across DATA frames
	grpcRequest(c, 3, "/route.Guide/ListFeatures")
	c.data(0, 3, true, grpcMsg(4), 0)
	c.flush(0)
	c.headers(1, 3, false, ":status: 200", "content-type: application/grpc+proto")
	m := grpcMsg(100)
	c.data(1, 3, false, grpcMsg(10)+m[:3], 0)
	c.flush(1)
	c.data(1, 3, false, m[3:]+grpcMsg(0), 2)
	c.headers(1, 3, true, "grpc-status: 0")
	c.flush(1)
	// error status, trailers-only response
	grpcRequest(c, 5, "/helloworld.Greeter/SayHello")
	c.data(0, 5, true, grpcMsg(3), 0)
	c.flush(0)
	c.headers(1, 5, true, ":status: 200", "content-type: application/grpc", "grpc-status: 5", "grpc-message: not%20found")
	c.flush(1)
	got, _ := run(client0, c.writes, nil)
	check(t, got, []string{
		"1 [:method=POST :scheme=http :authority=svc:50051 :path=/helloworld.Greeter/SayHello content-type=application/grpc te=trailers] body=12 [:status=200 content-type=application/grpc] body=17 trailer=[grpc-status=0] unknown=0/0 grpc=1/7,1/12 []",
		"3 [:method=POST :scheme=http :authority=svc:50051 :path=/route.Guide/ListFeatures content-type=application/grpc te=trailers] body=9 [:status=200 content-type=application/grpc+proto] body=125 trailer=[grpc-status=0] unknown=0/0 grpc=1/4,3/110 []",
		"5 [:method=POST :scheme=http :authority=svc:50051 :path=/helloworld.Greeter/SayHello content-type=application/grpc te=trailers] body=8 [:status=200 content-type=application/grpc grpc-status=5 grpc-message=not%20found] body=0 trailer=[] unknown=0/0 grpc=1/3,0/0 []",
	})
	for _, tc := range []struct{ path, svc, method string }{
		{"/helloworld.Greeter/SayHello", "helloworld.Greeter", "SayHello"},
		{"/a/b/c", "", ""}, {"/x", "", ""}, {"//m", "", ""},
	} {
		if s, m, _ := GRPCMethod(tc.path); s != tc.svc || m != tc.method {
			t.Errorf("%s: %q %q", tc.path, s, m)
		}
	}
	if !IsGRPC("application/grpc") || !IsGRPC("application/grpc+json") || IsGRPC("application/grpcx") {
		t.Error("IsGRPC")
	}
}

// gapConv is a conversation of two streams; the write at gapAt carries
// stream 1's last DATA frame (9 bytes of header, 100 of payload).
func gapConv(t *testing.T) (c *conv, gapAt int) {
	c = newConv(t).preface()
	c.headers(0, 1, true, ":method: GET", ":scheme: http", ":authority: h", ":path: /one")
	c.flush(0)
	c.headers(1, 1, false, ":status: 200", "x-a: 1")
	c.data(1, 1, false, strings.Repeat("x", 100), 0)
	c.flush(1)
	gapAt = len(c.writes)
	c.data(1, 1, true, strings.Repeat("y", 100), 0)
	c.flush(1)
	c.headers(0, 3, true, ":method: GET", ":scheme: http", ":authority: h", ":path: /two")
	c.flush(0)
	c.headers(1, 3, false, ":status: 200", "x-a: 1")
	c.data(1, 3, true, "z", 0)
	c.flush(1)
	return c, gapAt
}

// feedWithGap feeds c's writes, losing n bytes of the write at gapAt after
// its first `at` bytes.
func feedWithGap(c *conv, gapAt, at, n int) (*Conn, []string) {
	var out []string
	conn := NewConn(client0, func(s *Stream) { out = append(out, summary(s)) })
	for i, w := range c.writes {
		b := w.b
		if i == gapAt {
			conn.Feed(w.wire, b[:at], bytetime.Times{First: 1, Last: 1})
			conn.Gap(w.wire, int64(n), bytetime.Times{First: 1, Last: 1})
			b = b[at+n:]
		}
		conn.Feed(w.wire, b, bytetime.Times{First: 2, Last: 2})
	}
	conn.Close(bytetime.Times{First: 3, Last: 3})
	return conn, out
}

// A gap inside a DATA frame's payload (a write longer than the snaplen)
// keeps frame sync: the body counts the frame's whole length, the stream is
// flagged missing and nothing else is lost.
func TestGapInData(t *testing.T) {
	c, gapAt := gapConv(t)
	conn, out := feedWithGap(c, gapAt, 10, 30)
	check(t, out, []string{
		"1 [:method=GET :scheme=http :authority=h :path=/one] body=0 [:status=200 x-a=1] body=200 trailer=[] unknown=0/0 [missing]",
		"3 [:method=GET :scheme=http :authority=h :path=/two] body=0 [:status=200 x-a=1] body=1 trailer=[] unknown=0/0 []",
	})
	if st := conn.Stats(); st.Resyncs != 0 || st.CutFrames != 1 || st.SkippedBytes != 0 {
		t.Errorf("stats %+v", st)
	}
	// Several gaps in one frame, the last one ending with it.
	conn2 := NewConn(client0, func(*Stream) {})
	for i, w := range c.writes {
		b := w.b
		if i == gapAt {
			conn2.Feed(w.wire, b[:20], bytetime.Times{First: 1, Last: 1})
			conn2.Gap(w.wire, 30, bytetime.Times{First: 1, Last: 1})
			conn2.Feed(w.wire, b[50:60], bytetime.Times{First: 1, Last: 1})
			conn2.Gap(w.wire, 49, bytetime.Times{First: 1, Last: 1}) // to the frame's end (9 + 100)
			b = b[109:]
		}
		conn2.Feed(w.wire, b, bytetime.Times{First: 2, Last: 2})
	}
	conn2.Close(bytetime.Times{First: 3, Last: 3})
	if st := conn2.Stats(); st.Resyncs != 0 || st.CutFrames != 1 {
		t.Errorf("two gaps in one frame: stats %+v", st)
	}
}

// A gap that takes part of a frame header loses frame sync: the streams
// open then are marked (and emitted at the end, as they never end), frames
// are found again by scanning, and later streams parse (their header
// fields that reference the now unknown HPACK table are marked).
func TestGapResync(t *testing.T) {
	c, gapAt := gapConv(t)
	conn, out := feedWithGap(c, gapAt, 5, 30)
	check(t, out, []string{
		"3 [:method=GET :scheme=http :authority=h :path=/two] body=0 [:status=200] body=1 trailer=[] unknown=0/1 [desynced]",
		"1 [:method=GET :scheme=http :authority=h :path=/one] body=0 [:status=200 x-a=1] body=100 trailer=[] unknown=0/0 [incomplete desynced]",
	})
	if st := conn.Stats(); st.Resyncs != 1 || st.SkippedBytes != 5+74 {
		t.Errorf("stats %+v", st)
	}
}
