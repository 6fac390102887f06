//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
	"github.com/rewind-tools/rewind/format/pcapng"
)

// workloadEnv selects a workload the test binary runs instead of its
// tests, in a child process: the recorder never traces its own pid. Every
// live test's helper process is one of the cases below.
const workloadEnv = "REWIND_TEST_WORKLOAD"

func init() {
	switch os.Getenv(workloadEnv) {
	case "":
		return
	case "grpc-server":
		grpcServer(os.Getenv("REWIND_H2_ADDR"))
	case "grpc-client":
		grpcClient(os.Getenv("REWIND_H2_ADDR"))
	case "gotls-server":
		goTLSServer(os.Getenv("REWIND_H2_ADDR"))
	case "gotls-client":
		goTLSClient(os.Getenv("REWIND_H2_ADDR"))
	case "timing-server":
		runTimingServer()
	default:
		fmt.Fprintln(os.Stderr, "unknown workload", os.Getenv(workloadEnv))
		os.Exit(2)
	}
	os.Exit(0)
}

// The gRPC service of the test, described by hand (no generated code):
// Say (unary) echoes, Count (server streaming) sends n messages, Fail
// returns NotFound.
const grpcService = "rewind.test.Echo"

const grpcCountN = 5

var echoDesc = grpc.ServiceDesc{
	ServiceName: grpcService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Say", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return wrapperspb.String("echo " + in.Value), nil
		}},
		{MethodName: "Fail", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(wrapperspb.StringValue)); err != nil {
				return nil, err
			}
			return nil, status.Error(codes.NotFound, "no such thing")
		}},
	},
	Streams: []grpc.StreamDesc{{StreamName: "Count", ServerStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
		if err := s.RecvMsg(new(wrapperspb.StringValue)); err != nil {
			return err
		}
		for i := 0; i < grpcCountN; i++ {
			if err := s.SendMsg(wrapperspb.String(fmt.Sprint(i))); err != nil {
				return err
			}
		}
		return nil
	}}},
}

func grpcServer(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	s.RegisterService(&echoDesc, nil)
	fmt.Println("ready")
	if err := s.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// grpcClient makes 3 Say calls, one Count call and one Fail call on one
// connection.
func grpcClient(addr string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "grpc client:", err)
		os.Exit(1)
	}
	// The recorder attaches to a program it sees exec'd within about
	// 100 ms; give it that before the first call.
	time.Sleep(time.Second)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		out := new(wrapperspb.StringValue)
		if err := conn.Invoke(ctx, "/"+grpcService+"/Say", wrapperspb.String(fmt.Sprint("hi ", i)), out); err != nil {
			fail(err)
		}
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/"+grpcService+"/Count")
	if err != nil {
		fail(err)
	}
	if err := st.SendMsg(wrapperspb.String("go")); err != nil {
		fail(err)
	}
	if err := st.CloseSend(); err != nil {
		fail(err)
	}
	n := 0
	for {
		err := st.RecvMsg(new(wrapperspb.StringValue))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail(err)
		}
		n++
	}
	if n != grpcCountN {
		fail(fmt.Errorf("count: %d messages", n))
	}
	err = conn.Invoke(ctx, "/"+grpcService+"/Fail", wrapperspb.String("x"), new(wrapperspb.StringValue))
	if status.Code(err) != codes.NotFound {
		fail(fmt.Errorf("fail: %v", err))
	}
	fmt.Println("done")
}

// writePcapng replays a capture into a pcapng file and returns its path
// and the replay's exchanges.
func writePcapng(t *testing.T, path string) (string, []*analyze.Exchange) {
	t.Helper()
	in, err := analyze.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var buf bytes.Buffer
	var c collector
	if _, err := analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{}, pcapng.New(&buf, pcapng.Options{Version: "test"}), &c); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "live.pcapng")
	if keep := os.Getenv("KEEP_PCAPNG"); keep != "" {
		os.WriteFile(keep, buf.Bytes(), 0o644)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out, c.exs
}

