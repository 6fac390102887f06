package analyze

import (
	"github.com/rewind-tools/rewind/analyze/bytetime"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/redact"
)

// StreamSpan says which way and when bytes of a connection's stream moved.
type StreamSpan struct {
	// Dir is seen from the traced process: Ingress bytes it received,
	// Egress bytes it sent.
	Dir capture.Direction
	// First and Last are the monotonic times of the call that moved the
	// bytes: entry and exit for sends; both the exit for receives (the
	// bytes are there when the read returns).
	First, Last uint64
	// TID is the thread that made the call, 0 when unknown.
	TID uint32
}

// StreamSink is an optional interface of a [Sink] that receives every
// connection's byte streams as the replay reassembles them, in replay order
// and whatever the exchange filter: the plaintext each direction carried,
// in order, with the bytes the capture lacks as gaps. For a TLS connection
// it receives the plaintext the TLS library saw and never the ciphertext the
// syscalls moved (a TLS connection's stream may therefore begin after its
// handshake). A sink implementing it costs the replay nothing otherwise.
//
// ConnOpen comes first for a connection (at connect or accept, or with its
// first bytes when the recording joined it later), ConnClose last; a
// connection that never carried streamable bytes and was joined mid-way
// gets neither. The [Conn] is the one exchanges point to; its fields may
// still change (role, protocol, TLS library) after ConnOpen. p is only
// valid during the call.
type StreamSink interface {
	ConnOpen(c *Conn, t uint64) error
	StreamData(c *Conn, s StreamSpan, p []byte) error
	// StreamGap says n bytes of direction s.Dir are missing from the
	// capture (snaplen, lost events) at this point of the stream.
	StreamGap(c *Conn, s StreamSpan, n int64) error
	ConnClose(c *Conn, t uint64) error
}

// PacketSink is an optional interface of a [Sink] that receives the
// captured packets ([capture.Packet] events) in replay order. p is only
// valid during the call.
type PacketSink interface {
	Packet(p *capture.Packet) error
}

// streamSinks picks the sinks that want streams or packets; nil when none
// does, so that the hooks cost one nil check.
func streamSinks(sinks []Sink) (streams []StreamSink, packets []PacketSink) {
	for _, s := range sinks {
		if ss, ok := s.(StreamSink); ok {
			streams = append(streams, ss)
		}
		if ps, ok := s.(PacketSink); ok {
			packets = append(packets, ps)
		}
	}
	return streams, packets
}

// packet hands a captured packet to the packet sinks.
func (t *tracker) packet(p *capture.Packet) {
	for _, s := range t.packets {
		if t.err != nil {
			return
		}
		t.err = s.Packet(p)
	}
}

// streamOpen tells the stream sinks about cs, once.
func (t *tracker) streamOpen(cs *connState) {
	if t.streams == nil || cs.streamOpened {
		return
	}
	cs.streamOpened = true
	for _, s := range t.streams {
		if t.err != nil {
			return
		}
		t.err = s.ConnOpen(cs.c, cs.c.Start)
	}
}

// streamClose tells the stream sinks cs ended, if they were told it began.
func (t *tracker) streamClose(cs *connState, ts uint64) {
	if t.streams == nil || !cs.streamOpened {
		return
	}
	for _, s := range t.streams {
		if t.err != nil {
			return
		}
		t.err = s.ConnClose(cs.c, ts)
	}
}

// streamed says whether l's bytes go to stream sinks: a TLS layer always;
// the syscall layer unless it carries TLS records (ciphertext) or the
// connection has a TLS plaintext layer.
func (l *layer) streamed() bool {
	return l.tls || (l.kind != kindTLSCipher && l.cs.layers[layerTLS] == nil)
}

// streamData hands bytes of direction d to the stream sinks. It is called
// after the protocol parser saw them, so detection has run on them.
func (l *layer) streamData(d int, tid uint32, p []byte, tm bytetime.Times) {
	t := l.cs.t
	if t.streams == nil || !l.streamed() {
		return
	}
	t.streamOpen(l.cs)
	if !t.opts.Redact.Empty() {
		// The parsers are done with p: mask credential values in place so
		// streams (pcapng) hide what the other outputs hide.
		if l.maskers[d] == nil {
			l.maskers[d] = redact.NewMasker(t.opts.Redact)
		}
		l.maskers[d].Mask(p)
	}
	sp := StreamSpan{Dir: dirOf(d), First: tm.First, Last: tm.Last, TID: tid}
	for _, s := range t.streams {
		if t.err != nil {
			return
		}
		t.err = s.StreamData(l.cs.c, sp, p)
	}
}

// streamGap tells the stream sinks n bytes of direction d are missing.
func (l *layer) streamGap(d int, n int64, tm bytetime.Times) {
	t := l.cs.t
	if t.streams == nil || n <= 0 || !l.streamed() {
		return
	}
	t.streamOpen(l.cs)
	sp := StreamSpan{Dir: dirOf(d), First: tm.First, Last: tm.Last}
	for _, s := range t.streams {
		if t.err != nil {
			return
		}
		t.err = s.StreamGap(l.cs.c, sp, n)
	}
}

// dirOf is the inverse of dirIdx.
func dirOf(d int) capture.Direction {
	if d == 1 {
		return capture.Egress
	}
	return capture.Ingress
}
