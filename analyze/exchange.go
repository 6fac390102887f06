// Package analyze replays a capture into HTTP exchanges: it orders events,
// tracks connections, reassembles byte streams, detects protocols, parses
// HTTP/1.x and HTTP/2, pairs requests with responses and measures timings.
// Output writers in package format consume its [Exchange] values through the
// [Sink] interface; all sinks are fed in one pass over the capture.
//
// The pass uses up to three goroutines, in a pipeline: the source's (a pcap
// file is decoded and reassembled ahead of the replay), the replay's
// (ordering, tracking, parsing, pairing), and the sinks' (making the
// header fields of HTTP/1 messages into strings, redacting, formatting and
// aggregating, when no sink takes byte streams). Each hands the next its
// results in order, so outputs are the same byte for byte whatever the
// number of processors.
//
// Two optional interfaces let sinks make the pass cheaper. Sinks that read
// header fields only by name ([HeaderLookupSink]) get HTTP/1 fields as
// spans of the message's head, never made into strings. Sinks that keep no
// exchange after seeing it ([KeepsNoExchangeSink]) let the replay reuse an
// exchange's memory for a later one. The report and JSONL writers do both.
package analyze

import (
	"net/netip"
	"strings"
	"time"

	"github.com/rewind-tools/rewind/analyze/http1"
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/container"
)

// Conn is one TCP connection as seen by one process: a (pid, fd, generation)
// for recorded captures, a 4-tuple for pcap input.
type Conn struct {
	// ID is stable for a given capture: "c1", "c2", … in order of first
	// appearance in the event stream.
	ID   string
	PID  uint32 // 0 for pcap input
	Comm string // process name, "" when unknown
	Exe  string
	// Container is the container the process ran in, from its recorded
	// cgroup (its pod's name and namespace and its hostname: as recorded
	// with the process); the zero value for host processes and pcap input.
	Container container.Info
	// NetNS is the inode of the process's network namespace (0 when the
	// capture does not say, and for pcap input): two servers on one
	// address in two namespaces are two connections and two services.
	NetNS uint64
	FD    int32
	Gen   uint32
	Role  capture.Role
	// TLS names the TLS library whose plaintext was captured ("openssl",
	// "gnutls", "go-tls", …) or "none".
	TLS    string
	Local  netip.AddrPort // invalid when unknown
	Remote netip.AddrPort
	// Proto is the application protocol detected: "HTTP/1.1", "HTTP/2", or
	// "" for connections that carried no HTTP.
	Proto string
	// Start and End are the monotonic times of the first and last events.
	Start, End uint64
	// BytesIn and BytesOut count bytes the process received and sent.
	BytesIn, BytesOut int64
	// Retransmits counts TCP retransmissions seen in packets.
	Retransmits int
}

// Field is one header field, name in its original case.
type Field struct {
	Name, Value string
}

// Fields is an ordered list of header fields.
type Fields []Field

// Get returns the first value of the named field, case-insensitively.
func (f Fields) Get(name string) string {
	for _, x := range f {
		if strings.EqualFold(x.Name, name) {
			return x.Value
		}
	}
	return ""
}

// Message is the part common to requests and responses.
type Message struct {
	Proto string // "HTTP/1.1", "HTTP/1.0", "HTTP/2"
	// Header lists the header fields in order. For sinks that implement
	// HeaderLookupSink an HTTP/1 message's list may be nil, its fields
	// held for HeaderValue only.
	Header  Fields
	Trailer Fields
	// BodyBytes is the body's length on the wire after transfer decoding
	// (chunked framing removed), before content decoding; -1 when unknown.
	BodyBytes int64
	// Body holds up to the configured capture limit of the body, as sent
	// (still content-encoded); BodyTruncated says bytes are missing from it.
	Body          []byte
	BodyTruncated bool
	// Start and End are the monotonic times of the first and the last byte.
	Start, End uint64
	// HeaderBytes counts the bytes of the start line and header block.
	HeaderBytes int64

	// lazy holds an HTTP/1 message's header fields as spans of its head
	// until materialize makes Header of them, before the sinks see the
	// exchange or (for HeaderLookupSinks) never.
	lazy lazyHeader
}

// Request is an HTTP request.
type Request struct {
	Message
	Method string
	// Target is the request-target as sent ("/a/b?x=1", or absolute form).
	Target string
	Host   string // Host header or :authority
	Path   string // Target without query
	Query  string // without the '?'
}

// Response is an HTTP response. Status is 0 when none was seen.
type Response struct {
	Message
	Status int
	Reason string
}

