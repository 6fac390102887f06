package http1

// The second stage of a message: once its header block is complete, the
// fields that frame it decide how its body is delimited (RFC 9112 §6.3)
// and which state parses it (body.go).

import "bytes"

// headerBlockDone parses the fields of a complete header block, decides the
// body framing and emits HeadersComplete.
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

	// Framing-relevant fields.
	var (
		cl           int64 = -1
		hasTE        bool
		chunkedFinal bool
		chunkedCount int
		upgradeHdr   bool
		connUpgrade  bool
		keepAlive    bool
		fatal        string
	)
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
				fatal = e
				continue
			}
			if cl >= 0 {
				if n != cl {
					fatal = errCLConflict
					continue
				}
				p.setErr(errCLDuplicate)
			} else if e2 := clListDuplicate(v); e2 {
				p.setErr(errCLDuplicate)
			}
			cl = n
		case 17:
			if !equalFold(name, "transfer-encoding") {
				continue
			}
			hasTE = true
			last, nChunked := lastCoding(v)
			chunkedCount += nChunked
			if last != nil {
				chunkedFinal = equalFold(last, "chunked")
			}
		case 10:
			if !equalFold(name, "connection") {
				continue
			}
			cl, ka, up := connectionTokens(v)
			p.connClose = p.connClose || cl
			keepAlive = keepAlive || ka
			connUpgrade = connUpgrade || up
		case 7:
			if equalFold(name, "upgrade") {
				upgradeHdr = true
			}
		}
	}
	if m.ProtoMajor == 1 && m.ProtoMinor == 0 && !keepAlive {
		p.connClose = true
	}
	m.ConnClose = p.connClose
	if fatal != "" && !hasTE {
		p.fail(fatal)
		return
	}
	if chunkedCount > 1 {
		p.setErr(errTEChunkedTwice)
	}

	const (
		fNone = iota
		fLength
		fChunked
		fClose
		fTunnel
	)
	framing := fNone
	if p.kind == Request {
		switch {
		case hasTE:
			if cl >= 0 || fatal != "" {
				p.setErr(errTECL)
			}
			if !chunkedFinal {
				p.fail(errTERequest)
				return
			}
			framing = fChunked
		case cl >= 0:
			framing = fLength
			m.ContentLength = cl
		}
		if m.Method == "CONNECT" || m.Method == "PRI" && string(p.hdr[p.sl.tOff:p.sl.tOff+p.sl.tLen]) == "*" {
			m.Upgrade = true
			framing = fTunnel
		} else if upgradeHdr && connUpgrade {
			m.Upgrade = true
		}
	} else {
		method := m.Method
		st := m.StatusCode
		switch {
		case st == 101:
			m.Upgrade = true
			framing = fTunnel
		case st < 200:
			m.Interim = true
		case method == "CONNECT" && st < 300:
			m.Upgrade = true
			framing = fTunnel
		case method == "HEAD" || st == 204 || st == 304:
			if cl >= 0 && !hasTE {
				m.ContentLength = cl
			}
		case hasTE:
			if cl >= 0 || fatal != "" {
				p.setErr(errTECL)
			}
			if chunkedFinal {
				framing = fChunked
			} else {
				framing = fClose
			}
		case cl >= 0:
			framing = fLength
			m.ContentLength = cl
		default:
			framing = fClose
		}
		if !m.Interim {
			p.popMethod()
		}
	}

	m.Chunked = framing == fChunked
	p.headersSent = true
	p.emitMsg(HeadersComplete)
	switch framing {
	case fNone, fTunnel:
		m.End = p.t.Last
		p.complete()
	case fLength:
		if cl == 0 {
			m.End = p.t.Last
			p.complete()
			return
		}
		p.remaining = cl
		p.state = stBody
	case fChunked:
		p.state = stChunkSize
		p.line = p.line[:0]
	case fClose:
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
