package analyze_test

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/capturetest"
	"golang.org/x/net/http2"
)

func get(id uint32, path string) []string {
	return []string{":method", "GET", ":scheme", "http", ":authority", "example", ":path", path, "user-agent", "test/1"}
}

// h2Conversation plays a server's side of two concurrent GETs over h2.
func h2Conversation(t *testing.T, c *capturetest.Conn) {
	cl, sv := capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	c.Read(http2.ClientPreface + cl.Settings().Take())
	c.Write(sv.Settings().Take())
	c.Read(cl.Headers(1, true, get(1, "/a?x=1")...).Headers(3, true, get(3, "/b")...).Take())
	c.Write(sv.Headers(3, false, ":status", "404", "content-length", "0").Data(3, true, "").Take())
	c.Write(sv.Headers(1, false, ":status", "200").Data(1, false, "hello ").Take())
	c.Write(sv.Data(1, true, "world").Take())
	c.Read(cl.Headers(5, false, ":method", "POST", ":scheme", "http", ":authority", "example", ":path", "/up").Data(5, false, "abc").Take())
	c.Read(cl.Must(cl.Framer().WriteRSTStream(5, http2.ErrCodeCancel)).Take())
}

var h2Want = []string{
	"c1 server HTTP/2 GET example/b -> 404 req=0 resp=0 flags=[]",
	"c1 server HTTP/2 GET example/a -> 200 req=0 resp=11 flags=[]",
	"c1 server HTTP/2 POST example/up -> 0 req=3 resp=-1 flags=[reset no_response]",
}

