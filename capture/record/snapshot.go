//go:build linux

package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/rewind-tools/rewind/capture"
)

// SnapshotOptions select what [TakeSnapshot] describes; the zero value
// takes every process and TCP socket of the host.
type SnapshotOptions struct {
	PIDs    []int    // processes to keep (with Comms and Cgroups: their union)
	Comms   []string // task names to keep
	Cgroups []string // cgroup v2 paths whose processes, and those below, to keep
	Ports   []int    // sockets to keep by local or remote port
	// Proc is the procfs root (default "/proc"), for tests.
	Proc string
}

// TCP states (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpListen      = 10
)

// TakeSnapshot reads processes from /proc and TCP sockets from netlink
// sock_diag, joined through the socket inodes of /proc/PID/fd. Sockets are
// listed in the recorder's network namespace and in every other one that a
// kept process uses (a container's), so connections opened there before the
// recording get their addresses too. It returns
// what it could read with an error describing what it could not; a process
// that exits meanwhile is skipped silently.
func TakeSnapshot(opts SnapshotOptions) (*capture.Snapshot, error) {
	proc := opts.Proc
	if proc == "" {
		proc = "/proc"
	}
	now := monoNow()
	snap := &capture.Snapshot{ListeningPorts: map[uint16]bool{}}
	var errs []error

	entries, err := os.ReadDir(proc)
	if err != nil {
		return snap, fmt.Errorf("reading %s: %w", proc, err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	self := os.Getpid()
	selfNS := netnsOf(filepath.Join(proc, "thread-self")) // see SelfNetNS
	// The network namespaces the traced processes use, each with a
	// process in it to enter it by.
	enter := map[uint64]uint32{}
	for _, pid := range pids {
		if pid == self {
			continue
		}
		p := &capture.Process{Timestamp: now, PID: uint32(pid), Snapshot: true}
		if !readProcess(proc, p) {
			continue
		}
		if !selected(opts, p) {
			continue
		}
		snap.Processes = append(snap.Processes, p)
		if _, ok := enter[p.NetNS]; !ok && p.NetNS != 0 && p.NetNS != selfNS {
			enter[p.NetNS] = p.PID
		}
	}

	// Sockets: the recorder's namespace, then each other one a traced
	// process uses (socket inodes are unique across namespaces). Listening
	// ports are kept per namespace, to tell a socket's role there.
	listening := map[uint64]map[uint16]bool{}
	byInode := map[uint64]*diagSocket{}
	add := func(ns uint64, diag []diagSocket) {
		if listening[ns] == nil {
			listening[ns] = map[uint16]bool{}
		}
		for i := range diag {
			d := &diag[i]
			byInode[d.inode] = d
			if d.state == tcpListen {
				listening[ns][d.local.Port()] = true
				snap.ListeningPorts[d.local.Port()] = true
			}
		}
	}
	diag, err := dumpTCPSockets()
	if err != nil {
		errs = append(errs, err)
	}
	add(selfNS, diag)
	nss := make([]uint64, 0, len(enter))
	for ns := range enter {
		nss = append(nss, ns)
	}
	slices.Sort(nss)
	for _, ns := range nss {
		diag, err := dumpTCPSocketsIn(proc, enter[ns])
		if err != nil {
			errs = append(errs, fmt.Errorf("network namespace %d: %w", ns, err))
		}
		add(ns, diag)
	}
	for _, p := range snap.Processes {
		ns := p.NetNS
		if listening[ns] == nil {
			ns = selfNS
		}
		snap.Sockets = append(snap.Sockets, processSockets(proc, p.PID, now, byInode, listening[ns], opts.Ports)...)
	}
	return snap, errors.Join(errs...)
}

func selected(opts SnapshotOptions, p *capture.Process) bool {
	if len(opts.PIDs) == 0 && len(opts.Comms) == 0 && len(opts.Cgroups) == 0 {
		return true
	}
	if inCgroups(p.Cgroup, opts.Cgroups) {
		return true
	}
	return slices.Contains(opts.PIDs, int(p.PID)) || slices.ContainsFunc(opts.Comms, func(c string) bool {
		if len(c) > 15 {
			c = c[:15]
		}
		return c == p.Comm
	})
}

// readProcess fills p from /proc/PID; it reports false when the process is
// gone.
func readProcess(proc string, p *capture.Process) bool {
	dir := filepath.Join(proc, strconv.Itoa(int(p.PID)))
	if !readStat(dir, p) {
		return false
	}
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					uid, _ := strconv.Atoi(f[0])
					p.UID = uint32(uid)
				}
				break
			}
		}
	}
	fillProcessFrom(dir, p)
	return true
}

// readStat fills p's Comm and PPID from dir/stat; it reports false when
// the process is gone.
func readStat(dir string, p *capture.Process) bool {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return false
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	open, close := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || close < open {
		return false
	}
	p.Comm = string(stat[open+1 : close])
	if f := strings.Fields(string(stat[close+1:])); len(f) > 1 {
		ppid, _ := strconv.Atoi(f[1])
		p.PPID = uint32(ppid)
	}
	return true
}

