//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// pythonUploads is the client of TestLivePythonEarlyAnswer: Python's
// requests library POSTs pythonUploadCount bodies of 0 to 100 KB over one
// keep-alive HTTPS session (its TLS is the ssl module over OpenSSL).
const pythonUploads = `
import sys, requests, urllib3
urllib3.disable_warnings()
base, count = sys.argv[1], int(sys.argv[2])
s = requests.Session()
for i in range(count):
    n = (i * 7919) % 100001
    r = s.post(base + "/early?i=%d" % i, data=b"p" * n, verify=False, timeout=30)
    r.raise_for_status()
print("done", flush=True)
`

const pythonUploadCount = 60

func pythonUploadSize(i int) int { return (i * 7919) % 100001 }

// needPython returns a python3 that has the requests library (the
// machine's own, or Debian's python3-requests that test-setup installs).
func needPython(t *testing.T, modules ...string) string {
	t.Helper()
	var tried []string
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		check := "import " + strings.Join(append([]string{"sys"}, modules...), ", ")
		if out, err := exec.Command(path, "-c", check).CombinedOutput(); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %s", path, strings.TrimSpace(string(out))))
			continue
		}
		return path
	}
	msg := fmt.Sprintf("no python3 with %v (tried %v; make test-setup with REWIND_SETUP=1 installs python3-requests)", modules, tried)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestLivePythonEarlyAnswer is #18's first case as a user hit it: Python
// requests POSTing 60 bodies of 0–100 KB over HTTPS to an nginx location
// that answers before reading the body (`return 200`). nginx reads each
// body after its answer; every upload's length must be exact and
// unflagged on both sides (the old code lost most of nginx's side).
func TestLivePythonEarlyAnswer(t *testing.T) {
	bpftest.RequireRoot(t)
	python := needPython(t, "requests")
	ngx, scheme := startNginxAnswering(t, "/early", true)
	script := filepath.Join(t.TempDir(), "uploads.py")
	if err := os.WriteFile(script, []byte(pythonUploads), 0o644); err != nil {
		t.Fatal(err)
	}
	// The snaplen takes whole uploads: cut ones are flagged truncated,
	// rightly, and this test wants them exact and unflagged.
	rec := startRecording(t, record.Options{Comms: []string{"nginx", "python3"}, Ports: []int{ngx.Port}, TLS: true, Snaplen: 256 << 10})
	cmd := exec.Command(python, script, fmt.Sprintf("%s://127.0.0.1:%d", scheme, ngx.Port), strconv.Itoa(pythonUploadCount))
	if out, err := runBounded(cmd, 60*time.Second); err != nil || !strings.Contains(out, "done") {
		t.Fatalf("python requests: %v\n%s", err, out)
	}
	rec.stop()

	var want []string
	total := 0
	for i := range pythonUploadCount {
		want = append(want, fmt.Sprintf("POST /early?i=%d 200 %d", i, pythonUploadSize(i)))
		total += pythonUploadSize(i)
	}
	slices.Sort(want)
	exs, sum := replayFile(t, rec.path)
	for _, side := range []struct {
		comm string
		role capture.Role
	}{{"nginx", capture.RoleServer}, {"python3", capture.RoleClient}} {
		got, bytes := uploadLines(exs, side.comm, side.role)
		if !slices.Equal(got, want) {
			t.Errorf("%s side (warnings %v):\n%s", side.comm, sum.Warnings, lineDiff(got, want))
		}
		t.Logf("%s: %d exchanges, %d request body bytes (sent %d)", side.comm, len(got), bytes, total)
	}
}

// answerFirstServer is a minimal HTTP server on a plain socket that
// sends its 200 as soon as it has a request's head, then reads the
// Content-Length bytes of the body, and prints how many it read.
const answerFirstServer = `
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
print(srv.getsockname()[1], flush=True)
for _ in range(int(sys.argv[1])):
    c, _ = srv.accept()
    c.settimeout(20)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            break
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    got = len(rest)
    while got < n:
        d = c.recv(65536)
        if not d:
            break
        got += len(d)
    print("read", got, flush=True)
    c.close()
`

