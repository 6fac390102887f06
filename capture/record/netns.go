//go:build linux

package record

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// netnsOf returns the inode of the network namespace that the process whose
// /proc directory is dir uses ("net:[4026531833]"), or 0 when it cannot be
// read (the process exited, or procfs is a test's).
func netnsOf(dir string) uint64 {
	link, err := os.Readlink(filepath.Join(dir, "ns", "net"))
	if err != nil {
		return 0
	}
	rest, ok := strings.CutPrefix(link, "net:[")
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// SelfNetNS returns the inode of the recorder's own network namespace,
// where its packet socket captures (0 when unknown). It reads the calling
// thread's (/proc/thread-self), not the main thread's (/proc/self): a
// thread that entered another namespace to list its sockets may be the
// main one, which Go parks for good instead of ending it.
func SelfNetNS() uint64 { return netnsOf("/proc/thread-self") }

// dumpTCPSocketsIn lists the TCP sockets of the network namespace that
// process pid uses, with sock_diag run from inside it. A netlink socket
// belongs to the namespace of the thread that creates it, so the dump runs
// on an OS thread of its own that enters the namespace with setns(2). That
// thread is never unlocked: it ends with its goroutine and Go discards it,
// so no other goroutine ever runs in the wrong namespace.
func dumpTCPSocketsIn(proc string, pid uint32) ([]diagSocket, error) {
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(int(pid)), "ns", "net"))
	if err != nil {
		return nil, fmt.Errorf("opening the network namespace of pid %d: %w", pid, err)
	}
	defer f.Close()
	type result struct {
		socks []diagSocket
		err   error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: see above.
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("entering the network namespace of pid %d: %w", pid, err)}
			return
		}
		socks, err := dumpTCPSockets()
		done <- result{socks, err}
	}()
	r := <-done
	return r.socks, r.err
}

// cgroup2Root is where the cgroup v2 hierarchy is mounted
// (/sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one),
// "" when it is not.
var cgroup2Root = sync.OnceValue(func() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options… - fstype source …
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4]
			}
		}
	}
	return ""
})

// cgroupID returns the inode of a cgroup v2 directory (path as in
// /proc/PID/cgroup): the id bpf_get_current_cgroup_id gives its tasks.
func cgroupID(path string) uint64 {
	root := cgroup2Root()
	if root == "" || path == "" {
		return 0
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, path), &st); err != nil {
		return 0
	}
	return st.Ino
}