// tsharkH2 checks that tshark decodes, in the pcapng written from the
// capture at path, as many HTTP/2 requests (header blocks with :path) as
// the replay found (in the connections of comms, when given), and no
// malformed packet; it returns the count.
func tsharkH2(t *testing.T, path string, comms ...string) int {
	t.Helper()
	bin := needTool(t, "tshark")
	file, exs := writePcapng(t, path)
	want := 0
	for _, e := range exs {
		if e.Request.Proto == "HTTP/2" && e.Request.Target != "" && (len(comms) == 0 || slices.Contains(comms, e.Conn.Comm)) {
			want++
		}
	}
	filter := "http2.headers.path"
	if len(comms) > 0 {
		filter += " && frame.comment matches \" comm=(" + strings.Join(comms, "|") + ") \""
	}
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-n", "-r", file}, args...)...)
		cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+t.TempDir(), "LC_ALL=C")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v", args, err)
		}
		return string(out)
	}
	if out := run("-Y", "_ws.malformed"); out != "" {
		t.Errorf("tshark: malformed packets:\n%.2000s", out)
	}
	got := 0
	for _, line := range strings.Split(strings.TrimSpace(run("-Y", filter, "-T", "fields", "-E", "occurrence=a", "-e", "http2.headers.path")), "\n") {
		if line != "" {
			got += len(strings.Split(line, ","))
		}
	}
	if got != want {
		t.Errorf("tshark decodes %d HTTP/2 requests in the pcapng, the replay found %d", got, want)
	}
	return got
}

// countH2 counts the exchanges of one side and returns them as "METHOD
// TARGET STATUS BODY", nginx's access log format.
func countH2(exs []*analyze.Exchange, comm string, role capture.Role) (n int, lines []string) {
	for _, e := range exs {
		if e.Conn.Comm == comm && e.Conn.Role == role {
			n++
			if e.Proto != "HTTP/2" {
				lines = append(lines, "not HTTP/2: "+e.Proto)
			}
			lines = append(lines, fmt.Sprintf("%s %s %d %d", e.Request.Method, e.Request.Target, e.Response.Status, e.Response.BodyBytes))
		}
	}
	return n, lines
}

// TestLiveH2CNginx records h2load and nghttp talking HTTP/2 with prior
// knowledge (h2c) to nginx: the server side must hold every request
// nginx logged, the clients theirs, and tshark must decode them all.
func TestLiveH2CNginx(t *testing.T) {
	bpftest.RequireRoot(t)
	h2load, nghttp := needTool(t, "h2load"), needTool(t, "nghttp")
	root := fillWWW(t)
	ngx := startNginxListen(t, root, "http2", "")
	rec := startRecording(t, record.Options{Ports: []int{ngx.Port}, Snaplen: 16 << 10})
	base := fmt.Sprintf("http://127.0.0.1:%d", ngx.Port)
	// 200 requests over 2 connections, 10 streams at a time.
	runChild(t, h2load, "-n", "200", "-c", "2", "-m", "10", base+"/small.txt")
	// nghttp: one connection, 3 streams in parallel, one of them a 404.
	runChild(t, nghttp, "-n", base+"/small.txt?a=1", base+"/small.txt?a=2", base+"/missing")
	rec.stop()
	logLines := ngx.accessLog(t, 203)
	exs, sum := replayFile(t, rec.path)
	server, lines := countH2(exs, "nginx", capture.RoleServer)
	h2l, _ := countH2(exs, "h2load", capture.RoleClient)
	ngh, _ := countH2(exs, "nghttp", capture.RoleClient)
	t.Logf("nginx logged %d requests; exchanges: nginx %d, h2load %d, nghttp %d (warnings %v)", len(logLines), server, h2l, ngh, sum.Warnings)
	if len(logLines) != 203 || server != len(logLines) {
		t.Fatalf("nginx logged %d requests, the server side has %d exchanges", len(logLines), server)
	}
	if h2l != 200 || ngh != 3 {
		t.Errorf("client side: h2load %d exchanges (want 200), nghttp %d (want 3)", h2l, ngh)
	}
	compareLog(t, logLines, lines)
	t.Logf("tshark decoded %d HTTP/2 requests", tsharkH2(t, rec.path))
}

// compareLog compares nginx's access log with the server-side exchanges,
// as multisets (HTTP/2 streams complete in any order).
func compareLog(t *testing.T, logLines, lines []string) {
	t.Helper()
	n := map[string]int{}
	for _, l := range logLines {
		n[l]++
	}
	for _, l := range lines {
		n[l]--
	}
	for l, k := range n {
		if k != 0 {
			t.Errorf("%q: nginx logged it %d times more than the exchanges hold", l, k)
		}
	}
}

