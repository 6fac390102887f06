//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// makeCert writes a self-signed EC certificate for localhost and its key
// into a new directory readable by nginx's workers.
func makeCert(t *testing.T) (cert, key string) {
	t.Helper()
	openssl := needTool(t, "openssl")
	dir := wwwDir(t)
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-keyout", key, "-out", cert, "-days", "2", "-nodes", "-subj", "/CN=localhost").CombinedOutput()
	if err != nil {
		t.Fatalf("making a certificate: %v\n%s", err, out)
	}
	os.Chmod(key, 0o644)
	return cert, key
}

// startNginxTLS starts nginx serving root over HTTPS only.
func startNginxTLS(t *testing.T, root string) *nginxServer {
	t.Helper()
	cert, key := makeCert(t)
	return startNginxListen(t, root, "ssl", fmt.Sprintf("ssl_certificate %s;\n    ssl_certificate_key %s;", cert, key))
}

// fdMethods counts, per TLS library, the plaintext calls whose fd came from
// the nested syscall, the per-connection cache, the library's connection
// object, or was not found.
func fdMethods(t *testing.T, path string) map[string]map[string]int {
	t.Helper()
	if keep := os.Getenv("KEEP"); keep != "" {
		data, _ := os.ReadFile(path)
		os.WriteFile(keep, data, 0o644)
	}
	r := openCapture(t, path)
	out := map[string]map[string]int{}
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		d, ok := ev.(*capture.Data)
		if !ok || !d.Source.IsTLS() || d.Offset != 0 {
			continue
		}
		m := out[d.Source.String()]
		if m == nil {
			m = map[string]int{}
			out[d.Source.String()] = m
		}
		switch {
		case d.Flags&capture.DataFDNested != 0:
			m["nested"]++
		case d.Flags&capture.DataFDCached != 0:
			m["cached"]++
		case d.Flags&capture.DataFDUnknown != 0:
			m["unknown"]++
		case d.Flags&capture.DataFDObject != 0:
			m["object"]++
		default:
			t.Errorf("TLS plaintext event without an fd-method flag: %+v", d)
		}
	}
	t.Logf("TLS plaintext calls by fd method: %v", out)
	return out
}

// exchangeLine renders an exchange like the nginx access log of these tests:
// "METHOD URI STATUS BODY_BYTES".
func exchangeLine(e *analyze.Exchange) string {
	target := e.Request.Path
	if e.Request.Query != "" {
		target += "?" + e.Request.Query
	}
	return fmt.Sprintf("%s %s %d %d", e.Request.Method, target, e.Response.Status, e.Response.BodyBytes)
}

func sortedLines(exs []*analyze.Exchange) []string {
	var out []string
	for _, e := range exs {
		out = append(out, exchangeLine(e))
	}
	slices.Sort(out)
	return out
}

// checkTLS fails t unless every exchange went over TLS with library lib.
func checkTLS(t *testing.T, side string, exs []*analyze.Exchange, lib string) {
	t.Helper()
	for _, e := range exs {
		if e.Conn.TLS != lib {
			t.Errorf("%s exchange %s: tls %q, want %q", side, exchangeLine(e), e.Conn.TLS, lib)
			return
		}
	}
}

