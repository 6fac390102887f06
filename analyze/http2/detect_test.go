package http2

import (
	"strings"
	"testing"
)

func TestDetector(t *testing.T) {
	w := basicConv(t).writes
	server := concat(w, 1)
	client := concat(w, 0)[len(ClientPreface):]
	if FramesAt(server, DefaultMaxFrameSize) != Yes || FramesAt(client, DefaultMaxFrameSize) != Yes {
		t.Fatal("frames at 0 not detected")
	}
	// Joined in the middle of the server's bytes: the first frame start
	// found is a real one (parsing from it yields no bad frames).
	for k := 1; k < len(server); k++ {
		i := FindFrames(server[k:], DefaultMaxFrameSize)
		if i < 0 {
			continue
		}
		_, st := run(Options{ClientWire: 0, MidStream: true}, []write{{1, server[k+i:]}}, nil)
		if st.BadFrames != 0 || st.SkippedBytes != 0 {
			t.Errorf("offset %d+%d: %+v", k, i, st)
		}
	}
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		strings.Repeat("\x00", 64),
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	} {
		if i := FindFrames([]byte(s), DefaultMaxFrameSize); i >= 0 {
			t.Errorf("%q: frames found at %d", s, i)
		}
	}
	if FramesAt([]byte{0, 0}, DefaultMaxFrameSize) != More {
		t.Error("short input")
	}
}