// Timings are an exchange's latency components in nanoseconds; a value is
// [Unknown] when it cannot be measured.
//
// Seen from a server: Server is request's last byte read → response's first
// byte written; Transfer is response's first → last byte written; Total is
// request's first byte read → response's last byte written. A client's are
// mirrored: Server is request's last byte written → response's first byte
// read. Network is response's last byte written → the ACK that covers it.
type Timings struct {
	Server, Transfer, Network, Total int64
}

// Unknown marks a timing that could not be measured.
const Unknown int64 = -1

// Flags qualify an exchange; see the constants.
type Flags uint16

// Exchange flags.
const (
	// FlagIncomplete: the request or response is only partly in the capture
	// (recording began or ended mid-exchange, or the connection closed).
	FlagIncomplete Flags = 1 << iota
	// FlagTruncated: body bytes are missing (snaplen or lost events), but
	// the messages' framing is intact.
	FlagTruncated
	// FlagDesynced: the parser lost its place in the stream and resynced;
	// or (HTTP/2) header fields could not be decoded.
	FlagDesynced
	// FlagReset: the stream or connection was reset before completion.
	FlagReset
	// FlagNoResponse: a request that never got a response.
	FlagNoResponse
	// FlagUpgrade: the exchange switched protocols (101, CONNECT tunnel).
	FlagUpgrade
	// FlagMalformed: a message violated HTTP syntax in a way the parser
	// could tolerate.
	FlagMalformed
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{FlagIncomplete, "incomplete"},
	{FlagTruncated, "truncated"},
	{FlagDesynced, "desynced"},
	{FlagReset, "reset"},
	{FlagNoResponse, "no_response"},
	{FlagUpgrade, "upgrade"},
	{FlagMalformed, "malformed"},
}

// Names returns the flags' names in a fixed order.
func (f Flags) Names() []string { return f.AppendNames(nil) }

// AppendNames appends the flags' names to dst in the order of [Flags.Names];
// it allocates nothing when dst has room, for writers that run per exchange.
func (f Flags) AppendNames(dst []string) []string {
	for _, n := range flagNames {
		if f&n.f != 0 {
			dst = append(dst, n.name)
		}
	}
	return dst
}

// Exchange is one request with its response on a connection, with timings.
type Exchange struct {
	// Seq numbers exchanges from 1 in the order they are emitted.
	Seq int
	// Conn describes the connection the exchange travelled on, as it was
	// when the exchange was emitted: a copy, shared by the connection's
	// consecutive exchanges while its description (identity, process,
	// role, addresses, TLS, protocol) is unchanged. Its counters (End,
	// BytesIn, BytesOut, Retransmits) are therefore as of the copy, which
	// may be older than the exchange; stream sinks get the live values.
	Conn *Conn
	// Proto is "HTTP/1.1", "HTTP/1.0" or "HTTP/2".
	Proto string
	// StreamID is the HTTP/2 stream id, 0 for HTTP/1.x.
	StreamID uint32
	Request  Request
	Response Response
	Timings  Timings
	Flags    Flags
	// GRPC holds gRPC details when the exchange is a gRPC call.
	GRPC *GRPC

	// pooled says the exchange may be reused once the sinks are done
	// with it (see KeepsNoExchangeSink).
	pooled bool
	// spans holds the HTTP/1 messages' field spans (Message.lazy) when
	// they fit: in a reused exchange they stay in cache-warm memory.
	// Nothing outside the package sees them, so reuse is safe.
	spans     [exchangeSpans]http1.FieldSpan
	spansUsed int
}

// exchangeSpans is how many field spans an exchange holds itself: a
// typical request's and response's.
const exchangeSpans = 16

// spanRoom returns an empty list with room for n spans in ex's own array,
// or nil when they do not fit.
func (e *Exchange) spanRoom(n int) []http1.FieldSpan {
	if e.spansUsed+n > len(e.spans) {
		return nil
	}
	l := e.spans[e.spansUsed : e.spansUsed : e.spansUsed+n]
	e.spansUsed += n
	return l
}

// GRPC describes a gRPC call carried by an HTTP/2 exchange.
type GRPC struct {
	Service, Method string
	Status          int // grpc-status, -1 when absent
	Message         string
	RequestMsgs     int
	ResponseMsgs    int
}

// Start returns the exchange's first byte time (monotonic ns).
func (e *Exchange) Start() uint64 {
	if e.Request.Start != 0 {
		return e.Request.Start
	}
	return e.Response.Start
}

// End returns the exchange's last byte time (monotonic ns).
func (e *Exchange) End() uint64 {
	if e.Response.End != 0 {
		return e.Response.End
	}
	return e.Request.End
}

// CaptureInfo describes the input being replayed; sinks get it first.
type CaptureInfo struct {
	// Path is the input file's name as given, with '/' separators on every
	// OS so that reports from the same input are the same bytes everywhere.
	Path string
	// Format is "rewind", "pcap" or "pcapng".
	Format string
	Header capture.Header

	zone *time.Location // the recording host's zone, made once
}

