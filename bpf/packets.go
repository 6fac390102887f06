//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net"

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

// PacketSocket is the AF_PACKET socket the tracer's packet_filter program is
// attached to. The filter sees every packet of the interface, writes the
// traced ports' TCP packets (cut after their headers plus
// Options.PacketPayload bytes) into the events ring as [EventPacket] records,
// and keeps none in the socket: there is nothing to read from it. Packets
// come out of [Tracer.Read] with the other events, in the same batches and
// stamped on the same clock; packets the full ring could not take are
// counted under [LossPacket]. Close the socket to stop packet capture.
type PacketSocket struct {
	fd int
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

// OpenPackets starts packet capture on interface iface ("" for all): it
// opens a packet socket with the tracer's socket filter attached before it
// sees anything. The caller must Close it.
func (t *Tracer) OpenPackets(iface string) (*PacketSocket, error) {
	ifindex := 0
	if iface != "" {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, fmt.Errorf("packet capture interface %q: %w", iface, err)
		}
		ifindex = ifc.Index
	}
	// Protocol 0: the socket sees nothing until bind, after the filter is
	// attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("opening packet socket: %w (missing CAP_NET_RAW: %v)", ErrNoPacketPrivilege, err)
		}
		return nil, fmt.Errorf("opening packet socket: %w", err)
	}
	fail := func(what string, err error) (*PacketSocket, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, t.objs.PacketFilter.FD()); err != nil {
		return fail("attaching the packet socket filter", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("binding packet socket", err)
	}
	return &PacketSocket{fd: fd}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Close stops packet capture: the filter runs no more once it returns.
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
