// Package bytetime holds the timing type that the protocol parsers
// ([github.com/rewind-tools/rewind/analyze/http1] and
// [github.com/rewind-tools/rewind/analyze/http2]) share with the replay that
// feeds them, so that a chunk's times pass from one to the other as they
// are. It imports nothing, so that every parser can sit above it.
package bytetime

// Times gives the monotonic times, in nanoseconds, of the first and the last
// byte of a chunk of a byte stream, as passed to a parser's Feed, Gap or
// Close. Zero means not known.
type Times struct{ First, Last uint64 }
