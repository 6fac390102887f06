//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultPacketPayload is the default number of TCP payload bytes the
// packet filter keeps after the TCP header: enough for a TLS record header
// or an HTTP start line.
const DefaultPacketPayload = 128

// packetHeaders is the room for IP and TCP headers (at most 60 bytes each,
// IPv6 40) in a packet record, before the payload the filter keeps.
const packetHeaders = 120

// Packet types of [PacketEvent].PktType (sll_pkttype).
const (
	PacketHost     uint8 = 0 // addressed to this host
	PacketOutgoing uint8 = 4 // sent by this host
)

// PacketSocket is the set of AF_PACKET sockets the tracer's packet_filter
// program is attached to: one per interface. The filter sees every packet
// of its interface, writes the traced ports' TCP packets (cut after their
// headers plus Options.PacketPayload bytes) into the events ring as
// [EventPacket] records, and keeps none in the socket: there is nothing to
// read from it. Packets come out of [Tracer.Read] with the other events, in
// the same batches and stamped on the same clock; packets the full ring
// could not take are counted under [LossPacket]. Close stops packet capture.
//
// One socket per interface rather than one for all: on loopback every
// packet passes the taps twice, and the kernel clones each outgoing packet
// for an all-interfaces tap before any filter can refuse it. The loopback
// socket is opened with PACKET_IGNORE_OUTGOING, so the kernel neither
// clones nor filters loopback's outgoing copies; it sees each packet once,
// when it is received. Without --iface a netlink watch opens a socket for
// every interface that appears during the recording (a container's veth).
type PacketSocket struct {
	t     *Tracer
	mu    sync.Mutex
	fds   map[int]int // interface index → packet socket
	watch *os.File    // netlink link notifications; nil with --iface
	done  chan struct{}
	err   error // the watch's first error, reported by Close
}

// ErrNoPacketPrivilege is wrapped by [Tracer.OpenPackets] when the process
// may not open packet sockets.
var ErrNoPacketPrivilege = errors.New("packet capture needs root or CAP_NET_RAW")

// MarkPacketPort makes the packet filter keep the packets of local or remote
// port p (it matters only when the recording filters processes or ports).
func (t *Tracer) MarkPacketPort(p uint16) error {
	if err := t.objs.PacketPorts.Put(uint32(p), uint8(1)); err != nil {
		return fmt.Errorf("marking port %d for packet capture: %w", p, err)
	}
	return nil
}

// OpenPackets starts packet capture on interface iface ("" for every
// interface, including those that appear later): it opens a packet socket
// per interface with the tracer's socket filter attached before it sees
// anything. The caller must Close it.
func (t *Tracer) OpenPackets(iface string) (*PacketSocket, error) {
	s := &PacketSocket{t: t, fds: map[int]int{}}
	if iface != "" {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, fmt.Errorf("packet capture interface %q: %w", iface, err)
		}
		if err := s.open(ifc.Index, ifc.Flags&net.FlagLoopback != 0); err != nil {
			return nil, err
		}
		return s, nil
	}
	// Watch first, then list: an interface added in between is seen by
	// both, and open is idempotent.
	watch, err := watchLinks()
	if err != nil {
		return nil, err
	}
	ifs, err := net.Interfaces()
	if err != nil {
		watch.Close()
		return nil, fmt.Errorf("listing interfaces for packet capture: %w", err)
	}
	for _, ifc := range ifs {
		if err := s.open(ifc.Index, ifc.Flags&net.FlagLoopback != 0); err != nil {
			watch.Close()
			s.closeAll()
			return nil, err
		}
	}
	s.watch, s.done = watch, make(chan struct{})
	go s.follow()
	return s, nil
}

// open attaches the filter to a new packet socket bound to interface
// ifindex, unless one is open already.
func (s *PacketSocket) open(ifindex int, loopback bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.fds[ifindex]; ok {
		return nil
	}
	// Protocol 0: the socket sees nothing until bind, after the filter is
	// attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return fmt.Errorf("opening packet socket: %w (missing CAP_NET_RAW: %v)", ErrNoPacketPrivilege, err)
		}
		return fmt.Errorf("opening packet socket: %w", err)
	}
	fail := func(what string, err error) error {
		unix.Close(fd)
		return fmt.Errorf("%s (interface %d): %w", what, ifindex, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, s.t.objs.PacketFilter.FD()); err != nil {
		return fail("attaching the packet socket filter", err)
	}
	// Before Linux 4.20 the option is unknown: the filter then drops
	// loopback's outgoing copies itself (packet_lo_ifindex).
	if loopback {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil && !errors.Is(err, unix.ENOPROTOOPT) {
			return fail("ignoring loopback's outgoing copies", err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			unix.Close(fd) // the interface went away meanwhile
			return nil
		}
		return fail("binding packet socket", err)
	}
	s.fds[ifindex] = fd
	return nil
}

// drop closes the socket of an interface that was removed (its index may
// be reused by a later interface, which then gets a socket of its own).
func (s *PacketSocket) drop(ifindex int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fd, ok := s.fds[ifindex]; ok {
		unix.Close(fd)
		delete(s.fds, ifindex)
	}
}

// Interfaces returns how many interfaces are being captured.
func (s *PacketSocket) Interfaces() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fds)
}

// watchLinks opens a netlink socket that receives the kernel's link
// (interface) notifications, non-blocking so that Close ends a pending
// read.
func watchLinks() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening netlink socket to follow new interfaces: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribing to interface notifications: %w", err)
	}
	return os.NewFile(uintptr(fd), "netlink-route"), nil
}

// follow opens a socket for each interface that appears and closes that
// of each one removed, until Close.
func (s *PacketSocket) follow() {
	defer close(s.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.watch.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, unix.ENOBUFS) {
				// Notifications were dropped: look again.
				s.rescan()
				continue
			}
			s.setErr(fmt.Errorf("following new interfaces: %w", err))
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if len(m.Data) < unix.SizeofIfInfomsg {
				continue
			}
			info := (*unix.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
			switch m.Header.Type {
			case unix.RTM_NEWLINK:
				if err := s.open(int(info.Index), info.Flags&unix.IFF_LOOPBACK != 0); err != nil {
					s.setErr(err)
				}
			case unix.RTM_DELLINK:
				s.drop(int(info.Index))
			}
		}
	}
}

// rescan opens a socket for every interface there is now.
func (s *PacketSocket) rescan() {
	ifs, err := net.Interfaces()
	if err != nil {
		s.setErr(fmt.Errorf("listing interfaces for packet capture: %w", err))
		return
	}
	for _, ifc := range ifs {
		if err := s.open(ifc.Index, ifc.Flags&net.FlagLoopback != 0); err != nil {
			s.setErr(err)
		}
	}
}

func (s *PacketSocket) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *PacketSocket) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, fd := range s.fds {
		unix.Close(fd)
		delete(s.fds, i)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Close stops packet capture: the filter runs no more once it returns. It
// reports the first error met while following new interfaces (whose
// packets were then not captured).
func (s *PacketSocket) Close() error {
	if s.watch != nil {
		s.watch.Close()
		<-s.done
	}
	s.closeAll()
	return s.err
}

// loopbackIndex returns the loopback interface's index (1 when not found).
func loopbackIndex() uint32 {
	ifs, err := net.Interfaces()
	if err == nil {
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback != 0 {
				return uint32(i.Index)
			}
		}
	}
	return 1
}
