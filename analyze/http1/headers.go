package http1

// The first stage of a message (states stStart and stHeaders): from the
// bytes between messages, through the start line, to the end of the header
// block, with its field lines parsed. framing.go takes over from there.

import "bytes"

// cutHeaders ends a message whose header block never completed: it is
// emitted as Incomplete when its start line was seen, dropped otherwise.
func (p *Parser) cutHeaders() {
	if !p.haveStart {
		p.stats.SkippedBytes += int64(len(p.hdr))
		p.state = stStart
		return
	}
	p.m.Incomplete = true
	p.m.HeaderBytes = int64(len(p.hdr))
	p.m.WireBytes = int64(len(p.hdr))
	// Report the fields received in full.
	first := bytes.IndexByte(p.hdr, '\n') + 1
	if first > 0 && first <= p.lineStart && p.lineStart <= len(p.hdr) {
		if err := p.parseFields(p.hdr[:p.lineStart], first, srcBlock); err != "" {
			p.setErr(err)
		}
	}
	p.m.End = p.lastT
	p.complete()
}

// begin starts a new message whose first byte arrived at time start.
func (p *Parser) begin(start uint64) {
	p.m = Message{Kind: p.kind, ContentLength: -1, Start: start, Resynced: p.resynced}
	p.resynced = false
	// The previous message's head and fields stay as they are, for
	// fastBlock to compare with: the buffers alternate.
	p.hdr, p.prevHdr = p.prevHdr[:0], p.hdr
	p.fields, p.prevFields = p.prevFields[:0], p.fields
	// Two plain assignments, not a parallel one: that goes through a
	// temporary whose overlapping 16-byte halves the CPU cannot forward
	// from store to load, a stall that was two thirds of begin's time.
	p.prev = p.fast
	p.fast = fastParse{}
	p.trl = p.trl[:0]
	p.fold = p.fold[:0]
	p.body = p.body[:0]
	p.lineStart = 0
	p.haveStart = false
	p.headersSent = false
	p.connClose = false
	p.capture = p.opts.MaxBodyCapture > 0
	p.state = stHeaders
}

// start handles the bytes between messages.
func (p *Parser) start(b []byte) []byte {
	if p.kind == Response && p.expectSimple() && !maybeStatusLine(b) {
		p.simpleResponse()
		return b
	}
	i := 0
	for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
		i++
	}
	b = b[i:]
	if len(b) == 0 {
		return b
	}
	if p.probe && !('A' <= b[0] && b[0] <= 'Z') {
		p.state = stTunnel
		p.probe = false
		return b
	}
	p.begin(p.t.First)
	return b
}

// maybeStatusLine reports whether b starts with "HTTP/", or with a part of
// it when b is shorter.
func maybeStatusLine(b []byte) bool {
	const v = "HTTP/"
	n := min(len(b), len(v))
	return string(b[:n]) == v[:n]
}

// simpleResponse starts an HTTP/0.9 response: no status line, no headers,
// a body delimited by the end of the stream.
func (p *Parser) simpleResponse() {
	p.begin(p.t.First)
	m := &p.m
	m.ProtoMajor, m.ProtoMinor = 0, 9
	m.Method = p.peekMethod()
	p.popMethod()
	m.HeadersDone = p.t.First
	p.headersSent = true
	p.emitMsg(HeadersComplete)
	m.End = p.t.First
	p.state = stBodyClose
}

// headers accumulates the start line and header block.
func (p *Parser) headers(b []byte) []byte {
	max := p.opts.MaxHeaderBytes
	from := 0 // b[:from] is already appended to hdr
	pos := 0
	for {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			if len(p.hdr)+len(b)-from > max {
				return p.headerOverflow(b, from)
			}
			p.hdr = append(p.hdr, b[from:]...)
			return nil
		}
		end := pos + i + 1
		if len(p.hdr)+end-from > max {
			return p.headerOverflow(b, from)
		}
		lineLen := len(p.hdr) - p.lineStart + end - from
		blank := lineLen == 1
		if lineLen == 2 {
			c := byte(0)
			if end-2 >= from {
				c = b[end-2]
			} else {
				c = p.hdr[len(p.hdr)-1]
			}
			blank = c == '\r'
		}
		if !p.haveStart || blank {
			p.hdr = append(p.hdr, b[from:end]...)
			from = end
			line := p.hdr[p.lineStart:]
			p.lineStart = len(p.hdr)
			if !p.haveStart {
				if !p.startLine(line) {
					return b[end:]
				}
				// The common case: the whole header block follows in b,
				// every field line well formed. One pass finds its end
				// and parses its fields.
				if n := p.fastBlock(b[end:min(len(b), end+max-len(p.hdr))]); n >= 0 {
					p.hdr = append(p.hdr, b[end:end+n]...)
					p.lineStart = len(p.hdr)
					p.m.HeadersDone = p.t.Last
					p.headerBlockDone()
					return b[end+n:]
				}
			} else {
				p.m.HeadersDone = p.t.Last
				p.headerBlockDone()
				return b[end:]
			}
		} else {
			p.lineStart = len(p.hdr) + end - from
		}
		pos = end
	}
}

