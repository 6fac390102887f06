package http2

import "strings"

// GRPCFrames counts the length-prefixed messages of a gRPC stream direction:
// each message is a 1-byte compressed flag, a 4-byte big-endian length and
// the message bytes, and messages may span DATA frames in any way.
type GRPCFrames struct {
	// Msgs counts messages whose 5-byte prefix was seen; Bytes sums their
	// declared lengths (prefixes excluded).
	Msgs  int
	Bytes int64
	// Compressed counts messages with the compressed flag set.
	Compressed int
	// Partial says the stream ended inside a message, or a gap cut one.
	Partial bool

	hdr    [5]byte
	hn     int
	remain int64
	lost   bool // a gap made the framing unknown: stop counting
}

// Write feeds DATA payload bytes in order.
func (g *GRPCFrames) Write(p []byte) {
	for len(p) > 0 && !g.lost {
		if g.remain > 0 {
			k := min(int64(len(p)), g.remain)
			g.remain -= k
			p = p[k:]
			continue
		}
		k := copy(g.hdr[g.hn:], p)
		g.hn += k
		p = p[k:]
		if g.hn < len(g.hdr) {
			return
		}
		g.hn = 0
		n := int64(g.hdr[1])<<24 | int64(g.hdr[2])<<16 | int64(g.hdr[3])<<8 | int64(g.hdr[4])
		g.Msgs++
		g.Bytes += n
		if g.hdr[0]&1 != 0 {
			g.Compressed++
		}
		g.remain = n
	}
}

// Gap records n missing payload bytes: inside a message they are skipped,
// otherwise the framing is lost and counting stops.
func (g *GRPCFrames) Gap(n int64) {
	if g.lost {
		return
	}
	if g.hn == 0 && n <= g.remain {
		g.remain -= n
		return
	}
	g.lost, g.Partial = true, true
}

// finish notes whether the direction ended inside a message.
func (g *GRPCFrames) finish() {
	if g.hn != 0 || g.remain != 0 {
		g.Partial = true
	}
}

// IsGRPC reports whether a content-type names gRPC ("application/grpc",
// "application/grpc+proto", "application/grpc-web…").
func IsGRPC(contentType string) bool {
	const p = "application/grpc"
	if len(contentType) < len(p) || !strings.EqualFold(contentType[:len(p)], p) {
		return false
	}
	rest := contentType[len(p):]
	return rest == "" || rest[0] == '+' || rest[0] == ';' || rest[0] == '-'
}

// GRPCMethod splits a gRPC :path ("/pkg.Service/Method") into service and
// method; ok is false when the path has another shape.
func GRPCMethod(path string) (service, method string, ok bool) {
	if len(path) < 4 || path[0] != '/' {
		return "", "", false
	}
	i := strings.IndexByte(path[1:], '/')
	if i <= 0 || 1+i+1 >= len(path) || strings.IndexByte(path[i+2:], '/') >= 0 {
		return "", "", false
	}
	return path[1 : 1+i], path[i+2:], true
}
