package http1

// Out of order (state stResync): when the parser cannot tell where the
// next message begins (a gap, a malformed message), it scans the stream for
// the next plausible start line and starts the first stage (headers.go)
// there.

import "bytes"

// resyncLineMax bounds how much of an unfinished line the parser keeps while
// scanning for a start line; request lines longer than this are not found.
const resyncLineMax = 16 << 10

// loseSync switches to scanning for the next start line.
func (p *Parser) loseSync() {
	p.state = stResync
	p.line = p.line[:0]
	p.resynced = true
	p.probe = false
	p.stats.Resyncs++
}

// resyncFrom starts the resync line buffer with bytes already consumed.
func (p *Parser) resyncFrom(partial []byte) {
	if len(partial) == 0 {
		return
	}
	p.stats.SkippedBytes += int64(len(partial))
	if len(partial) > resyncLineMax/2 {
		partial = partial[len(partial)-resyncLineMax/2:]
	}
	p.line = append(p.line[:0], partial...)
	p.lineT = p.m.Start
}

// resync scans for the next plausible start line.
func (p *Parser) resync(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(p.line) == 0 {
				p.lineT = p.t.First
			}
			p.stats.SkippedBytes += int64(len(b))
			if len(p.line)+len(b) > resyncLineMax {
				// Keep only the tail: a start line is a suffix of its line.
				keep := resyncLineMax / 2
				if len(b) >= keep {
					p.line = append(p.line[:0], b[len(b)-keep:]...)
				} else {
					drop := len(p.line) + len(b) - keep
					n := copy(p.line, p.line[drop:])
					p.line = append(p.line[:n], b...)
				}
			} else {
				p.line = append(p.line, b...)
			}
			return nil
		}
		var line []byte
		startT := p.t.First
		inB := len(p.line) // bytes of line that precede b
		if len(p.line) > 0 {
			p.line = append(p.line, b[:i+1]...)
			line = p.line
			startT = p.lineT
		} else {
			line = b[:i+1]
		}
		p.stats.SkippedBytes += int64(i + 1)
		b = b[i+1:]
		off := p.findStartLine(line)
		if off >= 0 && len(line)-off > p.opts.MaxHeaderBytes {
			off = -1
		}
		if off < 0 {
			p.line = p.line[:0]
			continue
		}
		if off >= inB {
			startT = p.t.First
		}
		p.stats.SkippedBytes -= int64(len(line) - off)
		p.begin(startT)
		p.hdr = append(p.hdr, line[off:]...)
		p.line = p.line[:0]
		p.lineStart = len(p.hdr)
		if p.startLine(p.hdr) {
			p.state = stHeaders
		}
		return b
	}
	return b
}

// findStartLine returns the offset in line (which ends with LF) of a
// plausible start line that runs to its end, or -1.
func (p *Parser) findStartLine(line []byte) int {
	content, _ := trimEOL(line)
	if p.kind == Response {
		for k := 0; ; {
			j := bytes.Index(content[k:], []byte("HTTP/1."))
			if j < 0 {
				return -1
			}
			k += j
			var sl startLine
			if parseStatusLine(line[k:], &sl) == "" {
				return k
			}
			k++
		}
	}
	// Request: "METHOD SP target SP HTTP/1.x" at the end of the line.
	n := len(content)
	if n < 12 || string(content[n-9:n-1]) != " HTTP/1." || !isDigit(content[n-1]) {
		return -1
	}
	ts := n - 9 // end of target
	k := ts
	for k > 0 && content[k-1] > ' ' && content[k-1] != 0x7f {
		k--
	}
	if k == ts || k == 0 || content[k-1] != ' ' {
		return -1
	}
	target := content[k:ts]
	me := k - 1
	ms := me
	for ms > 0 && tchar[content[ms-1]] && me-ms < 32 {
		ms--
	}
	if ms == me {
		return -1
	}
	// Prefer the longest suffix that is a known method ("xyzGET" → GET).
	start := -1
	for s := ms; s < me; s++ {
		if _, ok := knownMethod(content[s:me]); ok {
			start = s
			break
		}
	}
	if start < 0 {
		// An extension method: all upper case, at a line start or after a
		// non-token byte.
		if ms > 0 && content[ms-1] != ' ' && tchar[content[ms-1]] {
			return -1
		}
		for _, c := range content[ms:me] {
			if !('A' <= c && c <= 'Z' || c == '-' || c == '_') {
				return -1
			}
		}
		start = ms
	}
	method := content[start:me]
	if !(target[0] == '/' || string(target) == "*" || bytes.Contains(target, []byte("://")) || string(method) == "CONNECT") {
		return -1
	}
	return start
}