// fillProcess adds what /proc says of a process seen exec'ing: its exe,
// command line, cgroup and network namespace, and for a process in a
// container its pod's name and its hostname (best effort: it may have
// exited already).
func fillProcess(p *capture.Process) {
	fillProcessFrom(filepath.Join("/proc", strconv.Itoa(int(p.PID))), p)
}

func fillProcessFrom(dir string, p *capture.Process) {
	p.Exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.Cmdline = strings.TrimSpace(string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		var v1 []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				p.Cgroup = rest
				p.CgroupID = cgroupID(rest)
			} else if line != "" {
				v1 = append(v1, line)
			}
		}
		p.CgroupV1 = strings.Join(v1, "\n")
	}
	p.NetNS = netnsOf(dir)
	fillContainer(dir, p)
}

// processSockets lists the TCP sockets among the fds of pid.
func processSockets(proc string, pid uint32, now uint64, byInode map[uint64]*diagSocket, listening map[uint16]bool, ports []int) []*capture.Socket {
	dir := filepath.Join(proc, strconv.Itoa(int(pid)), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []*capture.Socket
	for _, e := range fds {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		rest, ok := strings.CutPrefix(target, "socket:[")
		if !ok {
			continue
		}
		inode, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
		if err != nil {
			continue
		}
		d, ok := byInode[inode]
		if !ok {
			continue // not TCP (unix, UDP, netlink…)
		}
		if len(ports) > 0 && !slices.Contains(ports, int(d.local.Port())) && !slices.Contains(ports, int(d.remote.Port())) {
			continue
		}
		role := capture.RoleClient
		if d.state == tcpListen || listening[d.local.Port()] {
			role = capture.RoleServer
		}
		out = append(out, &capture.Socket{
			Timestamp: now, PID: pid, FD: int32(fd), Inode: inode, Role: role,
			State: d.state, Local: d.local, Remote: d.remote,
		})
	}
	slices.SortFunc(out, func(a, b *capture.Socket) int { return int(a.FD) - int(b.FD) })
	return out
}

// diagSocket is a TCP socket as netlink sock_diag describes it.
type diagSocket struct {
	inode         uint64
	state         uint8
	local, remote netip.AddrPort
}

// Sizes of struct inet_diag_req_v2 and struct inet_diag_msg
// (include/uapi/linux/inet_diag.h).
const (
	inetDiagReqV2Size = 56
	inetDiagMsgSize   = 72
)

// dumpTCPSockets lists every IPv4 and IPv6 TCP socket of the host's network
// namespace through NETLINK_SOCK_DIAG (INET_DIAG), in every state.
func dumpTCPSockets() ([]diagSocket, error) {
	var out []diagSocket
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := dumpFamily(family)
		if err != nil {
			return out, fmt.Errorf("listing TCP sockets with sock_diag: %w", err)
		}
		out = append(out, socks...)
	}
	return out, nil
}

func dumpFamily(family uint8) ([]diagSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	req := make([]byte, unix.NLMSG_HDRLEN+inetDiagReqV2Size)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], 1)
	body := req[unix.NLMSG_HDRLEN:]
	body[0] = family
	body[1] = unix.IPPROTO_TCP
	ne.PutUint32(body[4:], 0xffffffff) // every state
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var out []diagSocket
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return out, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return out, err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						return out, unix.Errno(-errno)
					}
				}
				return out, nil
			}
			if len(m.Data) < inetDiagMsgSize {
				continue
			}
			out = append(out, parseDiagMsg(m.Data))
		}
	}
}

// parseDiagMsg decodes a struct inet_diag_msg: family, state, timer,
// retrans, then inet_diag_sockid (ports and addresses in network order),
// expires, queues, uid and inode.
func parseDiagMsg(b []byte) diagSocket {
	family := b[0]
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	var src, dst netip.Addr
	if family == unix.AF_INET {
		src = netip.AddrFrom4([4]byte(b[8:12]))
		dst = netip.AddrFrom4([4]byte(b[24:28]))
	} else {
		src = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		dst = netip.AddrFrom16([16]byte(b[24:40])).Unmap()
	}
	return diagSocket{
		state:  b[1],
		local:  netip.AddrPortFrom(src, sport),
		remote: netip.AddrPortFrom(dst, dport),
		inode:  uint64(binary.NativeEndian.Uint32(b[68:])),
	}
}

// WithDescendants returns pids and every process below them in the process
// tree under proc (/proc), sorted and without duplicates: --pid of a wrapper
// (timeout, a shell, a supervisor) includes the children it already runs,
// as the fork tracepoint includes those it starts later.
func WithDescendants(proc string, pids []int) []int {
	if len(pids) == 0 {
		return nil
	}
	children := map[int][]int{}
	if entries, err := os.ReadDir(proc); err == nil {
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid <= 0 {
				continue
			}
			p := capture.Process{PID: uint32(pid)}
			if readStat(filepath.Join(proc, e.Name()), &p) {
				children[int(p.PPID)] = append(children[int(p.PPID)], pid)
			}
		}
	}
	seen := map[int]bool{}
	queue := slices.Clone(pids)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		queue = append(queue, children[p]...)
	}
	out := make([]int, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
