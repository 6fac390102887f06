// Package pcapin reads classic pcap and pcapng files (plain, gzip or zstd
// compressed) as capture events, so that packet captures enter the replay
// pipeline in the same shape as rewind's own recordings.
//
// Each TCP connection is reassembled per direction and described from the
// server's point of view: process 0, a synthetic file descriptor per
// connection (1, 2, 3, … in order of first appearance) and generation 1. A
// connection whose SYN was seen starts with a [capture.Accept] (the SYN's
// sender is the client); one joined mid-stream starts with a
// [capture.Socket] of unknown role, so that the pipeline searches for a
// message start and decides the role from content. Bytes the capture lacks
// become [capture.Data] gaps: Len bytes, no payload, [capture.DataTruncated].
// Acknowledgements that advance over data become [capture.TCP] events of type
// [capture.TCPAck], for network timing.
//
// Timestamps are packet times in nanoseconds since the Unix epoch; the
// header's clock mapping is the identity (MonoNS 0, WallUnixNS 0).
package pcapin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/rewind-tools/rewind/analyze/tcpip"
	"github.com/rewind-tools/rewind/capture"
)

// Options tune a [Reader]. The zero value is ready to use.
type Options struct {
	// MaxBuffered bounds the out-of-order bytes held per direction of a
	// connection (default 4 MiB). When it is exceeded the oldest hole is
	// given up and reported as a gap.
	MaxBuffered int
}

// Counts says what a [Reader] saw in the packets, beyond the events.
type Counts struct {
	Packets          uint64 // packets read
	NonTCP           uint64 // packets that were not TCP over IPv4/IPv6 (skipped)
	Fragments        uint64 // IP fragments (skipped: not reassembled)
	Malformed        uint64 // packets whose headers were cut or invalid
	TruncatedPackets uint64 // TCP segments with payload beyond the capture length
	Retransmissions  uint64 // segments that carried only bytes already delivered
	OutOfOrder       uint64 // segments buffered ahead of a hole
	Gaps             uint64 // holes given up
	GapBytes         uint64 // bytes in those holes
	Connections      uint64 // connections seen
	// Backwards counts packets whose time is earlier than that of a packet
	// before them in the file (a capture taken on several CPUs); their
	// events keep file order and the packet's own time.
	Backwards uint64
	// ReadError is why reading stopped before the end of the file, if it
	// did (a cut or damaged file); everything before it was delivered.
	ReadError string
	// Damage lists the regions of the file passed over as damaged (at most
	// 64 and the one that stopped the reading, if one did: it is last);
	// DamagedRegions counts them all and DamagedBytes their bytes. Offsets
	// are in the file's uncompressed bytes.
	Damage         []capture.Damage
	DamagedRegions int
	DamagedBytes   int64
	// LinkTypes counts the packets of each link type (pcap LINKTYPE_*
	// number), in the order the types first appeared.
	LinkTypes []LinkTypeCount
}

// LinkTypeCount is the number of packets of one link type.
type LinkTypeCount struct {
	LinkType int
	Packets  uint64
}

// LinkTypeName names a pcap link type ("Ethernet", "Linux cooked v2"), with
// "unsupported" for types this package does not decode.
func LinkTypeName(lt int) string {
	switch lt {
	case tcpip.LinkNull:
		return "BSD loopback"
	case tcpip.LinkEthernet:
		return "Ethernet"
	case tcpip.LinkRaw, tcpip.LinkRawAlt:
		return "raw IP"
	case tcpip.LinkLoop:
		return "OpenBSD loopback"
	case tcpip.LinkSLL:
		return "Linux cooked"
	case tcpip.LinkIPv4:
		return "raw IPv4"
	case tcpip.LinkIPv6:
		return "raw IPv6"
	case tcpip.LinkSLL2:
		return "Linux cooked v2"
	}
	return fmt.Sprintf("link type %d (unsupported)", lt)
}

// Reader turns a pcap or pcapng file into capture events. Events returned by
// Next are owned by the reader and valid until the next call, as with
// [capture.Reader].
type Reader struct {
	format string
	closer func() error
	opts   Options
	// stats belongs to the consumer; prod (with the counts) to the
	// producer's goroutine until the last batch is handed over. prod is
	// allocated apart: sharing cache lines with the fields Next writes for
	// every event would make the two cores fight over them.
	stats capture.Stats

	prod   *producer
	free   chan *batch
	full   chan *batch
	stop   chan struct{}
	exited chan struct{}
	cur    *batch   // the batch Next reads from
	spare  []*batch // read batches not yet given back (giveBack)
	qi     int
	eof    bool
}

