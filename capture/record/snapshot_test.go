//go:build linux

package record

import (
	"net"
	"os"
	"testing"

	"github.com/rewind-tools/rewind/capture"
)

func TestTakeSnapshotSockets(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	snap, err := TakeSnapshot(SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.ListeningPorts[port] {
		t.Errorf("listening port %d not found", port)
	}
	if len(snap.Processes) == 0 {
		t.Fatal("no processes")
	}
	// TakeSnapshot leaves out the calling process (the recorder): check
	// the sockets through processSockets directly.
	byInode := map[uint64]*diagSocket{}
	diag, err := dumpTCPSockets()
	if err != nil {
		t.Fatal(err)
	}
	for i := range diag {
		byInode[diag[i].inode] = &diag[i]
	}
	socks := processSockets("/proc", uint32(os.Getpid()), 1, byInode, snap.ListeningPorts, nil)
	var client, server bool
	for _, k := range socks {
		if k.Local.String() == c.LocalAddr().String() && k.Remote.String() == ln.Addr().String() {
			client = k.Role == capture.RoleClient && k.State == tcpEstablished
		}
		if k.Local.String() == ln.Addr().String() && k.Remote.String() == c.LocalAddr().String() {
			server = k.Role == capture.RoleServer
		}
	}
	if !client || !server {
		t.Errorf("sockets %+v: client ok %v, server ok %v", socks, client, server)
	}
}