// headerOverflow handles a header block over the limit: the lines complete
// so far make the reported message, the unfinished line goes to resync (so
// that the result does not depend on where the stream was cut).
func (p *Parser) headerOverflow(b []byte, from int) []byte {
	var partial []byte
	if upto := p.lineStart - len(p.hdr) + from; upto >= from {
		p.hdr = append(p.hdr, b[from:upto]...)
		b = b[upto:]
	} else {
		partial = p.hdr[p.lineStart:]
		p.hdr = p.hdr[:p.lineStart]
		b = b[from:]
	}
	if p.probe {
		p.probe = false
		p.stats.TunnelBytes += int64(len(p.hdr) + len(partial) + len(b))
		p.state = stTunnel
		return nil
	}
	if !p.haveStart {
		// Not a message we can report: just garbage.
		p.stats.SkippedBytes += int64(len(p.hdr))
		p.loseSync()
	} else {
		p.m.HeaderBytes = int64(len(p.hdr))
		p.m.WireBytes = p.m.HeaderBytes
		p.fail(errHeaderTooLarge)
	}
	p.resyncFrom(partial)
	return b
}

// startLine parses the first line of a message; it returns false when the
// message was ended (fatal error or simple request).
func (p *Parser) startLine(line []byte) bool {
	p.sl = startLine{}
	var err string
	if p.kind == Request {
		err = parseRequestLine(line, &p.sl)
	} else {
		err = parseStatusLine(line, &p.sl)
	}
	if err != "" {
		if p.probe {
			// After an upgrade request: the server accepted it and this is
			// the new protocol.
			p.probe = false
			p.stats.TunnelBytes += int64(len(p.hdr))
			p.state = stTunnel
			return false
		}
		p.m.HeaderBytes = int64(len(p.hdr))
		p.m.WireBytes = p.m.HeaderBytes
		p.fail(err)
		return false
	}
	p.probe = false
	p.haveStart = true
	p.m.ProtoMajor, p.m.ProtoMinor = p.sl.major, p.sl.minor
	p.m.StatusCode = p.sl.status
	if p.kind == Request {
		p.m.Method = methodString(p.sl.method)
	} else {
		p.m.Method = p.peekMethod()
	}
	if p.sl.warn != "" {
		p.setErr(p.sl.warn)
	}
	if p.sl.simple {
		p.m.HeaderBytes = int64(len(p.hdr))
		p.m.WireBytes = p.m.HeaderBytes
		p.m.HeadersDone = p.t.Last
		p.m.End = p.t.Last
		p.emitMsg(HeadersComplete)
		p.complete()
		return false
	}
	return true
}

// wellFormedLine parses, in one pass, the field line at b[i:] when it takes
// the well-formed form: token ":" OWS value CRLF, the value all VCHAR,
// obs-text, SP or HTAB. It returns the field (offsets are base plus their
// index in b, in buffer src) and the index after the line; ok is false for
// any other form, which the caller's general path then reads.
func wellFormedLine(b []byte, i, base int, src uint8) (f field, next int, ok bool) {
	k := i
	for k < len(b) && tchar[b[k]] {
		k++
	}
	if k == i || k >= len(b) || b[k] != ':' {
		return field{}, 0, false
	}
	vs := k + 1
	for vs < len(b) && (b[vs] == ' ' || b[vs] == '\t') {
		vs++
	}
	e := vs + vcharRun(b[vs:])
	if e+1 >= len(b) || b[e] != '\r' || b[e+1] != '\n' {
		return field{}, 0, false
	}
	ve := e
	for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
		ve--
	}
	return field{
		nOff: int32(base + i), nLen: int32(k - i),
		vOff: int32(base + vs), vLen: int32(ve - vs),
		nSrc: src, vSrc: src,
	}, e + 2, true
}