// packetSource yields a file's packets: the captured bytes (valid until the
// next call), the packet's length on the wire (its record's original
// length), their link type and their time in ns since the Unix epoch.
type packetSource interface {
	// next returns io.EOF at the end and a *damageError where damage ends
	// the reading early.
	next() (data []byte, wire int, link int, ts uint64, err error)
	// skipped is the damage passed over so far.
	skipped() *damageLog
}

// Magic numbers recognised by [Sniff].
var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// IsPcap reports whether head (the first bytes of a file) starts like a pcap
// (either byte order, µs or ns) or pcapng file.
func IsPcap(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	switch string(head[:4]) {
	case "\xd4\xc3\xb2\xa1", "\xa1\xb2\xc3\xd4", "\x4d\x3c\xb2\xa1", "\xa1\xb2\x3c\x4d", "\x0a\x0d\x0d\x0a":
		return true
	}
	return false
}

// IsCompressed reports whether head starts a gzip or zstd stream.
func IsCompressed(head []byte) bool {
	return bytes.HasPrefix(head, magicGzip) || bytes.HasPrefix(head, magicZstd)
}

// Decompress returns the decompressed content of a gzip or zstd stream,
// recognised by its magic number. Close releases the decoder, not r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("opening gzip stream: %w", err)
		}
		return &checkedStream{r: zr, codec: "gzip", close: zr.Close}, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, fmt.Errorf("opening zstd stream: %w", err)
		}
		return &checkedStream{r: zr, codec: "zstd", close: func() error { zr.Close(); return nil }}, nil
	}
	return nil, errors.New("decompressing: not a gzip or zstd stream")
}

// checkedStream is a decompressor whose errors other than io.EOF (a stream
// cut short, a failed checksum) are *[capture.StreamError]s, for the
// readers to report as damage. After one, every read returns it.
type checkedStream struct {
	r     io.Reader
	codec string
	n     int64 // bytes of content given
	err   error
	close func() error
}

func (s *checkedStream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		err = &capture.StreamError{Codec: s.codec, Offset: s.n, Err: err}
		s.err = err
	}
	return n, err
}

func (s *checkedStream) Close() error { return s.close() }

// NewReader opens a pcap or pcapng file, gzip- or zstd-compressed or not,
// recognising each by its magic number. Close releases the decompressor, not
// r.
func NewReader(r io.Reader, opts Options) (*Reader, error) {
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = 4 << 20
	}
	br := bufio.NewReaderSize(r, 64<<10)
	rd := &Reader{opts: opts, closer: func() error { return nil }, prod: &producer{}}
	head, _ := br.Peek(4)
	if IsCompressed(head) {
		dr, err := Decompress(br)
		if err != nil {
			return nil, err
		}
		rd.closer = dr.Close
		br = bufio.NewReaderSize(dr, 64<<10)
		head, _ = br.Peek(4)
	}
	// head points into br's buffer: keep a copy.
	head = append([]byte(nil), head...)
	var err error
	// Reading (and decompressing) ahead in a goroutine overlaps the I/O
	// with the replay; the bytes seen are the same. Its blocks are larger
	// than br's buffer, so that br passes reads straight to its source
	// once the bytes it holds are taken, rather than copying every byte.
	ra := newReadAhead(br)
	closer := rd.closer
	rd.closer = func() error {
		ra.Close()
		return closer()
	}
	switch {
	case bytes.Equal(head, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		rd.format = "pcapng"
		fr := newNgFramer(ra)
		var ng *pcapgo.NgReader
		ng, err = pcapgo.NewNgReader(fr, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err == nil {
			rd.prod.pkts = ngSource{ng, fr}
		} else if errors.Is(err, io.EOF) && fr.stopped != nil {
			// The file (or its compressed stream) ends in the section
			// header: say how, not just "EOF".
			err = fr.stopped
		}
	case IsPcap(head):
		rd.format = "pcap"
		var pf *pcapFile
		pf, err = newPcapFile(ra)
		if err == nil {
			rd.prod.pkts = pf
		}
	default:
		err = errors.New("not a pcap or pcapng file")
	}
	if err != nil {
		rd.closer()
		return nil, fmt.Errorf("opening %s: %w", orPacket(rd.format), err)
	}
	rd.start()
	return rd, nil
}

func orPacket(f string) string {
	if f == "" {
		return "packet capture"
	}
	return f
}

// ngSource reads a pcapng file, whose interfaces may differ in link type,
// through a framer that passes over damaged blocks.
type ngSource struct {
	r  *pcapgo.NgReader
	fr *ngFramer
}

func (s ngSource) skipped() *damageLog { return s.fr.skipped() }

func (s ngSource) next() ([]byte, int, int, uint64, error) {
	data, ci, err := s.r.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, io.EOF) && s.fr.stopped != nil {
			return nil, 0, 0, 0, s.fr.stopped
		}
		if !errors.Is(err, io.EOF) {
			// The framer checked the block's framing; this is what
			// pcapgo found wrong inside it.
			err = fmt.Errorf("a block that ends before byte %d: %w", s.fr.w.pos, err)
		}
		return nil, 0, 0, 0, err
	}
	link := -1
	if len(ci.AncillaryData) > 0 {
		if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			link = int(lt)
		}
	}
	return data, ci.Length, link, unixNS(ci.Timestamp), nil
}

