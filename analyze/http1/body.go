package http1

// The third stage of a message (states stBody, stBodyClose, stChunkSize,
// stChunkData, stChunkEnd, stTrailers): the body as framing.go delimited
// it, by length, by the end of the stream or in chunks, then the trailer
// section.

import "bytes"

// takeBody consumes body bytes.
func (p *Parser) takeBody(b []byte) {
	m := &p.m
	m.BodyBytes += int64(len(b))
	m.WireBytes += int64(len(b))
	m.End = p.t.Last
	if p.capture {
		room := p.opts.MaxBodyCapture - len(p.body)
		if room > len(b) {
			room = len(b)
		}
		if room > 0 {
			p.body = append(p.body, b[:room]...)
		}
	}
}

// skipBody accounts for n body bytes lost in a gap.
func (p *Parser) skipBody(n int64) {
	m := &p.m
	m.BodyBytes += n
	m.WireBytes += n
	m.Truncated = true
	m.End = p.t.Last
	p.capture = false
}

func (p *Parser) bodyLen(b []byte) []byte {
	n := int64(len(b))
	if n > p.remaining {
		n = p.remaining
	}
	p.takeBody(b[:n])
	p.remaining -= n
	if p.remaining == 0 {
		p.complete()
	}
	return b[n:]
}

// chunkSize reads a chunk-size line: hex size, extensions, line end.
func (p *Parser) chunkSize(b []byte) []byte {
	i := bytes.IndexByte(b, '\n')
	n := len(b)
	if i >= 0 {
		n = i + 1
	}
	if len(p.line)+n > p.opts.MaxHeaderBytes {
		// The whole line goes to resync, wherever the stream was cut.
		partial := p.line
		p.fail(errChunkTooLarge)
		p.resyncFrom(partial)
		return b
	}
	var line []byte
	if i < 0 {
		p.line = append(p.line, b...)
		return nil
	}
	if len(p.line) > 0 {
		p.line = append(p.line, b[:i+1]...)
		line = p.line
	} else {
		line = b[:i+1]
	}
	rest := b[i+1:]
	p.m.WireBytes += int64(len(line))
	p.line = p.line[:0]
	size, err := p.parseChunkLine(line)
	if err != "" {
		p.fail(err)
		return rest
	}
	if size == 0 {
		p.state = stTrailers
		p.lineStart = 0
		p.trl = p.trl[:0]
		return rest
	}
	p.remaining = size
	p.state = stChunkData
	return rest
}

// parseChunkLine parses "1*HEXDIG *( BWS ; ext ) CRLF".
func (p *Parser) parseChunkLine(line []byte) (int64, string) {
	content, bare := trimEOL(line)
	if bare {
		p.setErr(errBareLF)
	}
	var n int64
	i := 0
	for ; i < len(content); i++ {
		c := content[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto done
		}
		if n > (1<<59)-1 {
			return 0, errChunkSize
		}
		n = n<<4 | int64(d)
	}
done:
	if i == 0 {
		return 0, errChunkSize
	}
	rest := content[i:]
	if len(rest) == 0 {
		return n, ""
	}
	if rest[0] != ';' {
		// Only BWS may sit between the size and an extension.
		k := 0
		for k < len(rest) && (rest[k] == ' ' || rest[k] == '\t') {
			k++
		}
		if k == 0 || k == len(rest) || rest[k] != ';' {
			return 0, errChunkSize
		}
		p.setErr(errChunkSize)
		rest = rest[k:]
	}
	if !validChunkExt(rest) {
		return 0, errChunkExt
	}
	return n, ""
}

// validChunkExt checks *( BWS ";" BWS name [ BWS "=" BWS value ] ).
func validChunkExt(b []byte) bool {
	i := 0
	skipWS := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
	}
	for {
		skipWS()
		if i == len(b) {
			return true
		}
		if b[i] != ';' {
			return false
		}
		i++
		skipWS()
		s := i
		for i < len(b) && tchar[b[i]] {
			i++
		}
		if i == s {
			return false
		}
		skipWS()
		if i == len(b) || b[i] != '=' {
			continue
		}
		i++
		skipWS()
		if i < len(b) && b[i] == '"' {
			i++
			for {
				if i == len(b) {
					return false
				}
				c := b[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' {
					i++
					if i == len(b) || !vchar[b[i]] {
						return false
					}
				} else if !vchar[c] {
					return false
				}
				i++
			}
		} else {
			s := i
			for i < len(b) && tchar[b[i]] {
				i++
			}
			if i == s {
				return false
			}
		}
	}
}

func (p *Parser) chunkData(b []byte) []byte {
	n := int64(len(b))
	if n > p.remaining {
		n = p.remaining
	}
	p.takeBody(b[:n])
	p.remaining -= n
	if p.remaining == 0 {
		p.state = stChunkEnd
		p.chunkEndCR = false
	}
	return b[n:]
}

// chunkEnd expects the CRLF that ends chunk data.
func (p *Parser) chunkEnd(b []byte) []byte {
	for len(b) > 0 {
		c := b[0]
		switch {
		case c == '\r' && !p.chunkEndCR:
			p.chunkEndCR = true
		case c == '\n':
			if !p.chunkEndCR {
				p.setErr(errBareLF)
			}
			p.m.WireBytes++
			p.state = stChunkSize
			return b[1:]
		default:
			p.fail(errChunkEnd)
			return b
		}
		p.m.WireBytes++
		b = b[1:]
	}
	return b
}

// trailers accumulates the trailer section up to its empty line.
func (p *Parser) trailers(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		n := len(b)
		if i >= 0 {
			n = i + 1
		}
		if len(p.trl)+n > p.opts.MaxHeaderBytes {
			partial := p.trl[p.lineStart:]
			p.trl = p.trl[:p.lineStart]
			p.m.WireBytes += int64(len(p.trl))
			p.fail(errTrailerTooLarge)
			p.resyncFrom(partial)
			return b
		}
		p.trl = append(p.trl, b[:n]...)
		b = b[n:]
		if i < 0 {
			return b
		}
		line := p.trl[p.lineStart:]
		p.lineStart = len(p.trl)
		if isBlank(line) {
			p.m.End = p.t.Last
			p.m.WireBytes += int64(len(p.trl))
			if err := p.parseFields(p.trl, 0, srcTrailer); err != "" {
				p.fail(err)
				return b
			}
			p.complete()
			return b
		}
	}
	return b
}
