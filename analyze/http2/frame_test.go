package http2

import (
	"strings"
	"testing"

	"github.com/rewind-tools/rewind/analyze/bytetime"
)

// OnFrame sees every frame once: header blocks whole (HEADERS with its
// CONTINUATION frames) and decoded, the preface not at all.
func TestOnFrame(t *testing.T) {
	c := newConv(t).preface()
	c.maxFrag = 8
	c.headers(0, 1, false, ":method: GET", ":path: /", "x-a: "+strings.Repeat("a", 40))
	c.data(0, 1, true, "body", 3)
	c.flush(0)
	var got []string
	p := NewConn(Options{ClientWire: 0, OnFrame: func(f *Frame) {
		if b := f.Block; b != nil {
			got = append(got, "block "+fieldsString(b.Fields))
			return
		}
		got = append(got, f.Frame.Header().Type.String())
	}}, func(*Stream) {})
	for _, w := range c.writes {
		p.Feed(w.wire, w.b, bytetime.Times{})
	}
	s := strings.Join(got, "|")
	if len(got) != 6 || strings.Join(got[:4], "|") != "SETTINGS|SETTINGS|SETTINGS|SETTINGS" || got[5] != "DATA" ||
		!strings.HasPrefix(got[4], "block ") || !strings.Contains(got[4], ":path") || !strings.Contains(got[4], strings.Repeat("a", 40)) {
		t.Errorf("frames %s, want 4 SETTINGS, the whole block, DATA", s)
	}
}
