package pcapng

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/capturetest"
)

func h2get(path string) []string {
	return []string{":method", "GET", ":scheme", "http", ":authority", "example", ":path", path, "user-agent", "test/1", "x-trace", "t-" + path}
}

// grpcMsg is a length-prefixed gRPC message holding a protobuf message
// with one string field of n bytes (n < 128).
func grpcMsg(n int) string {
	pb := "\x0a" + string(rune(n)) + strings.Repeat("m", n)
	var h [5]byte
	binary.BigEndian.PutUint32(h[1:], uint32(len(pb)))
	return string(h[:]) + pb
}

// h2Capture holds HTTP/2 connections of every kind: prior knowledge from
// the start, joined mid-connection (mid-frame, HPACK state unknown), an
// h2c upgrade, and gRPC on a port Wireshark knows nothing about.
func h2Capture(t testing.TB) []byte {
	b := capturetest.New()
	srv := b.Process(100, "h2srv")

	// From the start, server side.
	c := srv.Accept(0, "127.0.0.1:8080", "127.0.0.1:40000")
	cl, sv := capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	c.Read(http2.ClientPreface + cl.Settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536}).Take())
	c.Write(sv.Settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536}).Take())
	c.Read(cl.Headers(1, true, h2get("/a?x=1")...).Headers(3, true, h2get("/b")...).Take())
	c.Write(sv.Headers(3, false, ":status", "404", "server", "s").Data(3, true, "").Take())
	c.Write(sv.Headers(1, false, ":status", "200", "server", "s").Data(1, false, strings.Repeat("x", 40000)).Take())
	c.Write(sv.Data(1, true, "world").Take())
	c.Close()

	// Joined mid-connection: the encoders indexed fields in blocks the
	// capture lacks, and the first bytes are the end of a DATA frame.
	cl, sv = capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	cl.Headers(1, true, h2get("/before")...).Take()
	sv.Headers(1, false, ":status", "200", "server", "s").Data(1, false, "tail-of-body").Take()
	d := srv.Existing(7, "127.0.0.1:8080", "127.0.0.1:40001", capture.RoleServer)
	d.Write("of-body" + sv.Data(1, true, "").Take())
	d.Read(cl.Headers(3, true, h2get("/after")...).Headers(5, true, h2get("/again")...).Take())
	d.Write(sv.Headers(3, false, ":status", "200", "server", "s").Data(3, true, "x").Take())
	d.Write(sv.Headers(5, true, ":status", "304").Take())
	d.Close()

	// h2c upgrade, client side.
	cli := b.Process(200, "curl")
	e := cli.Connect(0, "127.0.0.1:40002", "127.0.0.1:3000")
	cl, sv = capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	e.Write("GET /up HTTP/1.1\r\nHost: example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	e.Read("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + sv.Settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536}).Take())
	e.Write(http2.ClientPreface + cl.Settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536}).Take())
	e.Read(sv.Headers(1, false, ":status", "200").Data(1, true, "upgraded").Take())
	e.Write(cl.Headers(3, true, h2get("/next")...).Take())
	e.Read(sv.Headers(3, true, ":status", "200").Take())
	e.Close()

	// gRPC on 50051.
	g := b.Process(300, "greeter").Accept(0, "127.0.0.1:50051", "127.0.0.1:40003")
	cl, sv = capturetest.NewH2Wire(t), capturetest.NewH2Wire(t)
	req := []string{":method", "POST", ":scheme", "http", ":authority", "svc", ":path", "/helloworld.Greeter/SayHello", "content-type", "application/grpc", "te", "trailers"}
	g.Read(http2.ClientPreface + cl.Settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536}).Take())
	g.Write(sv.Settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536}).Take())
	g.Read(cl.Headers(1, false, req...).Data(1, true, grpcMsg(5)).Take())
	g.Write(sv.Headers(1, false, ":status", "200", "content-type", "application/grpc").Data(1, false, grpcMsg(9)).
		Headers(1, true, "grpc-status", "0").Take())
	g.Read(cl.Headers(3, false, req...).Data(3, true, grpcMsg(1)).Take())
	g.Write(sv.Headers(3, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "14", "grpc-message", "unavailable").Take())
	g.Close()
	return b.Bytes(t)
}

// TestTsharkHTTP2 checks that tshark decodes the headers of every HTTP/2
// stream, those of the connection joined mid-way included.
func TestTsharkHTTP2(t *testing.T) {
	data, rec := run(t, h2Capture(t), Options{Version: "test"})
	file := filepath.Join(t.TempDir(), "h2.pcapng")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := tshark(t, file, "-Y", "_ws.malformed || _ws.expert.severity == error"); out != "" {
		t.Errorf("malformed packets or errors:\n%s", out)
	}
	var paths, statuses []string
	for _, ex := range rec.exs {
		if ex.Proto != "HTTP/2" {
			t.Errorf("exchange %s %s: proto %s", ex.Request.Method, ex.Request.Target, ex.Proto)
		}
		if ex.Request.Proto == "HTTP/2" && ex.Request.Target != "" {
			paths = append(paths, ex.Conn.ID+" "+ex.Request.Target)
		}
		if ex.Response.Status != 0 {
			statuses = append(statuses, ex.Conn.ID+" "+strconv.Itoa(ex.Response.Status))
		}
	}
	sort.Strings(paths)
	sort.Strings(statuses)
	if len(paths) != 7 || len(statuses) != 8 {
		t.Errorf("the replay found %d requests and %d responses, want 7 and 8", len(paths), len(statuses))
	}
	byConn := func(field string) []string {
		var vals []string
		out := tshark(t, file, "-Y", field, "-T", "fields", "-E", "occurrence=a", "-e", "frame.comment", "-e", field)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			cmt, vs, _ := strings.Cut(line, "\t")
			conn, _, _ := strings.Cut(cmt, " ")
			for _, v := range strings.Split(vs, ",") {
				vals = append(vals, conn+" "+v)
			}
		}
		sort.Strings(vals)
		return vals
	}
	if got := byConn("http2.headers.path"); strings.Join(got, "\n") != strings.Join(paths, "\n") {
		t.Errorf("tshark paths:\n%s\nthe replay's:\n%s", strings.Join(got, "\n"), strings.Join(paths, "\n"))
	}
	if got := byConn("http2.headers.status"); strings.Join(got, "\n") != strings.Join(statuses, "\n") {
		t.Errorf("tshark statuses:\n%s\nthe replay's:\n%s", strings.Join(got, "\n"), strings.Join(statuses, "\n"))
	}
	// Joined mid-way: the fields that referenced the unknown table are
	// left out and said so; the rest decode.
	out := tshark(t, file, "-Y", "http2.headers.path == \"/after\"", "-T", "fields", "-e", "frame.comment", "-e", "http2.header.name")
	if !strings.Contains(out, "3 header fields left out") || !strings.Contains(out, ":method,:scheme,:path") {
		t.Errorf("joined connection's request:\n%s", out)
	}
	if out := tshark(t, file, "-Y", "grpc.message_length", "-T", "fields", "-e", "grpc.message_length"); len(strings.Fields(out)) != 3 {
		t.Errorf("tshark gRPC messages: %q, want 3", out)
	}
}
