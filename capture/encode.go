package capture

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// recordHeaderSize is the size of the header in front of every event record
// inside a chunk: kind (1), reserved (3), body length (4).
const recordHeaderSize = 8

// addrSize is the encoded size of a netip.AddrPort: family (1), reserved (1),
// port (2), address (16).
const addrSize = 20

var le = binary.LittleEndian

// errShortRecord means a record's body is shorter than its kind requires.
var errShortRecord = errors.New("record body too short")

// appendEvent appends ev's record (header and body) to b.
func appendEvent(b []byte, ev Event) []byte {
	start := len(b)
	b = append(b, byte(ev.Kind()), 0, 0, 0, 0, 0, 0, 0)
	switch e := ev.(type) {
	case *Process:
		b = le.AppendUint64(b, e.Timestamp)
		b = le.AppendUint32(b, e.PID)
		b = le.AppendUint32(b, e.PPID)
		b = le.AppendUint32(b, e.UID)
		b = append(b, boolByte(e.Snapshot), 0, 0, 0)
		b = appendString(b, e.Comm)
		b = appendString(b, e.Exe)
		b = appendString(b, e.Cmdline)
		b = appendString(b, e.Cgroup)
		b = le.AppendUint64(b, e.NetNS)
		b = le.AppendUint64(b, e.CgroupID)
		b = appendString(b, e.CgroupV1)
		b = appendString(b, e.PodName)
		b = appendString(b, e.PodNamespace)
		b = appendString(b, e.Hostname)
		b = appendString(b, e.ContainerName)
	case *Socket:
		b = le.AppendUint64(b, e.Timestamp)
		b = le.AppendUint32(b, e.PID)
		b = le.AppendUint32(b, uint32(e.FD))
		b = le.AppendUint64(b, e.Inode)
		b = append(b, byte(e.Role), e.State, 0, 0)
		b = appendAddr(b, e.Local)
		b = appendAddr(b, e.Remote)
	case *Connect:
		b = le.AppendUint64(b, e.Start)
		b = le.AppendUint64(b, e.Timestamp)
		b = le.AppendUint32(b, e.PID)
		b = le.AppendUint32(b, e.TID)
		b = le.AppendUint32(b, uint32(e.FD))
		b = le.AppendUint32(b, e.Gen)
		b = le.AppendUint32(b, uint32(e.Ret))
		b = appendAddr(b, e.Local)
		b = appendAddr(b, e.Remote)
	case *Accept:
		b = le.AppendUint64(b, e.Start)
		b = le.AppendUint64(b, e.Timestamp)
		b = le.AppendUint32(b, e.PID)
		b = le.AppendUint32(b, e.TID)
		b = le.AppendUint32(b, uint32(e.ListenFD))
		b = le.AppendUint32(b, uint32(e.FD))
		b = le.AppendUint32(b, e.Gen)
		b = appendAddr(b, e.Local)
		b = appendAddr(b, e.Remote)
	case *Close:
		b = le.AppendUint64(b, e.Timestamp)
		b = le.AppendUint32(b, e.PID)
		b = le.AppendUint32(b, e.TID)
		b = le.AppendUint32(b, uint32(e.FD))
		b = le.AppendUint32(b, e.Gen)
	case *Data:
		b = le.AppendUint64(b, e.Start)
		b = le.AppendUint64(b, e.Timestamp)
		b = le.AppendUint32(b, e.PID)
		b = le.AppendUint32(b, e.TID)
		b = le.AppendUint32(b, uint32(e.FD))
		b = le.AppendUint32(b, e.Gen)
		b = append(b, byte(e.Source), byte(e.Dir), byte(e.Flags), 0)
		b = le.AppendUint32(b, e.Len)
		b = le.AppendUint32(b, e.Offset)
		b = le.AppendUint64(b, e.TLSConn)
		b = append(b, e.Payload...)
	case *Packet:
		b = le.AppendUint64(b, e.Timestamp)
		b = le.AppendUint32(b, e.Ifindex)
		b = le.AppendUint32(b, e.OrigLen)
		b = append(b, byte(e.Dir), 0)
		b = le.AppendUint16(b, e.LinkType)
		b = append(b, e.Data...)
	case *TCP:
		b = le.AppendUint64(b, e.Timestamp)
		b = append(b, byte(e.Type), e.OldState, e.NewState, 0)
		b = le.AppendUint32(b, e.PID)
		b = le.AppendUint32(b, e.Seq)
		b = appendAddr(b, e.Local)
		b = appendAddr(b, e.Remote)
	case *Loss:
		b = le.AppendUint64(b, e.Timestamp)
		b = le.AppendUint32(b, e.CPU)
		b = append(b, byte(e.Source), 0, 0, 0)
		b = le.AppendUint64(b, e.Count)
	case *Exit:
		b = le.AppendUint64(b, e.Timestamp)
		b = le.AppendUint32(b, e.PID)
		b = le.AppendUint32(b, uint32(e.Code))
	default:
		panic("capture: cannot encode event of type " + ev.Kind().String())
	}
	le.PutUint32(b[start+4:], uint32(len(b)-start-recordHeaderSize))
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendString(b []byte, s string) []byte {
	b = le.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendAddr(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	var fam byte
	switch {
	case a.Is4():
		fam = 4
	case a.Is6():
		fam = 6
	}
	b = append(b, fam, 0)
	b = le.AppendUint16(b, ap.Port())
	if fam == 0 {
		return append(b, make([]byte, 16)...)
	}
	a16 := a.As16()
	return append(b, a16[:]...)
}

// decoder holds one reusable value per kind, so decoding allocates nothing for
// fixed-size kinds (Payload and Data alias the chunk buffer).
type decoder struct {
	process Process
	socket  Socket
	connect Connect
	accept  Accept
	close   Close
	data    Data
	packet  Packet
	tcp     TCP
	loss    Loss
	exit    Exit
}

// cursor reads little-endian fields from a record body and remembers whether
// it ran past the end.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) need(n int) bool {
	if c.bad || len(c.b) < n {
		c.bad = true
		return false
	}
	return true
}

// more reports whether bytes are left: a field appended to a record body
// after the first version is read only when present.
func (c *cursor) more() bool { return !c.bad && len(c.b) > 0 }

func (c *cursor) u8() uint8 {
	if !c.need(1) {
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) skip(n int) {
	if c.need(n) {
		c.b = c.b[n:]
	}
}

func (c *cursor) u16() uint16 {
	if !c.need(2) {
		return 0
	}
	v := le.Uint16(c.b)
	c.b = c.b[2:]
	return v
}

func (c *cursor) u32() uint32 {
	if !c.need(4) {
		return 0
	}
	v := le.Uint32(c.b)
	c.b = c.b[4:]
	return v
}

func (c *cursor) u64() uint64 {
	if !c.need(8) {
		return 0
	}
	v := le.Uint64(c.b)
	c.b = c.b[8:]
	return v
}

func (c *cursor) str() string {
	n := int(c.u32())
	if !c.need(n) {
		return ""
	}
	s := string(c.b[:n])
	c.b = c.b[n:]
	return s
}

func (c *cursor) addr() netip.AddrPort {
	if !c.need(addrSize) {
		return netip.AddrPort{}
	}
	fam, port := c.b[0], le.Uint16(c.b[2:])
	var a16 [16]byte
	copy(a16[:], c.b[4:20])
	c.b = c.b[addrSize:]
	switch fam {
	case 4:
		return netip.AddrPortFrom(netip.AddrFrom16(a16).Unmap(), port)
	case 6:
		return netip.AddrPortFrom(netip.AddrFrom16(a16), port)
	}
	return netip.AddrPort{}
}

// rest returns the remaining bytes (aliasing the buffer).
func (c *cursor) rest() []byte {
	r := c.b
	c.b = nil
	return r
}

// decode decodes one record body of kind k. It returns nil, nil for a kind
// this version does not know.
func (d *decoder) decode(k Kind, body []byte) (Event, error) {
	c := cursor{b: body}
	var ev Event
	switch k {
	case KindProcess:
		e := &d.process
		e.Timestamp, e.PID, e.PPID, e.UID = c.u64(), c.u32(), c.u32(), c.u32()
		e.Snapshot = c.u8() != 0
		c.skip(3)
		e.Comm, e.Exe, e.Cmdline, e.Cgroup = c.str(), c.str(), c.str(), c.str()
		// Appended fields: absent from older captures' records.
		e.NetNS, e.CgroupID, e.CgroupV1 = 0, 0, ""
		e.PodName, e.PodNamespace, e.Hostname, e.ContainerName = "", "", "", ""
		if c.more() {
			e.NetNS, e.CgroupID = c.u64(), c.u64()
		}
		if c.more() {
			e.CgroupV1 = c.str()
		}
		if c.more() {
			e.PodName, e.PodNamespace, e.Hostname = c.str(), c.str(), c.str()
		}
		if c.more() {
			e.ContainerName = c.str()
		}
		ev = e
	case KindSocket:
		e := &d.socket
		e.Timestamp, e.PID, e.FD, e.Inode = c.u64(), c.u32(), int32(c.u32()), c.u64()
		e.Role, e.State = Role(c.u8()), c.u8()
		c.skip(2)
		e.Local, e.Remote = c.addr(), c.addr()
		ev = e
	case KindConnect:
		e := &d.connect
		e.Start, e.Timestamp = c.u64(), c.u64()
		e.PID, e.TID, e.FD, e.Gen, e.Ret = c.u32(), c.u32(), int32(c.u32()), c.u32(), int32(c.u32())
		e.Local, e.Remote = c.addr(), c.addr()
		ev = e
	case KindAccept:
		e := &d.accept
		e.Start, e.Timestamp = c.u64(), c.u64()
		e.PID, e.TID, e.ListenFD, e.FD, e.Gen = c.u32(), c.u32(), int32(c.u32()), int32(c.u32()), c.u32()
		e.Local, e.Remote = c.addr(), c.addr()
		ev = e
	case KindClose:
		e := &d.close
		e.Timestamp, e.PID, e.TID, e.FD, e.Gen = c.u64(), c.u32(), c.u32(), int32(c.u32()), c.u32()
		ev = e
	case KindData:
		e := &d.data
		e.Start, e.Timestamp = c.u64(), c.u64()
		e.PID, e.TID, e.FD, e.Gen = c.u32(), c.u32(), int32(c.u32()), c.u32()
		e.Source, e.Dir, e.Flags = Source(c.u8()), Direction(c.u8()), DataFlags(c.u8())
		c.skip(1)
		e.Len, e.Offset, e.TLSConn = c.u32(), c.u32(), c.u64()
		e.Payload = c.rest()
		ev = e
	case KindPacket:
		e := &d.packet
		e.Timestamp, e.Ifindex, e.OrigLen = c.u64(), c.u32(), c.u32()
		e.Dir = Direction(c.u8())
		c.skip(1)
		e.LinkType = c.u16()
		e.Data = c.rest()
		ev = e
	case KindTCP:
		e := &d.tcp
		e.Timestamp = c.u64()
		e.Type, e.OldState, e.NewState = TCPEventType(c.u8()), c.u8(), c.u8()
		c.skip(1)
		e.PID, e.Seq = c.u32(), c.u32()
		e.Local, e.Remote = c.addr(), c.addr()
		ev = e
	case KindLoss:
		e := &d.loss
		e.Timestamp, e.CPU = c.u64(), c.u32()
		e.Source = LossSource(c.u8())
		c.skip(3)
		e.Count = c.u64()
		ev = e
	case KindExit:
		e := &d.exit
		e.Timestamp, e.PID, e.Code = c.u64(), c.u32(), int32(c.u32())
		ev = e
	default:
		return nil, nil
	}
	if c.bad {
		return nil, errShortRecord
	}
	return ev, nil
}
