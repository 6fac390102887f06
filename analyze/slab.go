package analyze

import (
	"strings"
	"unsafe"

	"github.com/rewind-tools/rewind/analyze/http1"
	"github.com/rewind-tools/rewind/capture/redact"
)

// slab hands out exchanges and field lists carved from shared chunks, so
// that an exchange costs a few allocations per chunk rather than several of
// its own. A chunk stays in memory while a sink holds anything carved from
// it; chunks are small for that reason.
type slab struct {
	exs    []Exchange
	reuse  []*Exchange // exchanges handed back by recycle, for exchange
	fields []Field
	spans  []http1.FieldSpan
	bytes  []byte // the unused end of a chunk that str copies into
}

const (
	slabExchanges = 32
	slabFields    = 256
	slabBytes     = 32 << 10
)

// spanList returns an empty list with room for n spans.
func (s *slab) spanList(n int) []http1.FieldSpan {
	if n > slabFields/4 {
		return make([]http1.FieldSpan, 0, n)
	}
	if len(s.spans) < n {
		s.spans = make([]http1.FieldSpan, slabFields)
	}
	l := s.spans[:0:n]
	s.spans = s.spans[n:]
	return l
}

// exchange returns a zeroed Exchange that recycle may take back.
func (s *slab) exchange() *Exchange {
	if n := len(s.reuse); n > 0 {
		ex := s.reuse[n-1]
		s.reuse = s.reuse[:n-1]
		*ex = Exchange{pooled: true}
		return ex
	}
	if len(s.exs) == 0 {
		s.exs = make([]Exchange, slabExchanges)
	}
	ex := &s.exs[0]
	s.exs = s.exs[1:]
	ex.pooled = true
	return ex
}

// recycle takes back the exchanges of b that exchange made and nothing
// refers to any more: the sinks have seen them and keep none (see
// KeepsNoExchangeSink). Only the Exchange structs are reused, never the
// strings and lists they point to, which sinks may keep.
func (s *slab) recycle(b []*Exchange) {
	for _, ex := range b {
		if ex.pooled && len(s.reuse) < maxReuse {
			s.reuse = append(s.reuse, ex)
		}
	}
}

// maxReuse bounds the exchanges kept for reuse: the stage's batches in
// flight hold fewer.
const maxReuse = 4 * stageBatch * stageDepth

func (s *slab) fieldList(n int) Fields {
	if n > slabFields/4 {
		return make(Fields, n)
	}
	if len(s.fields) < n {
		s.fields = make([]Field, slabFields)
	}
	f := s.fields[:n:n]
	s.fields = s.fields[n:]
	return f
}

// str returns a string holding a copy of b. Short strings are carved from
// shared chunks: the bytes are copied into the unused end of a chunk, never
// written again, and the string points at them (as strings.Builder does),
// so that the copy costs no allocation of its own.
func (s *slab) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > slabBytes/8 {
		return string(b)
	}
	if len(b) > cap(s.bytes) {
		s.bytes = make([]byte, 0, slabBytes)
	}
	buf := s.bytes[:len(b)]
	copy(buf, b)
	s.bytes = s.bytes[len(b):len(b)]
	return unsafe.String(&buf[0], len(buf))
}

// materialize makes the Header of each of ex's messages whose fields are
// still spans (see h1Heads.head), taking the lists from s. It must run before
// anything outside the replay (filter, redaction, sinks) sees ex, unless
// the sinks only look fields up by name: see prepare.
func (s *slab) materialize(ex *Exchange) {
	s.materializeMsg(&ex.Request.Message)
	s.materializeMsg(&ex.Response.Message)
}

func (s *slab) materializeMsg(msg *Message) {
	l := &msg.lazy
	if len(l.spans) == 0 {
		return
	}
	out := s.fieldList(len(l.spans))
	for i, sp := range l.spans {
		out[i] = Field{Name: sp.Name(l.head), Value: sp.Value(l.head)}
	}
	msg.Header = out
	*l = lazyHeader{}
}

// prepare readies ex for the sinks: it materializes the header fields
// still held as spans, then applies the redaction policy p. When lookup is
// true (every sink implements [HeaderLookupSink]) a message's fields stay
// spans unless p would redact one of them, which saves making a Field of
// every header line of every exchange.
func (s *slab) prepare(ex *Exchange, p *redact.Policy, lookup bool) {
	for _, msg := range [2]*Message{&ex.Request.Message, &ex.Response.Message} {
		if !lookup || msg.lazy.redact {
			s.materializeMsg(msg)
		}
	}
	if !p.Empty() {
		redactExchange(p, ex)
	}
}

// copyFields copies first (the request target or the reason phrase) and n
// fields into one string allocation shared by all, and returns first and
// the fields.
func (s *slab) copyFields(first []byte, n int, at func(int) ([]byte, []byte)) (string, Fields) {
	if n == 0 {
		return string(first), nil
	}
	size := len(first)
	for i := 0; i < n; i++ {
		k, v := at(i)
		size += len(k) + len(v)
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.Write(first)
	for i := 0; i < n; i++ {
		k, v := at(i)
		sb.Write(k)
		sb.Write(v)
	}
	all := sb.String()
	out := s.fieldList(n)
	off := len(first)
	for i := 0; i < n; i++ {
		k, v := at(i)
		out[i].Name = all[off : off+len(k)]
		off += len(k)
		out[i].Value = all[off : off+len(v)]
		off += len(v)
	}
	return all[:len(first)], out
}
