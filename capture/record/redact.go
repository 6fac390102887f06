//go:build linux

package record

import (
	"github.com/rewind-tools/rewind/capture"
	"github.com/rewind-tools/rewind/capture/redact"
)

// maxRedactStreams bounds how many connections' masking state a recording
// keeps. Connections are forgotten when they close; past the bound (a
// process that never closes its sockets, or lost close events) the state of
// all of them is dropped and started afresh, which can only miss a value
// split across calls at that moment.
const maxRedactStreams = 1 << 16

// redactConn is one connection's identity as the recorder sees it.
type redactConn struct {
	pid uint32
	fd  int32
	gen uint32
}

// redactStreams holds a connection's maskers: one per direction and layer
// (socket syscalls, TLS plaintext), since each is its own byte stream.
type redactStreams [2][2]*redact.Masker

// recordRedactor masks credential header values in Data payloads at record
// time (`record --redact`), keeping a [redact.Masker] per connection,
// direction and layer so values split across calls are masked too.
type recordRedactor struct {
	policy *redact.Policy
	conns  map[redactConn]*redactStreams
	masked uint64 // bytes masked, for tests and the log
}

// newRecordRedactor returns nil unless opts ask for redaction: a nil
// redactor does nothing.
func newRecordRedactor(opts Options) *recordRedactor {
	if !opts.Redact {
		return nil
	}
	return &recordRedactor{
		policy: redact.NewPolicy(redactHeaderNames(opts), nil),
		conns:  map[redactConn]*redactStreams{},
	}
}

// redactHeaderNames returns the headers `record --redact` masks: the
// default credential headers and opts.RedactHeaders.
func redactHeaderNames(opts Options) []string {
	names := append([]string(nil), redact.DefaultHeaders...)
	return append(names, opts.RedactHeaders...)
}

// apply masks ev's payload in place when it is data, and forgets a
// connection when ev closes it. Events must come in stream order (the order
// they are written).
func (r *recordRedactor) apply(ev capture.Event) {
	if r == nil {
		return
	}
	switch e := ev.(type) {
	case *capture.Data:
		if len(e.Payload) == 0 {
			return
		}
		k := redactConn{pid: e.PID, fd: e.FD, gen: e.Gen}
		st := r.conns[k]
		if st == nil {
			if len(r.conns) >= maxRedactStreams {
				clear(r.conns)
			}
			st = &redactStreams{}
			r.conns[k] = st
		}
		dir, layer := 0, 0
		if e.Dir == capture.Egress {
			dir = 1
		}
		if e.Source.IsTLS() {
			layer = 1
		}
		m := st[dir][layer]
		if m == nil {
			m = redact.NewMasker(r.policy)
			st[dir][layer] = m
		}
		r.masked += uint64(m.Mask(e.Payload))
	case *capture.Close:
		delete(r.conns, redactConn{pid: e.PID, fd: e.FD, gen: e.Gen})
	case *capture.Exit:
		// The kernel closes an exiting process's sockets without close
		// calls.
		for k := range r.conns {
			if k.pid == e.PID {
				delete(r.conns, k)
			}
		}
	}
}
