package http1

// The second stage of a message: once its header block is complete, the
// fields that frame it decide how its body is delimited (RFC 9112 §6.3)
// and which state parses it (body.go).

import "bytes"

// headerBlockDone ends the header block: it parses the fields, gathers
// those that frame the message (framingFields), decides how the body is
// delimited (decideFraming) and moves to the state that reads it, emitting
// HeadersComplete (startBody).
func (p *Parser) headerBlockDone() {
	m := &p.m
	m.HeaderBytes = int64(len(p.hdr))
	m.WireBytes = m.HeaderBytes
	if p.fieldsParsed {
		p.fieldsParsed = false
	} else {
		first := bytes.IndexByte(p.hdr, '\n') + 1
		if err := p.parseFields(p.hdr, first, srcBlock); err != "" {
			p.fail(err)
			return
		}
	}
	m.nHeader = len(p.fields)

	var ff framingFields
	p.framingFields(&ff)
	// RFC 9112 §9.3: "close" ends the connection after this message; an
	// HTTP/1.0 connection persists only when "keep-alive" asks for it.
	p.connClose = p.connClose || ff.connClose
	if m.ProtoMajor == 1 && m.ProtoMinor == 0 && !ff.keepAlive {
		p.connClose = true
	}
	m.ConnClose = p.connClose
	if ff.clDuplicate {
		p.setErr(errCLDuplicate)
	}
	f, fatal := p.decideFraming(&ff)
	if fatal != "" {
		p.fail(fatal)
		return
	}
	p.startBody(f, ff.contentLength)
}

// framingFields are what a header block says about the framing of its
// message and the persistence of its connection.
type framingFields struct {
	// contentLength is the first valid Content-Length, -1 when none.
	contentLength int64
	// invalidCL says why a Content-Length is invalid or conflicts with
	// another, "" when none does.
	invalidCL string
	// clDuplicate says Content-Length was repeated (or was a list) with
	// the same value: allowed, and reported.
	clDuplicate bool
	// te says Transfer-Encoding is present, chunkedFinal that its last
	// coding is chunked, and chunkedCount how many times chunked is named.
	te           bool
	chunkedFinal bool
	chunkedCount int
	// upgrade says an Upgrade field is present; connClose, keepAlive and
	// connUpgrade are the options of Connection.
	upgrade                           bool
	connClose, keepAlive, connUpgrade bool
}

// framingFields gathers the fields that frame the current message:
// Content-Length, Transfer-Encoding, Connection and Upgrade. It fills in
// the caller's ff rather than return one: a returned struct was copied
// with wide loads that stall on the narrow stores that set it.
func (p *Parser) framingFields(ff *framingFields) {
	m := &p.m
	*ff = framingFields{}
	ff.contentLength = -1
	for i := range p.fields {
		f := &p.fields[i]
		switch f.nLen {
		case 14, 17, 10, 7:
		default:
			continue // not a name that frames the message
		}
		var name, v []byte
		if f.nSrc == srcBlock && f.vSrc == srcBlock {
			name, v = p.hdr[f.nOff:f.nOff+f.nLen], p.hdr[f.vOff:f.vOff+f.vLen]
		} else {
			name, v = m.atWith(p, i)
		}
		switch len(name) {
		case 14:
			if !equalFold(name, "content-length") {
				continue
			}
			n, e := parseContentLength(v)
			if e != "" {
				ff.invalidCL = e
				continue
			}
			if ff.contentLength >= 0 {
				if n != ff.contentLength {
					ff.invalidCL = errCLConflict
					continue
				}
				ff.clDuplicate = true
			} else if clListDuplicate(v) {
				ff.clDuplicate = true
			}
			ff.contentLength = n
		case 17:
			if !equalFold(name, "transfer-encoding") {
				continue
			}
			ff.te = true
			last, nChunked := lastCoding(v)
			ff.chunkedCount += nChunked
			if last != nil {
				ff.chunkedFinal = equalFold(last, "chunked")
			}
		case 10:
			if !equalFold(name, "connection") {
				continue
			}
			cl, ka, up := connectionTokens(v)
			ff.connClose = ff.connClose || cl
			ff.keepAlive = ff.keepAlive || ka
			ff.connUpgrade = ff.connUpgrade || up
		case 7:
			if equalFold(name, "upgrade") {
				ff.upgrade = true
			}
		}
	}
}

// bodyFraming is how a message's body is delimited.
type bodyFraming uint8

const (
	noBody      bodyFraming = iota // the message ends with its header block
	lengthBody                     // Content-Length bytes
	chunkedBody                    // the chunked transfer coding
	closeBody                      // up to the end of the stream
	tunnelAfter                    // no body; the stream then becomes a tunnel
)

