package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// needTool skips (or in CI fails) when a program the live test drives is not
// installed.
func needTool(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/", "/usr/local/sbin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	bpftest.Unavailable(t, name+" is not installed (make test-setup with REWIND_SETUP=1 installs it)")
	return ""
}

// systemPython returns the system's python3, not a version manager's shim
// (whose process would not be named python3), else whichever is installed.
func systemPython(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return needTool(t, "python3")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// wwwDir returns a new directory nginx's unprivileged workers can read.
func wwwDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rewind-www")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// nginxServer is an nginx started by a test in its own directory, logging
// every request as "METHOD URI STATUS BODY_BYTES".
type nginxServer struct {
	Port      int
	Dir       string
	AccessLog string
	cmd       *exec.Cmd
}

// startNginx starts nginx on 127.0.0.1 serving root (a directory the caller
// fills) with extra server-block directives.
func startNginx(t *testing.T, root, extra string) *nginxServer {
	t.Helper()
	return startNginxListen(t, root, "", extra)
}

// startNginxListen is startNginx with parameters for the listen directive
// ("ssl" for HTTPS, with ssl_certificate directives in extra).
func startNginxListen(t *testing.T, root, listen, extra string) *nginxServer {
	t.Helper()
	bin := needTool(t, "nginx")
	dir := t.TempDir()
	n := &nginxServer{Port: freePort(t), Dir: dir, AccessLog: filepath.Join(dir, "access.log")}
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  access_log %[1]s/access.log rw;
  log_format rw '$request_method $request_uri $status $body_bytes_sent';
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 10000;
  server {
    listen 127.0.0.1:%[2]d %[5]s;
    root %[3]s;
    %[4]s
  }
}
`, dir, n.Port, root, extra, listen)
	// log_format must precede its use.
	conf = strings.Replace(conf, "  access_log "+dir+"/access.log rw;\n  log_format rw '$request_method $request_uri $status $body_bytes_sent';\n",
		"  log_format rw '$request_method $request_uri $status $body_bytes_sent';\n  access_log "+dir+"/access.log rw;\n", 1)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, "-c", cf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	n.cmd.Stderr = os.Stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	t.Cleanup(func() {
		n.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			n.cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.Port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start: %v\n%s", err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// accessLog returns nginx's log lines, waiting briefly for them to be
// written.
func (n *nginxServer) accessLog(t *testing.T, want int) []string {
	t.Helper()
	var lines []string
	for i := 0; i < 50; i++ {
		b, _ := os.ReadFile(n.AccessLog)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) >= want && lines[0] != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return lines
}

// recording runs the recorder in the background until stop is called.
type recording struct {
	path string
	stop func() *record.Result
}

func startRecording(t *testing.T, opts record.Options) *recording {
	t.Helper()
	bpftest.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "live.rwd")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	var res *record.Result
	var err error
	opts.Ready = func([]string) { close(ready) }
	if opts.Duration == 0 {
		opts.Duration = 60 * time.Second
	}
	go func() {
		defer close(done)
		res, err = record.ToFile(ctx, opts, path)
	}()
	select {
	case <-ready:
	case <-done:
		cancel()
		t.Fatalf("recorder did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("recorder did not attach within 30s")
	}
	var once bool
	r := &recording{path: path}
	r.stop = func() *record.Result {
		if !once {
			once = true
			time.Sleep(300 * time.Millisecond) // let the last events drain
			cancel()
			<-done
			if err != nil {
				t.Fatalf("recording: %v", err)
			}
		}
		return res
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// replayFile analyzes a capture and returns its exchanges.
func replayFile(t *testing.T, path string) ([]*analyze.Exchange, *analyze.Summary) {
	t.Helper()
	in, err := analyze.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var c collector
	sum, err := analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{}, &c)
	if err != nil {
		t.Fatal(err)
	}
	return c.exs, sum
}

type collector struct{ exs []*analyze.Exchange }

func (c *collector) Begin(*analyze.CaptureInfo) error   { return nil }
func (c *collector) Exchange(e *analyze.Exchange) error { c.exs = append(c.exs, e); return nil }
func (c *collector) End(*analyze.Summary) error         { return nil }

// TestLiveCurlNginx records curl fetching 50 URLs over one keep-alive
// connection from nginx and checks both sides' exchanges against nginx's
// access log.
func TestLiveCurlNginx(t *testing.T) {
	bpftest.RequireRoot(t)
	curl := needTool(t, "curl")
	root := wwwDir(t)
	os.WriteFile(filepath.Join(root, "small.txt"), []byte(strings.Repeat("s", 100)), 0o644)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644)
	ngx := startNginx(t, root, "")
	rec := startRecording(t, record.Options{Comms: []string{"nginx", "curl"}, Ports: []int{ngx.Port}, Snaplen: 16 << 10})

	var args []string
	base := fmt.Sprintf("http://127.0.0.1:%d", ngx.Port)
	var want []string // what nginx must log: 30 small, 10 of 1 MiB, 10 404s
	for i := 0; i < 50; i++ {
		var p string
		switch {
		case i%5 == 1:
			p = fmt.Sprintf("/big.bin?n=%d", i)
			want = append(want, fmt.Sprintf("GET %s 200 1048576", p))
		case i%5 == 3:
			p = fmt.Sprintf("/missing-%d", i)
			want = append(want, fmt.Sprintf("GET %s 404 153", p))
		default:
			p = fmt.Sprintf("/small.txt?n=%d", i)
			want = append(want, fmt.Sprintf("GET %s 200 100", p))
		}
		args = append(args, "-o", os.DevNull, base+p)
	}
	// curl reuses one keep-alive connection for all URLs of one invocation;
	// 404s are not errors without --fail.
	if out, err := exec.Command(curl, append([]string{"-sS"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	rec.stop()
	logLines := ngx.accessLog(t, 50)
	if len(logLines) != 50 {
		t.Fatalf("nginx logged %d requests, want 50", len(logLines))
	}

	exs, sum := replayFile(t, rec.path)
	if os.Getenv("KEEP") != "" {
		data, _ := os.ReadFile(rec.path)
		os.WriteFile(os.Getenv("KEEP"), data, 0o644)
	}
	var server, client []*analyze.Exchange
	for _, e := range exs {
		switch {
		case e.Conn.Comm == "nginx" && e.Conn.Role == capture.RoleServer:
			server = append(server, e)
		case e.Conn.Comm == "curl" && e.Conn.Role == capture.RoleClient:
			client = append(client, e)
		}
	}
	if len(server) != 50 || len(client) != 50 {
		t.Fatalf("%d server-side and %d client-side exchanges, want 50 and 50 (all %d, warnings %v)",
			len(server), len(client), len(exs), sum.Warnings)
	}
	for i, line := range logLines {
		if line != want[i] {
			t.Fatalf("nginx logged %q for request %d, want %q: the test set-up is wrong", line, i, want[i])
		}
		// METHOD URI STATUS BODY_BYTES
		var method, uri string
		var status int
		var bytes int64
		fmt.Sscanf(line, "%s %s %d %d", &method, &uri, &status, &bytes)
		s := server[i]
		target := s.Request.Path
		if s.Request.Query != "" {
			target += "?" + s.Request.Query
		}
		got := fmt.Sprintf("%s %s %d %d", s.Request.Method, target, s.Response.Status, s.Response.BodyBytes)
		if got != fmt.Sprintf("%s %s %d %d", method, uri, status, bytes) {
			t.Errorf("server exchange %d: %s, nginx logged %s", i, got, line)
		}
		c := client[i]
		if c.Request.Path+"?"+c.Request.Query != uri && c.Request.Path != uri || c.Response.Status != status || c.Response.BodyBytes != bytes {
			t.Errorf("client exchange %d: %s %s?%s %d %d, nginx logged %s", i, c.Request.Method, c.Request.Path, c.Request.Query,
				c.Response.Status, c.Response.BodyBytes, line)
		}
		// 1 MiB bodies exceed the 16 KiB snaplen: their framing is intact
		// but bytes are missing.
		wantFlags := analyze.Flags(0)
		if status == 200 && bytes == 1<<20 {
			wantFlags = analyze.FlagTruncated
		}
		if s.Flags != wantFlags || c.Flags != wantFlags {
			t.Errorf("exchange %d flags: server %v client %v, want %v", i, s.Flags.Names(), c.Flags.Names(), wantFlags.Names())
		}
		if s.Timings.Server < 0 || s.Timings.Total < s.Timings.Server || c.Timings.Total < s.Timings.Total/2 {
			t.Errorf("exchange %d timings: server %+v client %+v", i, s.Timings, c.Timings)
		}
	}
	if t.Failed() {
		return
	}
	// One keep-alive connection on each side.
	if server[0].Conn.ID != server[49].Conn.ID || client[0].Conn.ID != client[49].Conn.ID {
		t.Errorf("exchanges spread over several connections: want one keep-alive connection")
	}
}