// TestLiveH2TLSNginx records curl --http2 and nghttp fetching pages from
// nginx over HTTPS with HTTP/2 (ALPN h2): the plaintext comes from the
// OpenSSL uprobes.
func TestLiveH2TLSNginx(t *testing.T) {
	bpftest.RequireRoot(t)
	curl, nghttp := needTool(t, "curl"), needTool(t, "nghttp")
	root := fillWWW(t)
	cert, key := makeCert(t)
	ngx := startNginxListen(t, root, "ssl http2", fmt.Sprintf("ssl_certificate %s;\n    ssl_certificate_key %s;", cert, key))
	rec := startRecording(t, record.Options{Ports: []int{ngx.Port}, Snaplen: 16 << 10, TLS: true})
	base := fmt.Sprintf("https://127.0.0.1:%d", ngx.Port)
	var args []string
	for i := 0; i < 10; i++ {
		args = append(args, "-o", os.DevNull, fmt.Sprintf("%s/small.txt?c=%d", base, i))
	}
	runChild(t, curl, append([]string{"-sS", "-k", "--http2"}, args...)...)
	runChild(t, nghttp, "-n", base+"/small.txt?n=1", base+"/missing")
	rec.stop()
	logLines := ngx.accessLog(t, 12)

	in, err := analyze.Open(rec.path)
	if err != nil {
		t.Fatal(err)
	}
	tlsOn := in.Info.Header.Options.TLS
	in.Close()
	exs, sum := replayFile(t, rec.path)
	server, lines := countH2(exs, "nginx", capture.RoleServer)
	cu, _ := countH2(exs, "curl", capture.RoleClient)
	ngh, _ := countH2(exs, "nghttp", capture.RoleClient)
	t.Logf("nginx logged %d requests; exchanges: nginx %d, curl %d, nghttp %d (TLS capture %v, warnings %v)", len(logLines), server, cu, ngh, tlsOn, sum.Warnings)
	if !tlsOn {
		t.Skip("TLS capture not available: the recorder's header says TLS plaintext capture is off")
	}
	if len(logLines) != 12 || server != len(logLines) {
		t.Fatalf("nginx logged %d requests, the server side has %d exchanges", len(logLines), server)
	}
	if cu != 10 || ngh != 2 {
		t.Errorf("client side: curl %d exchanges (want 10), nghttp %d (want 2)", cu, ngh)
	}
	compareLog(t, logLines, lines)
	for _, e := range exs {
		if e.Conn.Comm == "nginx" && e.Conn.TLS != "openssl" {
			t.Errorf("nginx exchange with TLS %q, want openssl", e.Conn.TLS)
			break
		}
	}
	// Both views: nginx's peek at the first byte (recv MSG_PEEK) before
	// its handshake is not recorded, so its stream starts with TLS records
	// that the pipeline recognises and leaves out of the pcapng.
	t.Logf("tshark decoded %d HTTP/2 requests (server and client views)", tsharkH2(t, rec.path))
}

// TestLiveGRPC records a Go gRPC server and client (this test binary,
// re-executed): 3 unary calls, a server-streaming call of 5 messages and a
// call failing with NotFound, seen from both sides.
func TestLiveGRPC(t *testing.T) {
	bpftest.RequireRoot(t)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := append(os.Environ(), "REWIND_H2_ADDR="+addr)
	srv := exec.Command(os.Args[0])
	srv.Env = append(env, workloadEnv+"=grpc-server")
	startChild(t, srv, "ready")
	rec := startRecording(t, record.Options{Ports: []int{port}, Snaplen: 16 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := exec.CommandContext(ctx, os.Args[0])
	cli.Env = append(env, workloadEnv+"=grpc-client")
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("gRPC client: %v\n%s", err, out)
	}
	rec.stop()
	exs, sum := replayFile(t, rec.path)
	server, client := byPID(exs, srv.Process.Pid, cli.Process.Pid)
	want := map[string]int{"Say 0 1 1": 3, fmt.Sprintf("Count 0 1 %d", grpcCountN): 1, "Fail 5 1 0": 1}
	for side, got := range map[string][]*analyze.Exchange{"server": server, "client": client} {
		n := map[string]int{}
		for _, e := range got {
			g := e.GRPC
			if g == nil || g.Service != grpcService || e.Proto != "HTTP/2" {
				t.Errorf("%s: %s %s %s: not a gRPC call of %s (%+v)", side, e.Proto, e.Request.Method, e.Request.Target, grpcService, g)
				continue
			}
			n[fmt.Sprintf("%s %d %d %d", g.Method, g.Status, g.RequestMsgs, g.ResponseMsgs)]++
			if g.Method == "Fail" && g.Message != "no such thing" {
				t.Errorf("%s: grpc-message %q", side, g.Message)
			}
		}
		if fmt.Sprint(n) != fmt.Sprint(want) {
			t.Errorf("%s side gRPC calls (method status reqMsgs respMsgs): %v, want %v (all %d exchanges, warnings %v)", side, n, want, len(exs), sum.Warnings)
		}
	}
	t.Logf("server %d, client %d gRPC exchanges", len(server), len(client))
	t.Logf("tshark decoded %d HTTP/2 requests", tsharkH2(t, rec.path))
}
