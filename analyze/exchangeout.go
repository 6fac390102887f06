package analyze

import "github.com/rewind-tools/rewind/capture/redact"

// exchangeOut is the replay as a protocol connection (h1Conn, h2Conn) sees
// it: the connection its exchanges describe, the one way finished exchanges
// leave, and the memory HTTP/1 exchanges are carved from. The protocol code
// reaches nothing else of the replay through it, so that pairing reads as
// pairing and what it depends on is written in one place.
type exchangeOut interface {
	// conn is the live connection the exchanges belong to; protocol code
	// sets its Role and Proto when the bytes tell them.
	conn() *Conn
	// deliver takes a finished exchange, its timings set.
	deliver(ex *Exchange)
	// alloc is where exchanges, strings and field lists are carved from
	// (slab.go).
	alloc() *slab
}

var _ exchangeOut = (*connState)(nil)

// protoOpts are what the protocol connections take from [Options], derived
// once per replay.
type protoOpts struct {
	// maxBody is how many bytes of each body are kept: none when no sink
	// needs them (Options.DiscardBodies; lengths stay exact).
	maxBody int
	redact  *redact.Policy
}

func newProtoOpts(o *Options) protoOpts {
	p := protoOpts{maxBody: o.MaxBodyCapture, redact: o.Redact}
	if o.DiscardBodies {
		p.maxBody = 0
	}
	return p
}

func (cs *connState) conn() *Conn { return cs.c }

func (cs *connState) alloc() *slab { return &cs.t.slab }