// HostName names the host the input was recorded on: the capture header's
// host for a rewind capture, and for a pcap or pcapng (which has none) its
// file name without directory and extensions (node-1.pcap.gz: node-1). Reports and Parquet rows of
// several inputs are told apart by it.
func (c *CaptureInfo) HostName() string {
	if c.Header.Host != "" && c.Format == "rewind" {
		return c.Header.Host
	}
	base := c.Path
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	for _, z := range []string{".gz", ".zst"} {
		base = strings.TrimSuffix(base, z)
	}
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	return base
}

// WallOffset is what a monotonic timestamp of this capture adds to become
// Unix nanoseconds: Wall(t).UnixNano() == int64(t) + WallOffset().
func (c *CaptureInfo) WallOffset() int64 {
	return c.Header.Clock.WallUnixNS - int64(c.Header.Clock.MonoNS)
}

// Wall converts a monotonic timestamp of this capture to wall-clock time in
// the recording host's zone.
func (c *CaptureInfo) Wall(mono uint64) time.Time {
	if c.zone == nil {
		c.zone = time.FixedZone("", c.Header.Clock.ZoneOffset)
	}
	clk := &c.Header.Clock
	return time.Unix(0, clk.WallUnixNS+int64(mono)-int64(clk.MonoNS)).In(c.zone)
}

// Summary is what the replay saw as a whole; sinks get it last.
type Summary struct {
	Exchanges  int
	ByFlag     map[string]int // exchanges per flag name
	Conns      int            // connections seen
	HTTPConns  int
	OtherConns int // connections with data that was not HTTP
	// First and Last are the capture's first and last event times.
	First, Last uint64
	// Lost is the number of events the recorder lost; Warnings holds
	// salvage and loss warnings in a fixed order, for every report.
	Lost     uint64
	Salvaged bool
	Warnings []string
	Stats    capture.Stats
	// NoNetwork counts the server exchanges of a capture with packets that
	// have no network timing, by reason (a sentence); nil when none.
	NoNetwork map[string]int
	// SessionExchanges counts the exchanges of TLS sessions whose socket
	// could not be found (a library that encrypts into memory, such as
	// Node.js's, with no socket call next to it): they have no addresses.
	SessionExchanges int
}

// Sink consumes the replay's output. Begin is called once before any
// exchange, Exchange once per exchange in emission order, End once at the
// end. The pipeline never reuses an Exchange, so a sink may keep it; sinks
// that keep every exchange make memory grow with the capture, so aggregate
// or stream instead. Exchange calls may come from a goroutine other than
// Replay's caller (never two at once, always in order); Begin and End come
// from the caller's.
type Sink interface {
	Begin(info *CaptureInfo) error
	Exchange(ex *Exchange) error
	End(sum *Summary) error
}

// HeaderLookupSink is implemented by a sink that reads header fields only
// by name, with [Message.HeaderValue], never ranging over Message.Header.
// When every sink of a replay does, HTTP/1 messages reach them with Header
// nil and the fields kept as spans of the message's head, unless redaction
// has to change one: making a Field of every header line is then skipped,
// a tenth of the work of a replay of small exchanges.
type HeaderLookupSink interface {
	Sink
	// HeaderLookupOnly reports whether the sink reads header fields only
	// by name.
	HeaderLookupOnly() bool
}

// KeepsNoExchangeSink is implemented by a sink that keeps no pointer to an
// Exchange, or into one, once its Exchange call has returned. The strings,
// slices and Conn the exchange refers to may be kept: they are never
// reused. When every sink keeps no exchange (and no Filter is set), the
// replay reuses an HTTP/1 exchange's memory for a later exchange once the
// sinks have seen it, so that the exchanges in flight stay in a few cache-warm
// pages rather than walking the heap: about a twentieth of a replay of
// small exchanges.
type KeepsNoExchangeSink interface {
	Sink
	// KeepsNoExchange reports whether the sink keeps no exchange.
	KeepsNoExchange() bool
}

// keepNoExchange reports whether every sink implements
// [KeepsNoExchangeSink] and says so.
func keepNoExchange(sinks []Sink) bool {
	for _, s := range sinks {
		if k, ok := s.(KeepsNoExchangeSink); !ok || !k.KeepsNoExchange() {
			return false
		}
	}
	return true
}

// lookupOnly reports whether every sink implements [HeaderLookupSink] and
// says so.
func lookupOnly(sinks []Sink) bool {
	for _, s := range sinks {
		if l, ok := s.(HeaderLookupSink); !ok || !l.HeaderLookupOnly() {
			return false
		}
	}
	return true
}