// fillWWW writes the files the HTTPS tests fetch: 100 B, 64 KiB and 1 MiB.
func fillWWW(t *testing.T) string {
	t.Helper()
	root := wwwDir(t)
	for name, n := range map[string]int{"small.txt": 100, "mid.bin": 64 << 10, "big.bin": 1 << 20} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestLiveTLSCurlNginx records curl (OpenSSL 3) fetching 200 URLs from
// nginx over HTTPS on four keep-alive connections (curl is started after the
// recording began) and checks both sides' exchanges against nginx's access
// log.
func TestLiveTLSCurlNginx(t *testing.T) {
	bpftest.RequireRoot(t)
	curl := needTool(t, "curl")
	ngx := startNginxTLS(t, fillWWW(t))
	rec := startRecording(t, record.Options{Comms: []string{"nginx", "curl"}, Ports: []int{ngx.Port}, TLS: true})

	base := fmt.Sprintf("https://127.0.0.1:%d", ngx.Port)
	var want []string
	for batch := 0; batch < 4; batch++ {
		args := []string{"-sS", "-k", "--max-time", "60"}
		for i := 0; i < 50; i++ {
			n := batch*50 + i
			var p string
			switch n % 6 {
			case 1:
				p = fmt.Sprintf("/big.bin?n=%d", n)
				want = append(want, fmt.Sprintf("GET %s 200 %d", p, 1<<20))
			case 3:
				p = fmt.Sprintf("/missing-%d", n)
				want = append(want, fmt.Sprintf("GET %s 404 153", p))
			case 4:
				p = fmt.Sprintf("/mid.bin?n=%d", n)
				want = append(want, fmt.Sprintf("GET %s 200 %d", p, 64<<10))
			default:
				p = fmt.Sprintf("/small.txt?n=%d", n)
				want = append(want, fmt.Sprintf("GET %s 200 100", p))
			}
			args = append(args, "-o", os.DevNull, base+p)
		}
		if out, err := exec.Command(curl, args...).CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
	}
	rec.stop()
	logLines := ngx.accessLog(t, len(want))
	slices.Sort(want)
	if got := slices.Sorted(slices.Values(logLines)); !slices.Equal(got, want) {
		t.Fatalf("nginx logged %d requests, not the %d expected: the test set-up is wrong", len(logLines), len(want))
	}

	exs, sum := replayFile(t, rec.path)
	methods := fdMethods(t, rec.path)
	var server, client []*analyze.Exchange
	for _, e := range exs {
		switch {
		case e.Conn.Comm == "nginx" && e.Conn.Role == capture.RoleServer:
			server = append(server, e)
		case e.Conn.Comm == "curl" && e.Conn.Role == capture.RoleClient:
			client = append(client, e)
		}
	}
	if len(server) != len(want) || len(client) != len(want) {
		t.Fatalf("%d server-side and %d client-side exchanges, want %d each (all %d, warnings %v)",
			len(server), len(client), len(want), len(exs), sum.Warnings)
	}
	checkTLS(t, "server", server, "openssl")
	checkTLS(t, "client", client, "openssl")
	if got := sortedLines(server); !slices.Equal(got, want) {
		t.Errorf("server exchanges differ from nginx's access log:\n%s", lineDiff(got, want))
	}
	if got := sortedLines(client); !slices.Equal(got, want) {
		t.Errorf("client exchanges differ from nginx's access log:\n%s", lineDiff(got, want))
	}
	if methods["openssl"]["nested"] == 0 {
		t.Errorf("no plaintext call found its fd through the nested syscall: %v", methods)
	}
}

// lineDiff shows the first lines where got and want differ.
func lineDiff(got, want []string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < max(len(got), len(want)) && n < 10; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			fmt.Fprintf(&b, "  %d: got %q want %q\n", i, g, w)
			n++
		}
	}
	return b.String()
}

// pythonTLS is a Python HTTPS server (http.server over the ssl module,
// keep-alive) and client (http.client), both using the system's OpenSSL
// through the ssl module.
const pythonTLS = `
import http.client, http.server, ssl, sys

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        n = int(self.path.split("=")[1])
        body = b"p" * n
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

if sys.argv[1] == "server":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), H)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready", flush=True)
    srv.serve_forever()
else:
    ctx = ssl._create_unverified_context()
    c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[2]), context=ctx, timeout=30)
    for i in range(20):
        c.request("GET", "/x?n=%d" % (i * 1000))
        r = c.getresponse()
        assert len(r.read()) == i * 1000
    print("done", flush=True)
`

// startChild starts cmd, kills it at the end of the test, and waits until
// its stdout says ready (when ready is not empty).
func startChild(t *testing.T, cmd *exec.Cmd, ready string) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if ready == "" {
		return
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s ended before saying %q", cmd.Path, ready)
			}
			if strings.Contains(l, ready) {
				go func() {
					for range lines {
					}
				}()
				return
			}
		case <-timeout:
			t.Fatalf("%s did not say %q within 30s", cmd.Path, ready)
		}
	}
}