// TestLiveAnswerFirstSocket is #18's minimal case: a plain-HTTP socket
// server that answers 200 and only then reads the Content-Length bytes
// curl uploads (3 × 100 KB). The bodies belong to their requests whenever
// they arrive: both sides must count what the server read.
func TestLiveAnswerFirstSocket(t *testing.T) {
	bpftest.RequireRoot(t)
	python := needPython(t)
	curl := needTool(t, "curl")
	const uploads, size = 3, 100000
	script := filepath.Join(t.TempDir(), "server.py")
	if err := os.WriteFile(script, []byte(answerFirstServer), 0o644); err != nil {
		t.Fatal(err)
	}
	body := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(body, []byte(strings.Repeat("u", size)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, next := startWithLines(t, exec.Command(python, script, strconv.Itoa(uploads)))
	port, err := strconv.Atoi(next())
	if err != nil {
		t.Fatalf("python server: no port: %v", err)
	}
	rec := startRecording(t, record.Options{Comms: []string{"python3", "curl"}, Ports: []int{port}, Snaplen: 256 << 10})
	var want []string
	for i := range uploads {
		// No Expect: 100-continue, which would let curl wait for the
		// answer and send no body.
		cmd := exec.Command(curl, "-sS", "-o", os.DevNull, "-H", "Expect:", "--data-binary", "@"+body, fmt.Sprintf("http://127.0.0.1:%d/early?i=%d", port, i))
		if out, err := runBounded(cmd, 30*time.Second); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
		read := next()
		if read != fmt.Sprintf("read %d", size) {
			t.Fatalf("upload %d: the server says %q, want %q", i, read, fmt.Sprintf("read %d", size))
		}
		want = append(want, fmt.Sprintf("POST /early?i=%d 200 %d", i, size))
	}
	rec.stop()
	exs, sum := replayFile(t, rec.path)
	for _, side := range []struct {
		comm string
		role capture.Role
	}{{"python3", capture.RoleServer}, {"curl", capture.RoleClient}} {
		if got, _ := uploadLines(exs, side.comm, side.role); !slices.Equal(got, want) {
			t.Errorf("%s side (warnings %v):\n%s", side.comm, sum.Warnings, lineDiff(got, want))
		}
	}
}

// sloppyConnect is a CONNECT "proxy" and its client in one Python
// process: the client sends a request line with a stray word
// (`CONNECT mail.example:25 / HTTP/1.0`), the proxy answers 200, and the
// two then talk SMTP through the tunnel.
const sloppyConnect = `
import socket, threading
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
def proxy():
    c, _ = srv.accept()
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += c.recv(4096)
    c.sendall(b"HTTP/1.0 200 Connection established\r\n\r\n")
    c.sendall(b"220 mail.example ESMTP\r\n")
    c.recv(4096)
    c.sendall(b"250 mail.example\r\n")
    c.recv(4096)
    c.sendall(b"221 bye\r\n")
    c.close()
print(srv.getsockname()[1], flush=True)
input()
# accept() is entered once the recording runs: a connection accepted in a
# call that began before it is taken as joined mid-stream, whose first
# request line must be a well-formed one.
th = threading.Thread(target=proxy)
th.start()
cl = socket.create_connection(srv.getsockname())
cl.sendall(b"CONNECT mail.example:25 / HTTP/1.0\r\n\r\n")
got = b""
while b"220 " not in got:
    got += cl.recv(4096)
cl.sendall(b"EHLO client.example\r\n")
cl.recv(4096)
cl.sendall(b"QUIT\r\n")
cl.recv(4096)
cl.close()
th.join()
print("done", flush=True)
`

// TestLiveSloppyConnect records a CONNECT whose request line has a stray
// word, answered 200 (#18 item 6): each side keeps the method and the
// target it can read, flagged malformed, and the tunnel's SMTP after the
// 200 is not taken for HTTP.
func TestLiveSloppyConnect(t *testing.T) {
	bpftest.RequireRoot(t)
	python := needPython(t)
	script := filepath.Join(t.TempDir(), "connect.py")
	if err := os.WriteFile(script, []byte(sloppyConnect), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, script)
	stdin, next := startWithLines(t, cmd)
	port, err := strconv.Atoi(next())
	if err != nil {
		t.Fatalf("python: no port: %v", err)
	}
	rec := startRecording(t, record.Options{PIDs: []int{cmd.Process.Pid}, Ports: []int{port}})
	fmt.Fprintln(stdin)
	if l := next(); l != "done" {
		t.Fatalf("python: %q, want done", l)
	}
	rec.stop()
	exs, sum := replayFile(t, rec.path)
	roles := map[capture.Role]int{}
	for _, e := range exs {
		roles[e.Conn.Role]++
		if e.Request.Method != "CONNECT" || e.Request.Target != "mail.example:25" || e.Response.Status != 200 || e.Flags&analyze.FlagMalformed == 0 {
			t.Errorf("%v: %s %q -> %d flags %v", e.Conn.Role, e.Request.Method, e.Request.Target, e.Response.Status, e.Flags.Names())
		}
	}
	if roles[capture.RoleServer] != 1 || roles[capture.RoleClient] != 1 {
		t.Errorf("exchanges by role %v, want one server and one client (warnings %v)", roles, sum.Warnings)
	}
}

// uploadLines are the exchanges of comm in role as "METHOD TARGET STATUS
// REQUEST-BODY-BYTES [flags=…]", sorted, and their request body bytes.
func uploadLines(exs []*analyze.Exchange, comm string, role capture.Role) ([]string, int64) {
	var got []string
	var bytes int64
	for _, e := range exs {
		if e.Conn.Comm != comm || e.Conn.Role != role {
			continue
		}
		l := fmt.Sprintf("%s %s?%s %d %d", e.Request.Method, e.Request.Path, e.Request.Query, e.Response.Status, e.Request.BodyBytes)
		if e.Flags != 0 {
			l += fmt.Sprintf(" flags=%v", e.Flags.Names())
		}
		got = append(got, l)
		bytes += max(e.Request.BodyBytes, 0)
	}
	slices.Sort(got)
	return got, bytes
}

// runBounded runs cmd to its end or for at most d, and returns its output.
func runBounded(cmd *exec.Cmd, d time.Duration) (string, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("still running after %v, killed", d)
	}
}

// startWithLines starts cmd (its standard error goes to the test's) and
// returns a pipe to its standard input and a function that returns its
// next line of output, failing t after 30 s of silence. The process is
// killed, if it still runs, when the test ends.
func startWithLines(t *testing.T, cmd *exec.Cmd) (io.WriteCloser, func() string) {
	t.Helper()
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	name := filepath.Base(cmd.Path)
	return stdin, func() string {
		t.Helper()
		got := make(chan string, 1)
		go func() {
			if lines.Scan() {
				got <- lines.Text()
			}
			close(got)
		}()
		select {
		case l, ok := <-got:
			if !ok {
				t.Fatalf("%s ended its output", name)
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("%s printed nothing for 30s", name)
		}
		return ""
	}
}
