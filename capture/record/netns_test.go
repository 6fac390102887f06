//go:build linux

package record

import (
	"bufio"
	"os/exec"
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/bpf/bpftest"
	"github.com/rewind-tools/rewind/capture"
)

// TestSnapshotOtherNetNS opens a connection inside a network namespace of
// its own before the snapshot, on an address the host uses too, and checks
// that the snapshot names the process's namespace and gives the sockets the
// addresses sock_diag has for them there (#22).
func TestSnapshotOtherNetNS(t *testing.T) {
	name, inode := bpftest.NetNS(t, "snap")
	if _, err := exec.LookPath("python3"); err != nil {
		bpftest.Unavailable(t, "python3 is not installed")
	}
	// A listener, a client connected to it and the accepted socket, all in
	// the namespace; the process waits until its stdin closes.
	cmd := exec.Command("ip", "netns", "exec", name, "python3", "-c", `
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 8080)); s.listen()
c = socket.create_connection(("127.0.0.1", 8080)); a, _ = s.accept()
print(c.getsockname()[1], flush=True)
sys.stdin.read()
`)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("python3 in %s: %v", name, err)
	}
	clientPort := strings.TrimSpace(line)
	pid := cmd.Process.Pid // ip netns exec execs the program in its place
	snap, err := TakeSnapshot(SnapshotOptions{PIDs: []int{pid}})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Processes) != 1 || snap.Processes[0].NetNS != inode {
		t.Fatalf("processes %+v, want pid %d in netns %d", snap.Processes, pid, inode)
	}
	if self := SelfNetNS(); self == 0 || self == inode {
		t.Fatalf("recorder's netns %d", self)
	}
	want := map[string]capture.Role{
		"127.0.0.1:8080 0.0.0.0:0":                    capture.RoleServer,
		"127.0.0.1:" + clientPort + " 127.0.0.1:8080": capture.RoleClient,
		"127.0.0.1:8080 127.0.0.1:" + clientPort:      capture.RoleServer,
	}
	for _, s := range snap.Sockets {
		k := s.Local.String() + " " + s.Remote.String()
		if r, ok := want[k]; ok && r == s.Role {
			delete(want, k)
		}
	}
	if len(want) != 0 {
		t.Errorf("sockets %v: missing %v", snap.Sockets, want)
	}
}