func checkLines(t *testing.T, got *collect, want []string) {
	t.Helper()
	var lines []string
	for _, e := range got.exs {
		lines = append(lines, line(e))
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestHTTP2PriorKnowledge(t *testing.T) {
	b := capturetest.New()
	c := b.Process(100, "h2srv").Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	h2Conversation(t, c)
	c.Close()
	got := replay(t, b, analyze.Options{})
	checkLines(t, got, h2Want)
	a := got.exs[1]
	if a.StreamID != 1 || a.Request.Query != "x=1" || a.Request.Header.Get(":method") != "GET" ||
		a.Request.Header.Get("user-agent") != "test/1" || string(a.Response.Body) != "hello world" {
		t.Errorf("exchange %+v", a)
	}
	// request read at +10µs of its call; response's first byte written at
	// the start of a write 2 calls (2 ms) later, last byte at the next.
	if a.Timings.Server != int64(2*time.Millisecond-10*time.Microsecond) || a.Timings.Transfer != int64(time.Millisecond+10*time.Microsecond) {
		t.Errorf("timings %+v", a.Timings)
	}
	if got.sum.HTTPConns != 1 {
		t.Errorf("summary %+v", got.sum)
	}
}

// TestHTTP2DiscardBodies checks that HTTP/2, like HTTP/1, keeps no body
// byte when no sink shows bodies, and still measures every body.
func TestHTTP2DiscardBodies(t *testing.T) {
	b := capturetest.New()
	c := b.Process(100, "h2srv").Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	h2Conversation(t, c)
	c.Close()
	got := replay(t, b, analyze.Options{DiscardBodies: true})
	checkLines(t, got, h2Want)
	for _, e := range got.exs {
		if e.Request.Body != nil || e.Response.Body != nil {
			t.Errorf("stream %d kept a body: %q, %q", e.StreamID, e.Request.Body, e.Response.Body)
		}
	}
}

func TestHTTP2OverTLS(t *testing.T) {
	b := capturetest.New()
	c := b.Process(100, "nginx").Accept(0, "127.0.0.1:443", "127.0.0.1:40000")
	c.Read("\x16\x03\x01\x00\x05hello") // ClientHello ciphertext
	c.TLS(capture.SourceOpenSSL)
	h2Conversation(t, c)
	c.Close()
	got := replay(t, b, analyze.Options{})
	checkLines(t, got, h2Want)
	if len(got.exs) > 0 && got.exs[0].Conn.TLS != "openssl" {
		t.Errorf("tls %q", got.exs[0].Conn.TLS)
	}
}

// A server that writes its SETTINGS before reading the client's preface.
func TestHTTP2ServerSpeaksFirst(t *testing.T) {
	b := capturetest.New()
	c := b.Process(100, "h2srv").Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	cl, sv := capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	c.Write(sv.Settings().Take())
	c.Read(http2.ClientPreface + cl.Settings().Take() + cl.Headers(1, true, get(1, "/")...).Take())
	c.Write(sv.Headers(1, true, ":status", "204").Take())
	c.Close()
	checkLines(t, replay(t, b, analyze.Options{}), []string{"c1 server HTTP/2 GET example/ -> 204 req=0 resp=0 flags=[]"})
}

// The recording joined an HTTP/2 connection: no preface, HPACK state
// unknown; frames are found and fields referencing old entries marked.
func TestHTTP2JoinedMidConnection(t *testing.T) {
	cl, sv := capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	cl.Headers(1, true, get(1, "/before")...).Take() // inserts authority, user-agent
	sv.Headers(1, false, ":status", "200", "server", "s").Take()
	b := capturetest.New()
	c := b.Process(100, "h2srv").Existing(7, "127.0.0.1:8080", "127.0.0.1:40000", capture.RoleServer)
	c.Read(cl.Headers(3, true, get(3, "/after")...).Headers(5, true, get(5, "/again")...).Take())
	c.Write(sv.Headers(3, false, ":status", "200", "server", "s").Data(3, true, "x").Take())
	c.Write(sv.Headers(5, true, ":status", "304").Take())
	got := replay(t, b, analyze.Options{})
	checkLines(t, got, []string{
		"c1 server HTTP/2 GET /after -> 200 req=0 resp=1 flags=[desynced]",
		"c1 server HTTP/2 GET /again -> 304 req=0 resp=0 flags=[desynced]",
	})
	if len(got.exs) > 0 && got.exs[0].Request.Header.Get("user-agent") != "" {
		t.Error("a header referencing an unknown entry was given a value")
	}
}

// h2c upgrade: an HTTP/1.1 request answered by 101, then HTTP/2; stream 1
// answers the upgraded request.
func TestH2CUpgrade(t *testing.T) {
	b := capturetest.New()
	c := b.Process(200, "curl").Connect(0, "127.0.0.1:40000", "127.0.0.1:8080")
	cl, sv := capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	c.Write("GET /up HTTP/1.1\r\nHost: example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	c.Read("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + sv.Settings().Take())
	c.Write(http2.ClientPreface + cl.Settings().Take())
	c.Read(sv.Headers(1, false, ":status", "200").Data(1, true, "upgraded").Take())
	c.Write(cl.Headers(3, true, get(3, "/next")...).Take())
	c.Read(sv.Headers(3, true, ":status", "200").Take())
	c.Close()
	got := replay(t, b, analyze.Options{})
	checkLines(t, got, []string{
		"c1 client HTTP/2 GET example/up -> 200 req=0 resp=8 flags=[upgrade]",
		"c1 client HTTP/2 GET example/next -> 200 req=0 resp=0 flags=[]",
	})
	if len(got.exs) > 0 && got.exs[0].Request.Proto != "HTTP/1.1" {
		t.Errorf("upgraded request proto %q", got.exs[0].Request.Proto)
	}
}

func grpcMsg(n int) string {
	var h [5]byte
	binary.BigEndian.PutUint32(h[1:], uint32(n))
	return string(h[:]) + strings.Repeat("m", n)
}

func TestGRPCPipeline(t *testing.T) {
	b := capturetest.New()
	c := b.Process(300, "greeter").Accept(0, "127.0.0.1:50051", "127.0.0.1:40000")
	cl, sv := capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	req := func(id uint32, m string) []string {
		return []string{":method", "POST", ":scheme", "http", ":authority", "svc", ":path", m, "content-type", "application/grpc", "te", "trailers"}
	}
	c.Read(http2.ClientPreface + cl.Settings().Take())
	c.Write(sv.Settings().Take())
	c.Read(cl.Headers(1, false, req(1, "/helloworld.Greeter/SayHello")...).Data(1, true, grpcMsg(5)).Take())
	c.Write(sv.Headers(1, false, ":status", "200", "content-type", "application/grpc").Data(1, false, grpcMsg(9)).
		Headers(1, true, "grpc-status", "0").Take())
	c.Read(cl.Headers(3, false, req(3, "/route.Guide/ListFeatures")...).Data(3, true, grpcMsg(2)).Take())
	c.Write(sv.Headers(3, false, ":status", "200", "content-type", "application/grpc").Data(3, false, grpcMsg(1)+grpcMsg(2)).Take())
	c.Write(sv.Data(3, false, grpcMsg(3)).Headers(3, true, "grpc-status", "0").Take())
	c.Read(cl.Headers(5, false, req(5, "/helloworld.Greeter/SayHello")...).Data(5, true, grpcMsg(1)).Take())
	c.Write(sv.Headers(5, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "14", "grpc-message", "unavailable%21").Take())
	c.Close()
	got := replay(t, b, analyze.Options{})
	want := []analyze.GRPC{
		{Service: "helloworld.Greeter", Method: "SayHello", Status: 0, RequestMsgs: 1, ResponseMsgs: 1},
		{Service: "route.Guide", Method: "ListFeatures", Status: 0, RequestMsgs: 1, ResponseMsgs: 3},
		{Service: "helloworld.Greeter", Method: "SayHello", Status: 14, Message: "unavailable!", RequestMsgs: 1, ResponseMsgs: 0},
	}
	if len(got.exs) != len(want) {
		t.Fatalf("%d exchanges", len(got.exs))
	}
	for i, e := range got.exs {
		if e.GRPC == nil || *e.GRPC != want[i] {
			t.Errorf("exchange %d: %+v, want %+v", i, e.GRPC, want[i])
		}
	}
	if tr := got.exs[0].Response.Trailer.Get("grpc-status"); tr != "0" {
		t.Errorf("trailer %q", tr)
	}
}
