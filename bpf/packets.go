//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultPacketPayload is the default number of TCP payload bytes the
// packet filter keeps after the TCP header: enough for a TLS record header
// or an HTTP start line.
const DefaultPacketPayload = 128

// packetBuf bounds what one read returns: IP and TCP headers (at most 60
// bytes each, IPv6 40) plus the payload the filter keeps.
const packetHeaders = 120

// Packet types of [Packet].PktType (sll_pkttype).
const (
	PacketHost     uint8 = 0 // addressed to this host
	PacketOutgoing uint8 = 4 // sent by this host
)

// Packet is a packet read from a [PacketSocket]. Data starts at the network
// header and aliases the socket's buffer until the next Read.
type Packet struct {
	// RealtimeNS is the kernel's receive timestamp (CLOCK_REALTIME, ns).
	RealtimeNS int64
	Ifindex    uint32
	PktType    uint8
	Protocol   uint16 // ETH_P_IP or ETH_P_IPV6
	Data       []byte
}

// PacketSocket is an AF_PACKET socket filtered by the tracer's packet_filter
// program: TCP packets of the traced ports, cut after their headers plus
// Options.PacketPayload bytes. Read it from one goroutine.
type PacketSocket struct {
	fd  int
	buf []byte
	oob []byte
	sa  unix.RawSockaddrLinklayer
	iov unix.Iovec
	msg unix.Msghdr
	// draining is set while packets keep coming: reads then do not block
	// but batch (see Read).
	draining bool
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

// OpenPackets opens a packet socket on interface iface ("" for all) with the
// tracer's socket filter attached before it receives anything. Reads time
// out after readTimeout so a reader can stop; the caller must Close it.
func (t *Tracer) OpenPackets(iface string, payload uint32) (*PacketSocket, error) {
	ifindex := 0
	if iface != "" {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, fmt.Errorf("packet capture interface %q: %w", iface, err)
		}
		ifindex = ifc.Index
	}
	if payload == 0 {
		payload = DefaultPacketPayload
	}
	// Protocol 0: the socket receives nothing until bind, after the filter
	// is attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("opening packet socket: %w (missing CAP_NET_RAW: %v)", ErrNoPacketPrivilege, err)
		}
		return nil, fmt.Errorf("opening packet socket: %w", err)
	}
	s := &PacketSocket{fd: fd, buf: make([]byte, packetHeaders+int(payload)), oob: make([]byte, 64)}
	fail := func(what string, err error) (*PacketSocket, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, t.objs.PacketFilter.FD()); err != nil {
		return fail("attaching the packet socket filter", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("asking for packet timestamps", err)
	}
	// A large buffer absorbs bursts while the recorder writes; FORCE
	// (CAP_NET_ADMIN) goes beyond net.core.rmem_max.
	const rcvbuf = 16 << 20
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	tv := unix.NsecToTimeval(int64(readTimeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("setting the packet socket timeout", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("binding packet socket", err)
	}
	s.iov.Base = &s.buf[0]
	s.iov.SetLen(len(s.buf))
	s.msg.Name = (*byte)(unsafe.Pointer(&s.sa))
	s.msg.Iov = &s.iov
	s.msg.Iovlen = 1
	s.msg.Control = &s.oob[0]
	return s, nil
}

// readTimeout is how long a Read waits for a packet.
const readTimeout = 50e6 // ns

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// drainPause is how long Read sleeps when the socket ran empty while
// packets were flowing, so that one wake-up collects a batch of packets
// instead of one. Packets carry the kernel's receive time, so the pause adds
// no error to timings; the 16 MiB receive buffer holds far more than a
// pause's worth of packets.
const drainPause = time.Millisecond

// Read reads the next packet into p. It returns os.ErrDeadlineExceeded when
// no packet came within the read timeout (50 ms) and [ErrClosed] after Close.
//
// Under load a blocking recvmsg per packet puts the reader to sleep and
// wakes it for every packet, which profiles showed as most of the packet
// goroutine's cost. So once a packet has arrived, Read reads without
// blocking; when the socket runs empty it pauses for drainPause and tries
// once more, and only blocks (with the read timeout) when that also finds
// nothing.
func (s *PacketSocket) Read(p *Packet) error {
	paused := false
	for {
		flags := 0
		if s.draining {
			flags = unix.MSG_DONTWAIT
		}
		s.msg.Namelen = uint32(unsafe.Sizeof(s.sa))
		s.msg.SetControllen(len(s.oob))
		s.msg.Flags = 0
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msg)), uintptr(flags))
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			switch {
			case !s.draining: // the blocking read timed out
				return os.ErrDeadlineExceeded
			case paused: // still empty after the pause: block again
				s.draining = false
			default:
				paused = true
				time.Sleep(drainPause)
			}
			continue
		case unix.EBADF:
			return ErrClosed
		default:
			return fmt.Errorf("reading packet socket: %w", errno)
		}
		s.draining = true
		p.Data = s.buf[:min(int(n), len(s.buf))]
		p.Ifindex = uint32(s.sa.Ifindex)
		p.PktType = s.sa.Pkttype
		p.Protocol = htons(s.sa.Protocol)
		p.RealtimeNS = s.timestamp()
		return nil
	}
}

// timestamp finds SCM_TIMESTAMPNS in the control messages just read.
func (s *PacketSocket) timestamp() int64 {
	oob := s.oob[:s.msg.Controllen]
	const hdr = unix.SizeofCmsghdr
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS && l >= hdr+16 {
			d := oob[hdr:]
			return int64(binary.NativeEndian.Uint64(d))*1e9 + int64(binary.NativeEndian.Uint64(d[8:]))
		}
		adv := (l + 7) &^ 7
		if adv > len(oob) {
			break
		}
		oob = oob[adv:]
	}
	return 0
}

// Drops returns how many packets the socket dropped (its buffer was full)
// since the previous call (PACKET_STATISTICS resets on read).
func (s *PacketSocket) Drops() (uint64, error) {
	st, err := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, fmt.Errorf("reading packet socket statistics: %w", err)
	}
	return uint64(st.Drops), nil
}

// Close closes the socket. Call it once no Read is running.
func (s *PacketSocket) Close() error { return unix.Close(s.fd) }

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