// Format returns "pcap" or "pcapng".
func (r *Reader) Format() string { return r.format }

// Header returns the capture header the pipeline needs: an identity clock
// mapping, since event times are already Unix nanoseconds.
func (r *Reader) Header() capture.Header {
	// Packets: the events include TCP ACKs, so replay can measure network
	// time.
	return capture.Header{RecorderVersion: r.format, Clock: capture.ClockMapping{MonoNS: 0, WallUnixNS: 0},
		Options: capture.RecordingOptions{Packets: true}}
}

// Counts returns what the reader saw in the file. The counts are known once
// Next has returned io.EOF; before that (they are still being written by
// the reading goroutine) Counts returns the zero value.
func (r *Reader) Counts() Counts {
	if !r.eof {
		return Counts{}
	}
	return r.prod.counts
}

// Stats returns the event counts in the form the pipeline reports. A file
// cut off mid-packet is reported as not closed cleanly.
func (r *Reader) Stats() *capture.Stats {
	s := r.stats
	n := r.Counts()
	s.CleanClose = r.eof && n.ReadError == ""
	s.Truncated = n.ReadError != ""
	s.Damage, s.DamageRegions, s.BytesSkipped = n.Damage, n.DamagedRegions, n.DamagedBytes
	return &s
}

// InOrder reports that events come in the order to replay them: file order,
// which TCP reassembly already followed (packet times that run backwards a
// little, see [Counts.Backwards], are kept as captured). The replay then
// needs no reorder window.
func (r *Reader) InOrder() bool { return true }

// start sets the producer going (batch.go).
func (r *Reader) start() {
	r.prod.asm.init(r.opts.MaxBuffered, &r.prod.counts)
	r.free = make(chan *batch, batchesInFlight)
	r.full = make(chan *batch, batchesInFlight)
	r.stop = make(chan struct{})
	r.exited = make(chan struct{})
	go r.prod.run(r.free, r.full, r.stop, r.exited)
	closer := r.closer
	r.closer = func() error {
		// Stop the producer before closing what it reads from.
		close(r.stop)
		<-r.exited
		return closer()
	}
}

// Close stops reading and releases the decompressor, if any.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer()
	r.closer = nil
	return err
}

// Next returns the next event, or io.EOF after the last. Damage in the file
// after its header is not an error: reading stops there, the open
// connections are ended, and [Counts.ReadError] says why.
func (r *Reader) Next() (capture.Event, error) {
	for {
		if b := r.cur; b != nil {
			if r.qi < len(b.evs) {
				ev := b.evs[r.qi]
				r.qi++
				r.stats.Events++
				r.stats.EventsByKind[ev.Kind()]++
				return ev, nil
			}
			if b.last {
				r.eof = true
				return nil, io.EOF
			}
			r.spare = append(r.spare, b)
			r.cur = nil
		}
		select {
		case r.cur = <-r.full:
		default:
			// About to wait for the producer: let it have every batch.
			r.giveBack()
			r.cur = <-r.full
		}
		r.qi = 0
		if len(r.spare) >= batchesInFlight/2 {
			r.giveBack()
		}
	}
}

// giveBack returns the spare batches to the producer. They go back half of
// them at a time, not one by one: each return can wake the producer, and a
// goroutine woken by this one waits for this one's processor (or another
// idle one) before it runs, so that waking it for every batch would make it
// produce in step with this consumer instead of ahead of it.
func (r *Reader) giveBack() {
	for _, b := range r.spare {
		r.free <- b // never blocks: free has room for every batch
	}
	clear(r.spare)
	r.spare = r.spare[:0]
}

func unixNS(t time.Time) uint64 {
	ns := t.UnixNano()
	if ns < 0 {
		return 0
	}
	return uint64(ns)
}
