//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/record"
)

// netnsServer is a small HTTP/1.1 keep-alive server that answers every GET
// with its name and the path, so a client can tell which one it reached.
const netnsServer = `
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (sys.argv[2] + " " + self.path + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
`

// netnsClient connects before the recording, then sends its requests on
// that connection once a line arrives on stdin.
const netnsClient = `
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", 8080)
c.connect()
print(c.sock.getsockname()[1], flush=True)
sys.stdin.readline()
for i in range(2):
    c.request("GET", "/pre-%d" % i)
    r = c.getresponse()
    sys.stdout.write(r.read().decode())
sys.stdout.flush()
sys.stdin.readline()
`

// TestLiveNetNSContainers runs two real python3 servers on the SAME address,
// 127.0.0.1:8080, each in a network namespace of its own and a cgroup named
// as docker's systemd driver (A) and containerd under a burstable Kubernetes
// pod (B) name theirs; a client inside A connects before the recording
// starts, curl runs inside each namespace during it. Every exchange must
// carry its namespace and container, the two servers must be two
// connections and two services, --container and --pod select each alone,
// and the pre-existing connection gets its addresses from the snapshot of
// A's namespace (#22 items 1 and 2).
func TestLiveNetNSContainers(t *testing.T) {
	bpftest.RequireRoot(t)
	python := systemPython(t)
	curl := needTool(t, "curl")
	ip := needTool(t, "ip")
	root := unifiedCgroups(t)
	nsA, inoA := bpftest.NetNS(t, "a")
	nsB, inoB := bpftest.NetNS(t, "b")
	dockerID, criID := randomHex(32), randomHex(32)
	pod := "5a0e2f1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
	base := filepath.Join(root, fmt.Sprintf("rewind-netns-test-%d", os.Getpid()))
	cgA := filepath.Join(base, "system.slice", "docker-"+dockerID+".scope")
	cgB := filepath.Join(base, "kubepods.slice", "kubepods-burstable.slice",
		"kubepods-burstable-pod"+strings.ReplaceAll(pod, "-", "_")+".slice", "cri-containerd-"+criID+".scope")
	var procs []*exec.Cmd
	t.Cleanup(func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
		removeCgroups(t, base, cgA, cgB)
	})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server.py"), []byte(netnsServer), 0o644)
	os.WriteFile(filepath.Join(dir, "client.py"), []byte(netnsClient), 0o644)
	// inside starts a program in a cgroup and a network namespace: the
	// shell joins the cgroup, then becomes ip netns exec, which becomes
	// the program (one pid throughout).
	inside := func(cg, ns string, args ...string) *exec.Cmd {
		if err := os.MkdirAll(cg, 0o755); err != nil {
			bpftest.Unavailable(t, "cannot create cgroup "+cg+": "+err.Error())
		}
		cmd := exec.Command("sh", append([]string{"-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, cg, ip, "netns", "exec", ns}, args...)...)
		cmd.Dir = dir
		return cmd
	}
	for _, s := range []struct{ cg, ns, name string }{{cgA, nsA, "A"}, {cgB, nsB, "B"}} {
		cmd := inside(s.cg, s.ns, python, "server.py", "8080", s.name)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	get := func(ns string, paths ...string) string {
		t.Helper()
		args := []string{"netns", "exec", ns, curl, "-sS", "--max-time", "5"}
		for _, p := range paths {
			args = append(args, "http://127.0.0.1:8080"+p)
		}
		out, err := exec.Command(ip, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl in %s: %v: %s", ns, err, out)
		}
		return string(out)
	}
	// Wait for both servers, from inside their namespaces.
	for _, ns := range []string{nsA, nsB} {
		deadline := time.Now().Add(10 * time.Second)
		for exec.Command(ip, "netns", "exec", ns, curl, "-s", "-o", "/dev/null", "http://127.0.0.1:8080/ready").Run() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("server in %s did not answer", ns)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The client in A's namespace (and container) connects now, before
	// the recording.
	client := inside(cgA, nsA, python, "client.py")
	stdin, _ := client.StdinPipe()
	stdout, _ := client.StdoutPipe()
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	procs = append(procs, client)
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	clientPort := strings.TrimSpace(line)

	rec := startRecording(t, record.Options{Comms: []string{"python3", "curl"}, Ports: []int{8080}})
	io.WriteString(stdin, "go\n")
	for i := range 2 {
		if l, _ := out.ReadString('\n'); l != fmt.Sprintf("A /pre-%d\n", i) {
			t.Fatalf("pre-existing connection answered %q", l)
		}
	}
	if got := get(nsA, "/a-0", "/a-1", "/a-2"); got != "A /a-0\nA /a-1\nA /a-2\n" {
		t.Fatalf("curl in A: %q", got)
	}
	if got := get(nsB, "/b-0", "/b-1", "/b-2"); got != "B /b-0\nB /b-1\nB /b-2\n" {
		t.Fatalf("curl in B: %q", got)
	}
	rec.stop()
	stdin.Close()

	// The snapshot holds the pre-existing connection's server socket, with
	// the addresses sock_diag gave in A's namespace.
	pidA := uint32(procs[0].Process.Pid)
	if !snapshotHasSocket(t, rec.path, pidA, "127.0.0.1:8080", "127.0.0.1:"+clientPort) {
		t.Errorf("snapshot has no socket of pid %d 127.0.0.1:8080 <- 127.0.0.1:%s (A's namespace)", pidA, clientPort)
	}

	exs, _ := replayFile(t, rec.path)
	conns := map[string]map[string]bool{"A": {}, "B": {}}
	count := map[string]int{}
	pre, curls := 0, 0
	for _, e := range exs {
		t.Logf("%s pid %d netns %d %s %s -> %s %s %d %v", e.Conn.ID, e.Conn.PID, e.Conn.NetNS, e.Conn.Role, e.Conn.Local, e.Conn.Remote, e.Request.Path, e.Response.Status, e.Flags.Names())
		if e.Conn.Comm == "curl" {
			// curl, run by ip netns exec and gone long before the
			// recorder reads /proc: its namespace comes from the exec
			// event the kernel filled in.
			want := map[byte]uint64{'a': inoA, 'b': inoB}[e.Request.Path[1]]
			if e.Conn.NetNS != want {
				t.Errorf("curl's %s: netns %d, want %d", e.Request.Path, e.Conn.NetNS, want)
			}
			curls++
			continue
		}
		if e.Conn.Comm != "python3" || e.Request.Path == "/ready" {
			continue
		}
		p, ct := e.Request.Path, e.Conn.Container
		if e.Conn.Role.String() == "client" || e.Conn.Remote.String() == "127.0.0.1:"+clientPort {
			// The connection from before the recording, at either end: its
			// addresses come from the snapshot of A's namespace. The
			// server thread was already blocked in recv when the probes
			// attached, so its first request is not in the capture.
			pre++
			l, r := e.Conn.Local.String(), e.Conn.Remote.String()
			if e.Conn.Role.String() == "client" {
				l, r = r, l
			}
			if e.Conn.NetNS != inoA || ct.ID != dockerID || l != "127.0.0.1:8080" || r != "127.0.0.1:"+clientPort {
				t.Errorf("earlier connection %s %s: netns %d container %s %s -> %s", e.Conn.Role, p, e.Conn.NetNS, ct.ID, e.Conn.Local, e.Conn.Remote)
			}
		}
		if e.Conn.Role.String() != "server" {
			continue
		}
		var which string
		switch {
		case strings.HasPrefix(p, "/a-") || p == "/pre-1":
			which = "A"
			if e.Conn.NetNS != inoA || ct.Runtime != "docker" || ct.ID != dockerID {
				t.Errorf("%s: netns %d container %+v, want netns %d docker %s", p, e.Conn.NetNS, ct, inoA, dockerID)
			}
		case strings.HasPrefix(p, "/b-"):
			which = "B"
			if e.Conn.NetNS != inoB || ct.Runtime != "containerd" || ct.ID != criID || ct.PodUID != pod || ct.QoS != "burstable" {
				t.Errorf("%s: netns %d container %+v, want netns %d containerd %s in pod %s", p, e.Conn.NetNS, ct, inoB, criID, pod)
			}
		default:
			continue
		}
		if e.Conn.Local.String() != "127.0.0.1:8080" {
			t.Errorf("%s: local %s", p, e.Conn.Local)
		}
		conns[which][e.Conn.ID] = true
		count[which]++
	}
	if curls != 6 {
		t.Errorf("%d exchanges of curl, want 6", curls)
	}
	if count["A"] != 4 || count["B"] != 3 || pre != 4 {
		t.Fatalf("server exchanges %v, want A 4 (one on the earlier connection) and B 3; %d on the earlier connection, want 4 (2 client, 2 server)", count, pre)
	}
	for id := range conns["A"] {
		if conns["B"][id] {
			t.Errorf("connection %s served in both namespaces", id)
		}
	}

	// The filters select each alone; JSON lines and HAR carry the namespace.
	for _, c := range []struct {
		args  []string
		want  []string
		netns uint64
	}{
		{[]string{"--container", dockerID[:12]}, []string{"", "/pre-1", "/a-0", "/a-1", "/a-2"}, inoA},
		{[]string{"--pod", pod}, []string{"/b-0", "/b-1", "/b-2"}, inoB},
	} {
		har := filepath.Join(t.TempDir(), "x.har")
		code, out, errOut := runCLI(t, append([]string{"analyze", rec.path, "-q", "--role", "server", "--comm", "python3", "--exchanges", "-", "--har", har, "-o", os.DevNull}, c.args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != exitOK || len(lines) != len(c.want) {
			t.Fatalf("%v: exit %d, %d lines: %s%s", c.args, code, len(lines), out, errOut)
		}
		for _, l := range lines {
			if !strings.Contains(l, fmt.Sprintf(`"netns":%d,`, c.netns)) {
				t.Errorf("%v: no netns %d: %s", c.args, c.netns, l)
			}
			found := false
			for _, p := range c.want {
				found = found || strings.Contains(l, `"path":"`+p+`"`) || p == "" && !strings.Contains(l, `"path"`)
			}
			if !found {
				t.Errorf("%v: unexpected %s", c.args, l)
			}
		}
		if b, _ := os.ReadFile(har); strings.Count(string(b), fmt.Sprintf(`"_netns":%d,`, c.netns)) != len(c.want) {
			t.Errorf("%v: HAR entries without _netns %d", c.args, c.netns)
		}
	}
	// Two services on the same address, each named with its container and
	// namespace.
	_, rep, _ := runCLI(t, "analyze", rec.path, "-q", "--role", "server", "--comm", "python3")
	for _, want := range []string{
		fmt.Sprintf("in docker %s netns %d", dockerID[:12], inoA),
		fmt.Sprintf("in containerd %s (pod %s) netns %d", criID[:12], pod, inoB),
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
}

// snapshotHasSocket says whether a capture's snapshot holds a socket of pid
// with those addresses.
func snapshotHasSocket(t *testing.T, path string, pid uint32, local, remote string) bool {
	t.Helper()
	rd := openCapture(t, path)
	for {
		ev, err := rd.Next()
		if err != nil || !rd.InSnapshot() {
			return false
		}
		if s, ok := ev.(*capture.Socket); ok && s.PID == pid && s.Local.String() == local && s.Remote.String() == remote {
			return true
		}
	}
}