// runChild runs cmd to its end within a timeout.
func runChild(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// byPID splits exchanges into the server side of pid server and the client
// side of pid client.
func byPID(exs []*analyze.Exchange, server, client int) (srv, cli []*analyze.Exchange) {
	for _, e := range exs {
		switch {
		case int(e.Conn.PID) == server && e.Conn.Role == capture.RoleServer:
			srv = append(srv, e)
		case int(e.Conn.PID) == client && e.Conn.Role == capture.RoleClient:
			cli = append(cli, e)
		}
	}
	return srv, cli
}

// TestLiveTLSPython records a Python HTTPS client and server (the ssl
// module over OpenSSL: SSL_read_ex and SSL_write_ex), 20 requests on one
// keep-alive connection.
func TestLiveTLSPython(t *testing.T) {
	bpftest.RequireRoot(t)
	python := needTool(t, "python3")
	testPythonTLS(t, func(args ...string) *exec.Cmd { return exec.Command(python, args...) })
}

// TestLiveTLSPythonOpenSSL35 is TestLiveTLSPython over a second OpenSSL
// build, Debian 13's 3.5 (scripts/test-setup.sh unpacks it and its C
// library into .cache/trixie; the machine's python3 runs on them through
// their ld.so). Its functions begin with endbr64, and SSL_write_ex moves
// its out argument to r8 and jumps to SSL_write_ex2: the probes go on the
// jump (the out argument read from r8) and inside ssl_write_internal.
func TestLiveTLSPythonOpenSSL35(t *testing.T) {
	bpftest.RequireRoot(t)
	needTool(t, "python3")
	lib, err := filepath.Abs(filepath.Join("..", "..", ".cache", "trixie", "usr", "lib", "x86_64-linux-gnu"))
	if err != nil {
		t.Fatal(err)
	}
	ldso := filepath.Join(lib, "ld-linux-x86-64.so.2")
	if _, err := os.Stat(filepath.Join(lib, "libssl.so.3")); err != nil || runtime.GOARCH != "amd64" {
		bpftest.Unavailable(t, "Debian 13's OpenSSL is not unpacked in .cache/trixie (REWIND_SETUP=1 scripts/test-setup.sh does it)")
	}
	run := func(args ...string) *exec.Cmd {
		return exec.Command(ldso, append([]string{"--library-path", lib, "/usr/bin/python3"}, args...)...)
	}
	out, err := run("-c", "import ssl; print(ssl.OPENSSL_VERSION)").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "OpenSSL 3.5") {
		t.Fatalf("python3 over Debian 13's OpenSSL: %v: %s", err, out)
	}
	path := testPythonTLS(t, run)
	var probes []string
	for _, p := range openCapture(t, path).Header().Probes {
		if strings.Contains(p, filepath.Join(lib, "libssl.so.3")) {
			probes = append(probes, p)
		}
	}
	for _, want := range []string{":SSL_read,SSL_read_ex>internal@", ":SSL_write,SSL_write_ex2>internal@", ":SSL_write_ex@"} {
		if !slices.ContainsFunc(probes, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("no probe %q on the OpenSSL 3.5 libssl: %v", want, probes)
		}
	}
}

// testPythonTLS runs the pythonTLS server and client through run (a
// python3 command with its arguments), records them and checks both sides'
// exchanges; it returns the capture's path.
func testPythonTLS(t *testing.T, run func(args ...string) *exec.Cmd) string {
	t.Helper()
	cert, key := makeCert(t)
	script := filepath.Join(t.TempDir(), "tls.py")
	if err := os.WriteFile(script, []byte(pythonTLS), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	srv := run(script, "server", fmt.Sprint(port), cert, key)
	startChild(t, srv, "ready")
	rec := startRecording(t, record.Options{Ports: []int{port}, TLS: true})
	cli := run(script, "client", fmt.Sprint(port))
	out, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	rec.stop()

	exs, sum := replayFile(t, rec.path)
	methods := fdMethods(t, rec.path)
	server, client := byPID(exs, srv.Process.Pid, cli.Process.Pid)
	if len(server) != 20 || len(client) != 20 {
		t.Fatalf("%d server-side and %d client-side exchanges, want 20 each (all %d, warnings %v)",
			len(server), len(client), len(exs), sum.Warnings)
	}
	checkTLS(t, "server", server, "openssl")
	checkTLS(t, "client", client, "openssl")
	var want []string
	for i := 0; i < 20; i++ {
		want = append(want, fmt.Sprintf("GET /x?n=%d 200 %d", i*1000, i*1000))
	}
	slices.Sort(want)
	for side, got := range map[string][]string{"server": sortedLines(server), "client": sortedLines(client)} {
		if !slices.Equal(got, want) {
			t.Errorf("%s exchanges:\n%s", side, lineDiff(got, want))
		}
	}
	if server[0].Conn.ID != server[19].Conn.ID || client[0].Conn.ID != client[19].Conn.ID {
		t.Errorf("exchanges spread over several connections: want one keep-alive connection")
	}
	if methods["openssl"]["nested"] == 0 {
		t.Errorf("no plaintext call found its fd through the nested syscall: %v", methods)
	}
	return rec.path
}

// goTLS is a Go HTTPS server and client (net/http over crypto/tls).
const goTLS = `package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := "127.0.0.1:" + os.Args[2]
	if os.Args[1] == "server" {
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			w.Header().Set("Content-Length", strconv.Itoa(n))
			w.Write([]byte(strings.Repeat("g", n)))
		})
		srv := &http.Server{Addr: addr, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
		go func() { time.Sleep(100 * time.Millisecond); fmt.Println("ready") }()
		fmt.Fprintln(os.Stderr, srv.ListenAndServeTLS(os.Args[3], os.Args[4]))
		os.Exit(1)
	}
	// The recorder attaches to a program it sees exec'd within about 100 ms;
	// give it that before the first request.
	time.Sleep(time.Second)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: false,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	for i := 0; i < 20; i++ {
		resp, err := c.Get(fmt.Sprintf("https://%s/g?n=%d", addr, i*5000))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) != i*5000 {
			fmt.Fprintln(os.Stderr, "short body", len(b))
			os.Exit(1)
		}
	}
	fmt.Println("done")
}
`

// TestLiveTLSGo records a Go HTTPS server and client built by the test
// (crypto/tls, HTTP/1.1), the client started after the recording began.
func TestLiveTLSGo(t *testing.T) {
	bpftest.RequireRoot(t)
	goBin := needTool(t, "go")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(goTLS), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gotls\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gotls")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cert, key := makeCert(t)
	port := freePort(t)
	srv := exec.Command(bin, "server", fmt.Sprint(port), cert, key)
	startChild(t, srv, "ready")
	rec := startRecording(t, record.Options{Ports: []int{port}, TLS: true})
	cli := exec.Command(bin, "client", fmt.Sprint(port))
	out, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("go client: %v\n%s", err, out)
	}
	rec.stop()

	exs, sum := replayFile(t, rec.path)
	methods := fdMethods(t, rec.path)
	server, client := byPID(exs, srv.Process.Pid, cli.Process.Pid)
	if len(server) != 20 || len(client) != 20 {
		t.Fatalf("%d server-side and %d client-side exchanges, want 20 each (all %d, warnings %v)\nserver %q\nclient %q",
			len(server), len(client), len(exs), sum.Warnings, sortedLines(server), sortedLines(client))
	}
	checkTLS(t, "server", server, "go-tls")
	checkTLS(t, "client", client, "go-tls")
	var want []string
	for i := 0; i < 20; i++ {
		want = append(want, fmt.Sprintf("GET /g?n=%d 200 %d", i*5000, i*5000))
	}
	slices.Sort(want)
	for side, got := range map[string][]string{"server": sortedLines(server), "client": sortedLines(client)} {
		if !slices.Equal(got, want) {
			t.Errorf("%s exchanges:\n%s", side, lineDiff(got, want))
		}
	}
	if m := methods["go-tls"]; m["object"] == 0 || m["unknown"] != 0 {
		t.Errorf("Go plaintext fds: want all from the *tls.Conn walk, got %v", m)
	}
}

