//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rewind-tools/rewind/bpf/bpftest"
)

func TestLoadAttach(t *testing.T) {
	bpftest.RequireRoot(t)
	tr, err := Load(Options{Ports: []uint16{1}, Comms: []string{"no-such-task"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if n := len(tr.Probes()); n != 32 {
		t.Errorf("%d probes attached, want 32: %v", n, tr.Probes())
	}
	for _, c := range LossCauses {
		if _, err := tr.Losses(c); err != nil {
			t.Error(err)
		}
	}
}

// TestSocketOfFD checks the programs' fd → TCP socket walk both ways it is
// done: with direct loads of the kernel's fields (where the kernel has
// bpf_rdonly_cast, which must then be used) and with helper reads. Of
// writes on a TCP connection of the traced port, on one of another port,
// on a pipe and on a UDP socket, only the first is recorded, both ends;
// without the port filter, both TCP connections and still neither the
// pipe nor the UDP socket, which only the walk tells apart.
func TestSocketOfFD(t *testing.T) {
	bpftest.RequireRoot(t)
	for _, tc := range []struct{ noLoads, byPort bool }{{false, true}, {true, true}, {false, false}, {true, false}} {
		noLoads := tc.noLoads
		t.Run(fmt.Sprintf("NoFieldLoads=%v,port=%v", noLoads, tc.byPort), func(t *testing.T) {
			ln, port := loopbackListener(t)
			other, _ := loopbackListener(t)
			opts := Options{PIDs: []uint32{uint32(os.Getpid())}, SelfPID: 1, RingSize: 1 << 20, KeepOther: true, NoFieldLoads: noLoads}
			if tc.byPort {
				opts.Ports = []uint16{port}
			}
			tr, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if want := !noLoads && kernelHasFunc("bpf_rdonly_cast"); tr.FieldLoads() != want {
				t.Fatalf("FieldLoads() = %v, want %v (the kernel has bpf_rdonly_cast: %v)", tr.FieldLoads(), want, kernelHasFunc("bpf_rdonly_cast"))
			}
			c1, s1 := connPair(t, ln)
			c2, s2 := connPair(t, other)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close()
			udp, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer udp.Close()
			uc, err := net.Dial("udp", udp.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()

			send := func(w io.Writer, r io.Reader, msg string) {
				if _, err := w.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(r, make([]byte, len(msg))); err != nil {
					t.Fatal(err)
				}
			}
			send(c1, s1, "traced-tcp")
			send(c2, s2, "other-port")
			send(pw, pr, "a-pipe")
			if _, err := uc.Write([]byte("a-datagram")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := udp.ReadFrom(make([]byte, 64)); err != nil {
				t.Fatal(err)
			}

			seen := map[string][]uint8{} // payload -> directions
			var rec Record
			for {
				tr.SetDeadline(time.Now().Add(300 * time.Millisecond))
				if err := tr.Read(&rec); errors.Is(err, os.ErrDeadlineExceeded) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				if rec.Type == EventData && rec.Data.Pid == uint32(os.Getpid()) {
					seen[string(rec.Payload)] = append(seen[string(rec.Payload)], rec.Data.Dir)
				}
			}
			recorded, unrecorded := []string{"traced-tcp"}, []string{"a-pipe", "a-datagram"}
			if tc.byPort {
				unrecorded = append(unrecorded, "other-port")
			} else {
				recorded = append(recorded, "other-port")
			}
			for _, msg := range recorded {
				if d := seen[msg]; len(d) != 2 || d[0] == d[1] {
					t.Errorf("%q: recorded in directions %v, want one egress and one ingress (all: %q)", msg, d, keys(seen))
				}
			}
			for _, msg := range unrecorded {
				if _, ok := seen[msg]; ok {
					t.Errorf("%q was recorded", msg)
				}
			}
		})
	}
}

func keys(m map[string][]uint8) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// loopbackListener listens on a free TCP port of 127.0.0.1 until the test
// ends.
func loopbackListener(t *testing.T) (net.Listener, uint16) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port)
}

// connPair opens a connection to ln and accepts it: its client and server
// ends, closed when the test ends.
func connPair(t *testing.T, ln net.Listener) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
