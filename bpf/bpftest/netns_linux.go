//go:build linux

package bpftest

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// NetNS creates a network namespace with `ip netns add` (its loopback up)
// for a test, removed when the test ends, and returns its name, which
// `ip netns exec NAME` runs programs in, and its inode.
func NetNS(t testing.TB, suffix string) (name string, inode uint64) {
	t.Helper()
	RequireRoot(t)
	ip := ""
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if _, err := os.Stat(p); err == nil {
			ip = p
			break
		}
	}
	if ip == "" {
		Unavailable(t, "ip (iproute2) is not installed (make test-setup with REWIND_SETUP=1 installs it)")
	}
	name = fmt.Sprintf("rwtest-%d-%s", os.Getpid(), suffix)
	if out, err := exec.Command(ip, "netns", "add", name).CombinedOutput(); err != nil {
		Unavailable(t, fmt.Sprintf("cannot create a network namespace: ip netns add: %v: %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("removing network namespace %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command(ip, "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v: %s", name, err, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+name, &st); err != nil {
		t.Fatalf("network namespace %s: %v", name, err)
	}
	return name, st.Ino
}