// TestLiveTLSGnuTLS records gnutls-cli fetching a page from nginx over
// HTTPS: the client side through GnuTLS, the server side through OpenSSL.
func TestLiveTLSGnuTLS(t *testing.T) {
	bpftest.RequireRoot(t)
	cli := needTool(t, "gnutls-cli")
	ngx := startNginxTLS(t, fillWWW(t))
	rec := startRecording(t, record.Options{Ports: []int{ngx.Port}, TLS: true})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "--insecure", "--port", fmt.Sprint(ngx.Port), "127.0.0.1")
	// stdin stays open until nginx closes the connection after the second
	// response (gnutls-cli would hang up at EOF before reading it).
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var outBuf strings.Builder
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "GET /small.txt?n=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"+
		"GET /mid.bin?n=2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	err = cmd.Wait()
	stdin.Close()
	out := outBuf.String()
	if !strings.Contains(out, "HTTP/1.1 200") {
		t.Fatalf("gnutls-cli: %v\n%s", err, out)
	}
	rec.stop()
	want := []string{"GET /mid.bin?n=2 200 65536", "GET /small.txt?n=1 200 100"}
	if got := slices.Sorted(slices.Values(ngx.accessLog(t, 2))); !slices.Equal(got, want) {
		t.Fatalf("nginx logged %q, want %q: the test set-up is wrong", got, want)
	}

	exs, sum := replayFile(t, rec.path)
	methods := fdMethods(t, rec.path)
	var server, client []*analyze.Exchange
	for _, e := range exs {
		switch {
		case e.Conn.Comm == "nginx" && e.Conn.Role == capture.RoleServer:
			server = append(server, e)
		case e.Conn.Comm == "gnutls-cli" && e.Conn.Role == capture.RoleClient:
			client = append(client, e)
		}
	}
	if got := sortedLines(client); !slices.Equal(got, want) {
		t.Fatalf("gnutls-cli exchanges %q, want %q (all %d, warnings %v)", got, want, len(exs), sum.Warnings)
	}
	if got := sortedLines(server); !slices.Equal(got, want) {
		t.Errorf("nginx exchanges %q, want %q", got, want)
	}
	checkTLS(t, "client", client, "gnutls")
	checkTLS(t, "server", server, "openssl")
	if methods["gnutls"]["nested"] == 0 {
		t.Errorf("no GnuTLS plaintext call found its fd through the nested syscall: %v", methods)
	}
}