// fastBlock parses, in one pass, a header block (after the start line)
// that lies whole in b and whose field lines all take the well-formed form
// parseFields reads fastest: token ":" OWS value CRLF, the value all VCHAR,
// SP or HTAB, then an empty CRLF line. It returns the block's length, with
// its fields appended to p.fields at offsets for when b[:n] is appended to
// p.hdr; or -1, leaving p.fields as it was, when the block does not end in
// b or a line takes any other form (the line-by-line path then handles
// it). Each line takes wellFormedLine's checks (parseFields's fast path);
// the fuzz test's split-invariance check holds the two to the same result.
//
// A block the same byte for byte as the previous message's (see
// Parser.prev) is not parsed again: its fields are the previous ones,
// moved to this block's offset.
func (p *Parser) fastBlock(b []byte) int {
	base := int32(len(p.hdr))
	fields := p.fields
	n0 := len(fields)
	if prev := p.prev; prev.ok && len(b) >= int(prev.n) && string(b[:prev.n]) == string(p.prevHdr[prev.off:prev.off+prev.n]) {
		same := p.prevFields[prev.f0 : prev.f0+prev.nf]
		if shift := base - prev.off; shift == 0 {
			// The same start line length too (the same request again,
			// the same status line): the fields are the same.
			fields = append(fields, same...)
		} else {
			for _, f := range same {
				f.nOff += shift
				f.vOff += shift
				fields = append(fields, f)
			}
		}
		p.fields = fields
		p.fieldsParsed = true
		p.fast.set(base, prev.n, int32(n0), prev.nf)
		return int(prev.n)
	}
	i := 0
	// wellFormedLine's loop, written out here: this is the parser's
	// hottest loop, and a call per line returning a field costs a third
	// of it.
	for i+1 < len(b) {
		if b[i] == '\r' {
			if b[i+1] != '\n' {
				break
			}
			p.fields = fields
			p.fieldsParsed = true
			p.fast.set(base, int32(i+2), int32(n0), int32(len(fields)-n0))
			return i + 2
		}
		k := i
		for k < len(b) && tchar[b[k]] {
			k++
		}
		if k == i || k >= len(b) || b[k] != ':' {
			break
		}
		vs := k + 1
		for vs < len(b) && (b[vs] == ' ' || b[vs] == '\t') {
			vs++
		}
		e := vs + vcharRun(b[vs:])
		if e+1 >= len(b) || b[e] != '\r' || b[e+1] != '\n' {
			break
		}
		ve := e
		for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
			ve--
		}
		fields = append(fields, field{
			nOff: base + int32(i), nLen: int32(k - i),
			vOff: base + int32(vs), vLen: int32(ve - vs),
			nSrc: srcBlock, vSrc: srcBlock,
		})
		i = e + 2
	}
	p.fields = fields[:n0]
	return -1
}

// fastParse says where a header block that fastBlock parsed lies: the
// bytes hdr[off:off+n] of its message, and the fields fields[f0:f0+nf].
type fastParse struct {
	ok             bool
	off, n, f0, nf int32
}

// set records a parsed block. Field by field: a composite literal is built
// on the stack and copied with wide loads that stall on its narrow stores.
func (f *fastParse) set(off, n, f0, nf int32) {
	f.ok, f.off, f.n, f.f0, f.nf = true, off, n, f0, nf
}

// parseFields parses the field lines of block from offset from up to the
// empty line, appending to p.fields. It returns a fatal error or "".
func (p *Parser) parseFields(block []byte, from int, src uint8) string {
	firstField := len(p.fields)
	i := from
	for i < len(block) {
		// Fast path: a well-formed line in one pass. Anything else takes
		// the general path below, from the line's start.
		if f, next, ok := wellFormedLine(block, i, 0, src); ok {
			p.fields = append(p.fields, f)
			i = next
			continue
		}
		j := bytes.IndexByte(block[i:], '\n')
		if j < 0 {
			break
		}
		line := block[i : i+j]
		lineOff := i
		i += j + 1
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		} else {
			p.setErr(errBareLF)
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(p.fields) == firstField {
				p.setErr(errLeadingWS)
				continue
			}
			p.setErr(errObsFold)
			p.unfold(block, &p.fields[len(p.fields)-1], trimOWS(line), src)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return errFieldLine
		}
		name := line[:colon]
		if colon == 0 || !allTchar(name) {
			return errFieldName
		}
		value := line[colon+1:]
		vs := 0
		for vs < len(value) && (value[vs] == ' ' || value[vs] == '\t') {
			vs++
		}
		ve := len(value)
		for ve > vs && (value[ve-1] == ' ' || value[ve-1] == '\t') {
			ve--
		}
		for _, c := range value[vs:ve] {
			if !vchar[c] {
				p.setErr(errFieldValue)
				break
			}
		}
		vOff := lineOff + colon + 1 + vs
		p.fields = append(p.fields, field{
			nOff: int32(lineOff), nLen: int32(colon),
			vOff: int32(vOff), vLen: int32(ve - vs),
			nSrc: src, vSrc: src,
		})
	}
	return ""
}

// unfold appends a continuation line to f's value, joined by one SP.
func (p *Parser) unfold(block []byte, f *field, cont []byte, src uint8) {
	if f.vSrc != srcFold {
		var prev []byte
		if f.vSrc == srcBlock && src == srcBlock || f.vSrc == srcTrailer && src == srcTrailer {
			prev = block[f.vOff : f.vOff+f.vLen]
		}
		off := len(p.fold)
		p.fold = append(p.fold, prev...)
		f.vSrc, f.vOff = srcFold, int32(off)
	}
	if len(cont) == 0 {
		return
	}
	if f.vLen > 0 {
		p.fold = append(p.fold, ' ')
		f.vLen++
	}
	p.fold = append(p.fold, cont...)
	f.vLen += int32(len(cont))
}