// decideFraming decides, from the fields ff, how the current message's body
// is delimited, following RFC 9112 §6.3 (its numbered rules are cited
// below as items), and records on the message what that makes it: an
// upgrade, an interim response, its Content-Length. fatal is the error
// that makes the message's framing unknowable (the parser then resyncs),
// "" when there is none.
func (p *Parser) decideFraming(ff *framingFields) (f bodyFraming, fatal string) {
	m := &p.m
	if ff.invalidCL != "" && !ff.te {
		// Item 5: an invalid Content-Length without Transfer-Encoding
		// is an unrecoverable framing error. (A list of one value
		// repeated is valid: parseContentLength accepts it.)
		return noBody, ff.invalidCL
	}
	if ff.chunkedCount > 1 {
		p.setErr(errTEChunkedTwice)
	}
	if p.kind == Request {
		switch {
		case ff.te:
			// Item 3: Transfer-Encoding overrides Content-Length, and
			// both are reported as an error.
			if ff.contentLength >= 0 || ff.invalidCL != "" {
				p.setErr(errTECL)
			}
			// Item 4: a request whose final coding is not chunked has
			// no determinable length.
			if !ff.chunkedFinal {
				return noBody, errTERequest
			}
			f = chunkedBody
		case ff.contentLength >= 0:
			// Item 6.
			f = lengthBody
			m.ContentLength = ff.contentLength
		default:
			// Item 7: no body.
		}
		// CONNECT (RFC 9110 §9.3.6) and the HTTP/2 connection preface's
		// "PRI *" (RFC 9113 §3.4) end HTTP/1 on the stream.
		if m.Method == "CONNECT" || m.Method == "PRI" && string(p.hdr[p.sl.tOff:p.sl.tOff+p.sl.tLen]) == "*" {
			m.Upgrade = true
			f = tunnelAfter
		} else if ff.upgrade && ff.connUpgrade {
			m.Upgrade = true
		}
		return f, ""
	}
	method := m.Method
	st := m.StatusCode
	switch {
	case st == 101:
		// Item 1 (no body), then the protocol switches (RFC 9110
		// §15.2.2).
		m.Upgrade = true
		f = tunnelAfter
	case st < 200:
		// Item 1: an interim response has no body.
		m.Interim = true
	case method == "CONNECT" && st < 300:
		// Item 2: a 2xx to CONNECT makes the stream a tunnel.
		m.Upgrade = true
		f = tunnelAfter
	case method == "HEAD" || st == 204 || st == 304:
		// Item 1: no body, whatever the fields say. Content-Length is
		// still reported (for HEAD, the length a GET would have had).
		if ff.contentLength >= 0 && !ff.te {
			m.ContentLength = ff.contentLength
		}
	case ff.te:
		// Items 3 and 4: Transfer-Encoding overrides Content-Length; a
		// response whose final coding is not chunked runs to the close.
		if ff.contentLength >= 0 || ff.invalidCL != "" {
			p.setErr(errTECL)
		}
		if ff.chunkedFinal {
			f = chunkedBody
		} else {
			f = closeBody
		}
	case ff.contentLength >= 0:
		// Item 6.
		f = lengthBody
		m.ContentLength = ff.contentLength
	default:
		// Item 8: a response without a declared length runs to the
		// close.
		f = closeBody
	}
	return f, ""
}

// startBody moves to the state that reads a body framed as f (cl is the
// Content-Length of lengthBody), after emitting HeadersComplete; a message
// without a body completes at once.
func (p *Parser) startBody(f bodyFraming, cl int64) {
	m := &p.m
	if p.kind == Response && !m.Interim {
		p.popMethod() // the request it answers
	}
	m.Chunked = f == chunkedBody
	p.headersSent = true
	p.emitMsg(HeadersComplete)
	switch f {
	case noBody, tunnelAfter:
		m.End = p.t.Last
		p.complete()
	case lengthBody:
		if cl == 0 {
			m.End = p.t.Last
			p.complete()
			return
		}
		p.remaining = cl
		p.state = stBody
	case chunkedBody:
		p.state = stChunkSize
		p.line = p.line[:0]
	case closeBody:
		m.End = p.t.Last
		p.state = stBodyClose
	}
}

// atWith is at() before the message buffers are attached at emission.
func (m *Message) atWith(p *Parser, i int) (name, value []byte) {
	m.block, m.trailer, m.fold, m.fields = p.hdr, p.trl, p.fold, p.fields
	return m.at(i)
}

// parseContentLength parses a Content-Length value, which may be a list of
// identical values.
func parseContentLength(v []byte) (int64, string) {
	var first int64 = -1
	for {
		var elem []byte
		i := bytes.IndexByte(v, ',')
		if i >= 0 {
			elem, v = trimOWS(v[:i]), v[i+1:]
		} else {
			elem = trimOWS(v)
		}
		if len(elem) == 0 {
			return 0, errCLInvalid
		}
		var n int64
		for _, c := range elem {
			if !isDigit(c) {
				return 0, errCLInvalid
			}
			if n > (1<<62)/10 {
				return 0, errCLInvalid
			}
			n = n*10 + int64(c-'0')
		}
		if first >= 0 && n != first {
			return 0, errCLConflict
		}
		first = n
		if i < 0 {
			return first, ""
		}
	}
}

// clListDuplicate reports whether a Content-Length value is a list.
func clListDuplicate(v []byte) bool { return bytes.IndexByte(v, ',') >= 0 }

// lastCoding returns the last transfer coding named in a Transfer-Encoding
// value (parameters removed) and how many times chunked appears.
func lastCoding(v []byte) (last []byte, chunked int) {
	for len(v) > 0 {
		var elem []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, nil
		}
		if i := bytes.IndexByte(elem, ';'); i >= 0 {
			elem = elem[:i]
		}
		elem = trimOWS(elem)
		if len(elem) == 0 {
			continue
		}
		last = elem
		if equalFold(elem, "chunked") {
			chunked++
		}
	}
	return last, chunked
}
